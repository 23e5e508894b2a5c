"""The classic builder: one :class:`Builder` per build, dispatching each instruction as a step."""
from __future__ import annotations

import hashlib
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator

from .. import dockerfile as df
from ..buildcontext import BuildContext, CopyWriter, ImageTree, SourceTree, is_archive, lookup_ids, sources_hash
from ..errors import BuildError, ContainerError, EngineError, ImageNotFound
from ..format import go_quote
from ..images import load_config, now_or_epoch, register_config, resolve, rfc3339, tag_image
from ..layer import EMPTY_TAR_DIGEST, source_date_epoch
from ..spec import DEFAULT_PATH, OCI_LAYER, ContainerConfig, History, ImageConfig, host_platform
from ..values import field, replace, value
from .events import (BuildEvent, BuildFailed, Built, CacheHit, ContainerRemoved, ContainerRunning, ContextSent,
                     Output, PullProgress, StepDone, StepStarted, Tagged, TriggersExecuting, Warning)
from .gotext import go_duration, go_list, go_quote_list, go_quote_rune
from .options import BuildArgs, BuildOptions, _parse_build_args, _read_dockerfile

DEFAULT_SHELL = ("/bin/sh", "-c")

DIFFERENCES = """\
Where LayerLab's classic builder knowingly differs from Docker 20.10 (DOCKER_BUILDKIT=0); everything
else (steps, cache decisions, history texts with their COPY keys, files, errors, exit codes) is checked
against a real dockerd by tests/integration/test_build_vs_docker.py:

* Image and container IDs differ (timestamps, LayerLab's canonical config JSON); with
  SOURCE_DATE_EPOCH set the same inputs give the same image ID on every machine.
* COPY/ADD do not create (and remove) a hidden container; Docker's was never shown either.
* COPY --chmod is accepted with BuildKit's meaning (Docker 20.10's classic builder refuses it: "the
  --chmod option requires BuildKit"); it is part of the cache key and of the history text
  (``COPY --chmod=700 file:… in …``).
* ADD of a URL fails with an explanation: LayerLab downloads images from registries only; Docker would
  fetch it.
* COPY --from hashes an image's files with the owners LayerLab's snapshots have (root when
  rootless) and this host's user names, as dockerd does on its host.
* A RUN whose USER cannot be resolved fails before a container exists (Docker shows "Running in" and
  leaves a Created container); a RUN whose program cannot be executed reports Docker's runc message
  with LayerLab's reason. A metadata step right after ``FROM scratch`` shows no container.
* RUN in a scratch image is refused (there is nothing to run it with).
* Parse warnings and RUN's stderr are events; the CLI decides where they go (Docker prints both on
  stdout, stderr in red).
"""


@value(frozen=False)
class _State:
    """The image being built in one stage, step by step."""

    image_id: str | None
    image: ImageConfig
    allowed: dict[str, str | None] = field(default_factory=dict)   # ARGs declared in this stage
    cmd_set: bool = False

    @property
    def config(self) -> ContainerConfig:
        return self.image.config


class _Failed(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def _expose_ports(words: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for word in words:
        port, _, proto = word.partition("/")
        proto = proto or "tcp"
        start, _, end = port.partition("-")
        if start.isdigit() and end.isdigit():
            out.update(f"{p}/{proto}" for p in range(int(start), int(end) + 1))
        else:
            out.add(f"{port}/{proto}")
    return out


# --- the builder ---------------------------------------------------------------------------------

class Builder:
    """One build: parse, then dispatch each step, yielding events."""

    def __init__(self, engine, opts: BuildOptions) -> None:
        self.engine = engine
        self.store = engine.store
        self.opts = opts
        self.args = BuildArgs(_parse_build_args(opts.build_args))
        self.cache_busted = opts.no_cache
        self.epoch = source_date_epoch()
        self.stage_images: dict[int, str | None] = {}

    @property
    def runtime(self):
        return self.engine.runtime

    def run(self) -> Iterator[BuildEvent]:
        from .. import reference

        for t in self.opts.tags:
            try:
                reference.parse(t)
            except EngineError:
                yield BuildFailed(f'invalid argument "{t}" for "-t, --tag" flag: invalid reference format', 125)
                return
        try:
            text, name = _read_dockerfile(self.opts)
            self.context = BuildContext.open(self.opts.context)
        except BuildError as e:
            yield BuildFailed(str(e), 1)
            return
        yield ContextSent(self.context.tar_size(name, text))
        try:
            parsed = df.parse(text, filename=name)
            df.check_stages(parsed)
            stages = list(parsed.stages)
            if self.opts.target:
                stages = list(df.target_stages(parsed, self.opts.target))
        except df.DockerfileError as e:
            yield BuildFailed(f"Error response from daemon: {e}", 1)
            return
        for w in parsed.warnings:
            yield Warning(w)
        total = len(parsed.meta_args) + sum(1 + len(s.instructions) for s in stages)
        number = 0
        state: _State | None = None
        try:
            for a in parsed.meta_args:
                number += 1
                yield StepStarted(number, total, a.original, a.line)
                env = {k: v for k, v in self.args.all_allowed(self.args.meta).items()}
                a = df.expand_instruction(a, env, escape=parsed.escape)
                for key, default in a.pairs:
                    self.args.meta[key] = default
                    self.args.referenced.add(key)
            for stage in stages:
                number += 1
                frm = stage.from_instruction
                started = time.monotonic()
                yield StepStarted(number, total, frm.original, frm.line)
                state = yield from self._from(parsed, stage)
                triggers = state.config.on_build
                if triggers:
                    yield TriggersExecuting(len(triggers))
                    state.image = replace(state.image, config=replace(state.config, on_build=()))
                    for trigger in triggers:
                        inst = df.parse_instruction(trigger, escape=parsed.escape)
                        yield from self._dispatch(parsed, stage, state, inst, number, in_trigger=True)
                yield StepDone(number, state.image_id or "", False, time.monotonic() - started)
                for inst in stage.instructions:
                    number += 1
                    yield StepStarted(number, total, inst.original, inst.line)
                    yield from self._dispatch(parsed, stage, state, inst, number)
                self.stage_images[stage.index] = state.image_id
        except _Failed as f:
            yield BuildFailed(f.message, f.code)
            return
        except df.DockerfileError as e:
            yield BuildFailed(str(e), 1)
            return
        except (ContainerError, BuildError) as e:
            yield BuildFailed(str(e), e.exit_code)
            return
        unused = self.args.unused()
        if unused:
            yield Warning(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        if state is None or state.image_id is None:
            yield BuildFailed("No image was generated. Is your Dockerfile empty?", 1)
            return
        yield Built(state.image_id)
        for t in self.opts.tags:
            ref = tag_image(self.store, state.image_id, t)
            self.engine._emit("image", "tag", state.image_id, ref.familiar)
            yield Tagged(ref.familiar)

    # --- FROM ------------------------------------------------------------------------------------

    def _from(self, parsed: df.Dockerfile, stage: df.Stage) -> Iterator[BuildEvent]:
        meta_env = self.args.all_allowed(self.args.meta)
        frm = df.expand_instruction(stage.from_instruction, meta_env, escape=parsed.escape)
        base = frm.base
        prior = {s.name: s.index for s in parsed.stages[:stage.index] if s.name}
        if base.lower() in prior:
            image_id = self.stage_images[prior[base.lower()]]
            if image_id is None:
                return self._scratch()
        elif base == "scratch":
            return self._scratch()
        else:
            image_id = yield from self._image(base)
        image = load_config(self.store, image_id)
        if "PATH" not in image.config.env_dict():
            image = replace(image, config=replace(
                image.config, env=image.config.env + (f"PATH={DEFAULT_PATH}",)))
        return _State(image_id, image)

    def _image(self, name: str, error_prefix: str = "") -> Iterator[BuildEvent]:
        """The image ``name`` names (returned), pulled first when the store lacks it or with ``--pull``, as
        dockerd's ``GetImageAndReleasableLayer``: the pull's lines are :class:`PullProgress` events of
        the step; a failed pull fails the step with the pull's error."""
        from ..reference import is_full_id

        if not self.opts.pull or is_full_id(name):
            try:
                return resolve(self.store, name)
            except ImageNotFound:
                pass
            except EngineError as e:
                raise _Failed(f"{error_prefix}invalid reference format: {name}: {e}") from None
        from ..registry.events import render_daemon

        try:
            for event in self.engine.pull(name):
                yield PullProgress(render_daemon(event), event)
            return resolve(self.store, name)
        except EngineError as e:
            raise _Failed(f"{error_prefix}{e}") from None

    @staticmethod
    def _scratch() -> _State:
        plat = host_platform()
        image = ImageConfig(plat.architecture, plat.os, None, ContainerConfig(env=(f"PATH={DEFAULT_PATH}",)), (),
                            variant=plat.variant)
        return _State(None, image)

    # --- dispatch --------------------------------------------------------------------------------

    def _scope_env(self, state: _State) -> dict[str, str]:
        env = dict(self.args.all_allowed(state.allowed))
        env.update(state.config.env_dict())
        return env

    def _dispatch(self, parsed, stage, state: _State, inst, number: int,
                  in_trigger: bool = False) -> Iterator[BuildEvent]:
        started = time.monotonic()
        inst = df.expand_instruction(inst, self._scope_env(state), escape=parsed.escape)
        if isinstance(inst, df.Run):
            yield from self._run(state, inst, number, started, in_trigger)
            return
        if isinstance(inst, (df.Copy, df.Add)):
            yield from self._copy(parsed, stage, state, inst, number, started, in_trigger)
            return
        if isinstance(inst, df.Workdir):
            yield from self._workdir(state, inst, number, started, in_trigger)
            return
        cfg = state.config
        if isinstance(inst, df.Env):
            for k, v in inst.pairs:
                cfg = cfg.with_env(k, v)
            comment = "ENV" + "".join(f" {k}={v}" for k, v in inst.pairs)
        elif isinstance(inst, df.Label):
            labels = dict(cfg.labels)
            labels.update(inst.pairs)
            cfg = replace(cfg, labels=tuple(sorted(labels.items())))
            comment = "LABEL" + "".join(f" {k}={v}" for k, v in inst.pairs)
        elif isinstance(inst, df.Maintainer):
            state.image = replace(state.image, author=inst.maintainer)
            comment = f"MAINTAINER {inst.maintainer}"
        elif isinstance(inst, df.Cmd):
            words = self._command(state, inst.cmd, inst.exec_form)
            cfg = replace(cfg, cmd=words)
            comment = f"CMD {go_quote_list(words)}"
            if inst.cmd:
                state.cmd_set = True
        elif isinstance(inst, df.Entrypoint):
            words = self._command(state, inst.cmd, inst.exec_form) if inst.cmd else ()
            cfg = replace(cfg, entrypoint=words or None, cmd=cfg.cmd if state.cmd_set else None)
            comment = f"ENTRYPOINT {go_quote_list(words)}"
        elif isinstance(inst, df.Expose):
            ports = set(cfg.exposed_ports) | _expose_ports(inst.ports)
            cfg = replace(cfg, exposed_ports=tuple(sorted(ports)))
            comment = "EXPOSE " + " ".join(inst.ports)
        elif isinstance(inst, df.Volume):
            cfg = replace(cfg, volumes=tuple(sorted(set(cfg.volumes) | set(inst.paths))))
            comment = f"VOLUME {go_list(inst.paths)}"
        elif isinstance(inst, df.User):
            cfg = replace(cfg, user=inst.user)
            comment = f"USER {inst.user}"
        elif isinstance(inst, df.StopSignal):
            cfg = replace(cfg, stop_signal=inst.signal)
            comment = f"STOPSIGNAL {inst.signal}"
        elif isinstance(inst, df.Shell):
            cfg = replace(cfg, shell=inst.shell)
            comment = f"SHELL {go_list(inst.shell)}"
        elif isinstance(inst, df.Onbuild):
            cfg = replace(cfg, on_build=cfg.on_build + (inst.expression,))
            comment = f"ONBUILD {inst.expression}"
        elif isinstance(inst, df.Healthcheck):
            hc: dict = {"Test": list(inst.test)}
            for key, setting in (("Interval", inst.interval), ("Timeout", inst.timeout),
                                 ("StartPeriod", inst.start_period), ("Retries", inst.retries)):
                if setting:
                    hc[key] = setting
            cfg = replace(cfg, healthcheck=tuple(sorted(hc.items())))
            comment = (f"HEALTHCHECK &{{{go_quote_list(inst.test)} {go_quote(go_duration(inst.interval))} "
                       f"{go_quote(go_duration(inst.timeout))} {go_quote(go_duration(inst.start_period))} "
                       f"{go_quote_rune(inst.retries)}}}")
        elif isinstance(inst, df.Arg):
            words = []
            for key, default in inst.pairs:
                state.allowed[key] = default
                self.args.referenced.add(key)
                words.append(key if default is None else f"{key}={default}")
            comment = "ARG " + " ".join(words)
        else:  # pragma: no cover - the parser knows no other instruction
            raise _Failed(f"unsupported instruction {inst.keyword}")
        state.image = replace(state.image, config=cfg)
        probe = replace(cfg, cmd=self._shell(cfg) + ("#(nop) ", comment))
        yield from self._meta_step(state, probe, number, started, in_trigger)

    def _shell(self, cfg: ContainerConfig) -> tuple[str, ...]:
        return tuple(cfg.shell) if cfg.shell else DEFAULT_SHELL

    def _command(self, state: _State, cmd, exec_form: bool) -> tuple[str, ...]:
        if exec_form:
            return tuple(cmd)
        return self._shell(state.config) + ((cmd,) if cmd else ())

    # --- cache ----------------------------------------------------------------------------------

    def _probe_cache(self, state: _State, probe: ContainerConfig) -> str | None:
        """Docker's ``getLocalCachedImage``: the newest locally built child with this config."""
        if self.cache_busted:
            return None
        want = ContainerConfig.from_dict(probe.to_dict())
        if state.image_id is None:
            candidates = [row.id for row in self.store.images() if row.parent is None]
        else:
            candidates = self.store.children(state.image_id)
        best: tuple[str, float] | None = None
        for child in candidates:
            row = self.store.image(child)
            if not row.built_locally:
                continue
            cfg = load_config(self.store, child)
            container_config = dict(cfg.extra).get("container_config")
            if container_config is None or ContainerConfig.from_dict(container_config) != want:
                continue
            if state.image_id is None and len(cfg.history) != 1:
                continue
            if best is None or row.added > best[1]:
                best = (child, row.added)
        return best[0] if best else None

    def _cached(self, state: _State, probe: ContainerConfig, number: int, started: float,
                in_trigger: bool) -> Iterator[BuildEvent]:
        """Yield the cache hit events when there is one; sets ``self._hit``."""
        self._hit = self._probe_cache(state, probe)
        if self._hit:
            yield CacheHit(self._hit)
            self._advance(state, self._hit)
            if not in_trigger:
                yield StepDone(number, self._hit, True, time.monotonic() - started)
        else:
            self.cache_busted = True

    def _advance(self, state: _State, image_id: str) -> None:
        state.image_id = image_id
        state.image = load_config(self.store, image_id)

    # --- commits --------------------------------------------------------------------------------

    def _store_layer(self, write) -> tuple[str | None, int]:
        """Write a layer with ``write(out) -> LayerDigest``; None when it is the empty tar."""
        with self.store.blob_writer(verify=False) as w:
            layer = write(w)
            w.commit(layer.diff_id)
        if layer.diff_id == EMPTY_TAR_DIGEST:
            if not self.store.has_layer(layer.diff_id):
                self.store.delete_blob(layer.diff_id)
            return None, 0
        self.store.add_layer(layer.diff_id, layer.size, layer.tar_size)
        self.store.add_layer_blob(layer.diff_id, layer.diff_id, OCI_LAYER, layer.tar_size)
        return layer.diff_id, layer.size

    def _commit(self, state: _State, probe: ContainerConfig, created_by: str, diff_id: str | None) -> str:
        ts = rfc3339(now_or_epoch())
        history = History(created=ts, created_by=created_by, author=state.image.author, empty_layer=diff_id is None)
        extra = dict(state.image.extra)
        extra["container_config"] = probe.to_dict()
        image = replace(state.image, created=ts,
                                    diff_ids=state.image.diff_ids + ((diff_id,) if diff_id else ()),
                                    history=state.image.history + (history,), extra=tuple(sorted(extra.items())))
        image_id, _ = register_config(self.store, image.to_json(), parent=state.image_id, built_locally=True)
        self.engine._emit("image", "create", image_id, None)
        state.image_id = image_id
        state.image = image
        return image_id

    def _new_container(self, state: _State, argv: tuple[str, ...], *, env: tuple[str, ...] = (),
                       runs: bool = False):
        from ..runtime.manager import RunOptions

        if state.image_id is None:
            raise _Failed("LayerLab cannot run containers from scratch images: add a base image with FROM")
        # a container that never runs is not checked for its USER (Docker checks at start)
        opts = RunOptions(image=state.image_id, command=argv, entrypoint="",
                          env=tuple(state.config.env) + env, user=(state.config.user or None) if runs else "0",
                          workdir=state.config.working_dir or None)
        return self.runtime.create(opts, snapshots=runs)

    def _remove(self, container) -> None:
        self.runtime.remove(container.id, force=True)

    def _meta_step(self, state: _State, probe: ContainerConfig, number: int, started: float, in_trigger: bool,
                   entries=None, created_by: str | None = None) -> Iterator[BuildEvent]:
        """``entries``: a function giving the layer's entries (None or empty: an empty layer)."""
        """A step that runs nothing: probe the cache, else a never-started container and a commit."""
        yield from self._cached(state, probe, number, started, in_trigger)
        if self._hit:
            return
        created_by = created_by if created_by is not None else " ".join(probe.cmd or ())
        container = None
        if state.image_id is not None:
            container = self._new_container(state, probe.cmd or DEFAULT_SHELL)
            yield ContainerRunning(container.id)
        try:
            diff_id = None
            written = entries() if entries is not None else None
            if written:
                from ..layer import write_tar

                diff_id, _ = self._store_layer(lambda out: write_tar(written, out, epoch=self.epoch))
            image_id = self._commit(state, probe, created_by, diff_id)
        finally:
            if container is not None and (self.opts.rm or self.opts.force_rm):
                self._remove(container)
        if container is not None and (self.opts.rm or self.opts.force_rm):
            yield ContainerRemoved(container.id)
        if not in_trigger:
            yield StepDone(number, image_id, False, time.monotonic() - started)

    # --- WORKDIR ---------------------------------------------------------------------------------

    def _workdir(self, state: _State, inst: df.Workdir, number: int, started: float,
                 in_trigger: bool) -> Iterator[BuildEvent]:
        from ..dockerignore import clean_path

        path = inst.path if inst.path.startswith("/") else os.path.join("/", state.config.working_dir or "/", inst.path)
        workdir = clean_path(path)
        cfg = replace(state.config, working_dir=workdir)
        state.image = replace(state.image, config=cfg)
        probe = replace(cfg, cmd=self._shell(cfg) + (f"#(nop) WORKDIR {workdir}",))

        def entries():
            # Docker's MkdirAllAndChownNew: the missing directories, 0755, root's
            writer = CopyWriter(self._target_tree(state), None, None)
            rel = writer.resolve_dest(workdir)
            if not rel or writer.exists_as_dir(rel):
                return None
            writer.add_dir(rel)
            return writer.sorted_entries()

        yield from self._meta_step(state, probe, number, started, in_trigger, entries=entries)

    def _target_tree(self, state: _State) -> ImageTree:
        from ..runtime.commit import owner_map
        from ..runtime.snapshots import ensure_snapshots

        layers = ensure_snapshots(self.store, state.image.diff_ids) if state.image.diff_ids else []
        return ImageTree(layers, owner_map())

    # --- RUN -------------------------------------------------------------------------------------

    def _run(self, state: _State, inst: df.Run, number: int, started: float,
             in_trigger: bool) -> Iterator[BuildEvent]:
        if inst.exec_form:
            argv = tuple(inst.cmd)
        elif inst.heredocs:
            argv = self._shell(state.config) + (str(inst.cmd) + "\n" + "".join(h.content for h in inst.heredocs),)
        else:
            argv = self._shell(state.config) + ((str(inst.cmd),) if inst.cmd else ())
        build_env = self.args.filter_allowed(state.allowed, state.config.env_dict())
        probe_cmd = argv
        if build_env:
            keyed = sorted(e for e in build_env if self.args.in_cache_key(e.partition("=")[0]))
            probe_cmd = (f"|{len(keyed)}", *keyed) + argv
        probe = replace(state.config, cmd=probe_cmd)
        yield from self._cached(state, probe, number, started, in_trigger)
        if self._hit:
            return
        container = self._new_container(state, argv, env=tuple(build_env), runs=True)
        yield ContainerRunning(container.id)
        code = yield from self._execute(container)
        if code != 0:
            if self.opts.force_rm:
                self._remove(container)
                yield ContainerRemoved(container.id)
            raise _Failed(f"The command '{' '.join(argv)}' returned a non-zero code: {code}", code)
        from ..runtime.commit import write_container_layer

        try:
            diff_id, _ = self._store_layer(lambda out: write_container_layer(container, self.store, out,
                                                                             epoch=self.epoch))
            image_id = self._commit(state, probe, " ".join(probe_cmd), diff_id)
        finally:
            if self.opts.rm or self.opts.force_rm:
                self._remove(container)
        if self.opts.rm or self.opts.force_rm:
            yield ContainerRemoved(container.id)
        if not in_trigger:
            yield StepDone(number, image_id, False, time.monotonic() - started)

    def _execute(self, container) -> Iterator[BuildEvent]:
        """Start a container and stream its output as it comes; returns the exit code."""
        from ..runtime.foreground import run_foreground

        try:
            box = self.runtime.start(container, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        except ContainerError as e:
            if self.opts.force_rm:
                self._remove(container)
                yield ContainerRemoved(container.id)
            raise _Failed("failed to create shim task: OCI runtime create failed: runc create failed: "
                          f"unable to start container process: {e}: unknown", 1) from None
        chunks: queue.Queue = queue.Queue()
        done = object()
        result: dict = {}

        def work() -> None:
            try:
                # the container's shim writes its json-file log
                result["code"] = run_foreground(box, on_stdout=lambda data: chunks.put(("stdout", data)),
                                                on_stderr=lambda data: chunks.put(("stderr", data)))
            except BaseException as e:  # noqa: BLE001 - handed to the generator
                result["error"] = e
            finally:
                chunks.put(done)

        thread = threading.Thread(target=work, name=f"build-{container.id[:12]}", daemon=True)
        thread.start()
        try:
            while (item := chunks.get()) is not done:
                yield Output(*item)
        except BaseException:  # an interrupt, or the consumer stopped: kill the whole container
            box.kill(9)
            thread.join(10)
            self.runtime.finish(container, result.get("code", 137))
            raise
        thread.join()
        if "error" in result:
            raise result["error"]
        code = result["code"]
        self.runtime.finish(container, code)
        return code

    # --- COPY / ADD --------------------------------------------------------------------------------

    def _copy(self, parsed, stage, state: _State, inst, number: int, started: float,
              in_trigger: bool) -> Iterator[BuildEvent]:
        word = "COPY" if isinstance(inst, df.Copy) else "ADD"
        tree: SourceTree = self.context
        from_stage = getattr(inst, "from_stage", None)
        if from_stage is not None:
            tree = yield from self._from_tree(parsed, stage, from_stage)
        for src in inst.sources:
            if word == "ADD" and "://" in src:
                raise _Failed(f"ADD failed: downloading {src} needs the internet, which LayerLab never uses; "
                              "download it into the build context and ADD or COPY it from there")
        try:
            infos = [info for src in inst.sources for info in tree.sources(src, word)]
        except BuildError as e:
            raise _Failed(str(e)) from None
        count = len(infos) + len(inst.heredocs)
        if count > 1 and not inst.dest.endswith("/"):
            raise _Failed(f"When using {word} with more than one source file, the destination must be a "
                          "directory and end with a /")
        hashes = [tree.source_hash(i.rel) for i in infos]
        hashes += ["file:" + hashlib.sha256(h.content.encode()).hexdigest() for h in inst.heredocs]
        key = sources_hash(hashes)
        flags = (f"--chmod={inst.chmod} " if inst.chmod else "") + (f"--chown={inst.chown}" if inst.chown else "")
        comment = f"{word} {flags}{key} in {inst.dest} "
        probe = replace(state.config, cmd=self._shell(state.config) + (f"#(nop) {comment}",))
        yield from self._cached(state, probe, number, started, in_trigger)
        if self._hit:
            return
        target = self._target_tree(state)
        try:
            owner = lookup_ids(inst.chown, target) if inst.chown else None
        except BuildError as e:
            raise _Failed(str(e)) from None
        mode = None
        if inst.chmod:
            try:
                mode = int(inst.chmod, 8)
            except ValueError:
                raise _Failed(f"invalid chmod parameter: {inst.chmod}") from None
        dest = inst.dest if inst.dest.startswith("/") else \
            os.path.join("/", state.config.working_dir or "/", inst.dest) + ("/" if inst.dest.endswith("/") else "")
        dest_is_dir = dest.endswith("/")
        writer = CopyWriter(target, owner, mode)
        staging: str | None = None  # for ADD of local archives only: most COPYs never need it
        try:
            for n, info in enumerate(infos):
                keep = tree is not self.context
                if tree.is_dir(info.rel):
                    writer.add_directory(dest, tree, info, keep_owner=keep)
                elif word == "ADD" and is_archive(tree.host_path(info.rel)):
                    from ..extract import extract_layer

                    if staging is None:
                        staging = os.path.join(self.store.tmp_dir, f"add-{os.urandom(6).hex()}")
                        os.mkdir(staging, 0o700)
                    out = os.path.join(staging, str(n))
                    os.mkdir(out)
                    try:
                        extract_layer(tree.host_path(info.rel), out)
                    except EngineError as e:
                        raise _Failed(f"ADD failed: {info.name}: {e}") from None
                    writer.add_archive(dest, out)
                else:
                    writer.add_file(dest, dest_is_dir, tree, info, keep_owner=keep)
            for h in inst.heredocs:
                writer.add_data(dest, dest_is_dir, h.name, h.content.encode())
            from ..layer import write_tar

            entries = writer.sorted_entries()
            diff_id, _ = self._store_layer(lambda out: write_tar(entries, out, epoch=self.epoch))
        finally:
            if staging is not None:
                from ..runtime.rootfs import remove_tree

                remove_tree(staging)
        image_id = self._commit(state, probe, " ".join(probe.cmd or ()), diff_id)
        if not in_trigger:
            yield StepDone(number, image_id, False, time.monotonic() - started)

    def _from_tree(self, parsed, stage, from_stage: str) -> Iterator[BuildEvent]:
        from ..runtime.commit import owner_map
        from ..runtime.snapshots import ensure_snapshots

        target = df.resolve_from(parsed, stage.index, from_stage)
        if isinstance(target, int):
            if target not in self.stage_images:
                raise _Failed(f"invalid from flag value {from_stage}: stage {target} was not built")
            image_id = self.stage_images[target]
        else:
            image_id = yield from self._image(target, f"invalid from flag value {target}: ")
        if image_id is None:
            return ImageTree([], owner_map())
        return ImageTree(ensure_snapshots(self.store, load_config(self.store, image_id).diff_ids), owner_map())


def build(engine, opts: BuildOptions) -> Iterator[BuildEvent]:
    """Build an image; yields events (last: :class:`Built` and :class:`Tagged`, or :class:`BuildFailed`)."""
    # --- graph: the steps' results (cached/ran, image IDs) are kept in store kv ``last_build`` ---
    from ..graph import record_last_build

    yield from record_last_build(engine.store, Builder(engine, opts).run())

