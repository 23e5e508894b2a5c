"""Dockerfile builds with the classic builder's steps, intermediate images and cache.

:func:`build` is a generator of :class:`BuildEvent` values (what ``docker build`` prints, one
event per line); the CLI prints them with :func:`render`, widgets show them. Each instruction is one
step: metadata instructions commit an empty layer from a container that never runs, RUN runs a
container and commits its writable layer, COPY/ADD write into a container's writable layer. Every
step's image is kept (untagged, with its parent) so the next build can find it in the cache: the
children of the current image built here whose container config equals this step's.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Iterator

from . import dockerfile as df
from .buildcontext import BuildContext, sources_hash
from .errors import BuildError, ContainerError, EngineError, ImageNotFound
from .format import go_quote, human_size
from .images import load_config, now_or_epoch, register_config, resolve, rfc3339, tag_image
from .layer import source_date_epoch
from .runtime.containers import ContainerDirs
from .runtime.manager import EMPTY_TAR_DIGEST, RunOptions, Runtime
from .spec import DEFAULT_PATH, OCI_LAYER, ContainerConfig, History, ImageConfig, host_platform

DEFAULT_SHELL = ("/bin/sh", "-c")


# --- events -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildEvent:
    """Base of everything a build reports."""


@dataclass(frozen=True)
class ContextSent(BuildEvent):
    size: int


@dataclass(frozen=True)
class StepStarted(BuildEvent):
    number: int
    total: int
    text: str
    line: int


@dataclass(frozen=True)
class CacheHit(BuildEvent):
    image_id: str


@dataclass(frozen=True)
class ContainerRunning(BuildEvent):
    container_id: str


@dataclass(frozen=True)
class Output(BuildEvent):
    stream: str
    data: bytes


@dataclass(frozen=True)
class ContainerRemoved(BuildEvent):
    container_id: str


@dataclass(frozen=True)
class StepDone(BuildEvent):
    number: int
    image_id: str
    cached: bool
    seconds: float


@dataclass(frozen=True)
class Warning(BuildEvent):  # noqa: A001 - Docker's word
    text: str


@dataclass(frozen=True)
class BuildFailed(BuildEvent):
    message: str
    exit_code: int


@dataclass(frozen=True)
class Built(BuildEvent):
    image_id: str


@dataclass(frozen=True)
class Tagged(BuildEvent):
    ref: str


def render(event: BuildEvent) -> str | None:
    """The line ``docker build`` (classic) prints for an event; None for raw output."""
    if isinstance(event, ContextSent):
        return f"Sending build context to Docker daemon  {human_size(event.size, 4)}"
    if isinstance(event, StepStarted):
        return f"Step {event.number}/{event.total} : {event.text}"
    if isinstance(event, CacheHit):
        return " ---> Using cache"
    if isinstance(event, ContainerRunning):
        return f" ---> Running in {event.container_id[:12]}"
    if isinstance(event, ContainerRemoved):
        return f"Removing intermediate container {event.container_id[:12]}"
    if isinstance(event, StepDone):
        return f" ---> {event.image_id[7:19]}"
    if isinstance(event, Warning):
        return event.text
    if isinstance(event, BuildFailed):
        return event.message
    if isinstance(event, Built):
        return f"Successfully built {event.image_id[7:19]}"
    if isinstance(event, Tagged):
        return f"Successfully tagged {event.ref}"
    return None


# --- options and state --------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildOptions:
    """``docker build`` flags. ``dockerfile_text`` replaces the file (a notebook cell)."""

    context: str | None = None
    dockerfile: str | None = None
    dockerfile_text: str | None = None
    tags: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()
    no_cache: bool = False
    rm: bool = True
    force_rm: bool = False
    target: str | None = None


@dataclass
class _State:
    """The image being built in one stage, step by step."""

    image_id: str | None
    image: ImageConfig
    args: dict[str, str | None] = field(default_factory=dict)   # ARGs declared in this stage

    @property
    def config(self) -> ContainerConfig:
        return self.image.config


class _Failed(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def _parse_build_args(values: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for v in values:
        k, eq, val = v.partition("=")
        out[k] = val if eq else os.environ.get(k)
    return out


def _read_dockerfile(opts: BuildOptions) -> tuple[str, str]:
    if opts.dockerfile_text is not None:
        return opts.dockerfile_text, opts.dockerfile or "Dockerfile"
    name = opts.dockerfile or "Dockerfile"
    path = name if os.path.isabs(name) or opts.context is None else os.path.join(opts.context, name)
    if name == "-":
        raise BuildError("reading the Dockerfile from stdin: pass dockerfile_text")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), os.path.basename(name)
    except FileNotFoundError:
        raise BuildError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                         f"lstat {os.path.abspath(path)}: no such file or directory") from None


# --- the builder ---------------------------------------------------------------------------------

class Builder:
    """One build: parse, then dispatch each step, yielding events."""

    def __init__(self, engine, opts: BuildOptions) -> None:
        self.engine = engine
        self.store = engine.store
        self.runtime: Runtime = engine.runtime
        self.opts = opts
        self.build_args = _parse_build_args(opts.build_args)
        self.used_args: set[str] = set()
        self.cache_busted = opts.no_cache
        self.epoch = source_date_epoch()
        self.stage_images: list[str | None] = []

    # events helpers
    def run(self) -> Iterator[BuildEvent]:
        text, name = _read_dockerfile(self.opts)
        self.context = BuildContext.open(self.opts.context)
        yield ContextSent(self.context.tar_size(name, text))
        try:
            parsed = df.parse(text, filename=name)
            df.check_stages(parsed)
            stages = list(parsed.stages)
            if self.opts.target:
                names = [s.name for s in stages]
                if self.opts.target.lower() not in names:
                    raise df.DockerfileError(f"failed to reach build target {self.opts.target} in Dockerfile")
                stages = stages[: names.index(self.opts.target.lower()) + 1]
        except df.DockerfileError as e:
            yield BuildFailed(f"Error response from daemon: {e}", 1)
            return
        for w in parsed.warnings:
            yield Warning(w)
        total = parsed.instruction_count
        if self.opts.target:
            total = len(parsed.meta_args) + sum(1 + len(s.instructions) for s in stages)
        meta_env = {a.name: self.build_args.get(a.name, a.default) for a in parsed.meta_args}
        number = 0
        state: _State | None = None
        try:
            for a in parsed.meta_args:
                number += 1
                yield StepStarted(number, total, a.original, a.line)
                self.used_args.add(a.name)
            for stage in stages:
                number += 1
                frm = stage.from_instruction
                yield StepStarted(number, total, frm.original, frm.line)
                state = self._from(parsed, stage, {k: v for k, v in meta_env.items() if v is not None})
                yield StepDone(number, state.image_id or "", True, 0.0) if state.image_id else Warning(" ---> ")
                for trigger in state.config.on_build:
                    yield Warning(f"# Executing 1 build trigger")
                    inst = df.parse_instruction(trigger)
                    yield from self._dispatch(parsed, stage, state, inst, number, total, quiet_step=True)
                if state.config.on_build:
                    state.image = dataclasses.replace(state.image, config=dataclasses.replace(state.config, on_build=()))
                for inst in stage.instructions:
                    number += 1
                    yield StepStarted(number, total, inst.original, inst.line)
                    yield from self._dispatch(parsed, stage, state, inst, number, total)
                self.stage_images.append(state.image_id)
        except _Failed as f:
            yield BuildFailed(f.message, f.code)
            return
        except (ContainerError, BuildError) as e:
            yield BuildFailed(str(e), e.exit_code)
            return
        except df.DockerfileError as e:
            yield BuildFailed(str(e), 1)
            return
        unused = sorted(k for k in self.build_args if k not in self.used_args)
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

    def _from(self, parsed: df.Dockerfile, stage: df.Stage, meta_env: dict[str, str]) -> _State:
        frm = df.expand_instruction(stage.from_instruction, meta_env, escape=parsed.escape)
        base = frm.base
        prior = {s.name: i for i, s in enumerate(parsed.stages[:stage.index]) if s.name}
        if base.lower() in prior:
            image_id = self.stage_images[prior[base.lower()]]
        elif base == "scratch":
            plat = host_platform()
            image = ImageConfig(plat.architecture, plat.os, None, ContainerConfig(env=(f"PATH={DEFAULT_PATH}",)), ())
            return _State(None, image)
        else:
            try:
                image_id = resolve(self.store, base)
            except ImageNotFound:
                raise _Failed(f"pull access denied for {base}: the image is not in the local store and LayerLab "
                              "does not download images (use `layerlab pull` from a registry or `layerlab load`)")
            except EngineError as e:
                raise _Failed(f"invalid reference format: {base}: {e}")
        assert image_id is not None
        image = load_config(self.store, image_id)
        if "PATH" not in image.config.env_dict():
            image = dataclasses.replace(image, config=dataclasses.replace(
                image.config, env=image.config.env + (f"PATH={DEFAULT_PATH}",)))
        return _State(image_id, image)

    # --- dispatch --------------------------------------------------------------------------------

    def _scope_env(self, state: _State) -> dict[str, str]:
        env = {k: v for k, v in state.args.items() if v is not None}
        env.update(state.config.env_dict())
        return env

    def _dispatch(self, parsed, stage, state: _State, inst, number: int, total: int,
                  quiet_step: bool = False) -> Iterator[BuildEvent]:
        started = time.monotonic()
        inst = df.expand_instruction(inst, self._scope_env(state), escape=parsed.escape)
        cfg = state.config
        if isinstance(inst, df.Run):
            yield from self._run(state, inst, number, started)
            return
        if isinstance(inst, (df.Copy, df.Add)):
            yield from self._copy(parsed, stage, state, inst, number, started)
            return
        if isinstance(inst, df.Env):
            for k, v in inst.pairs:
                cfg = cfg.with_env(k, v)
            comment = "ENV" + "".join(f" {k}={v}" for k, v in inst.pairs)
        elif isinstance(inst, df.Label):
            labels = dict(cfg.labels)
            labels.update(inst.pairs)
            cfg = dataclasses.replace(cfg, labels=tuple(sorted(labels.items())))
            comment = "LABEL" + "".join(f" {k}={v}" for k, v in inst.pairs)
        elif isinstance(inst, df.Maintainer):
            state.image = dataclasses.replace(state.image, author=inst.maintainer)
            comment = f"MAINTAINER {inst.maintainer}"
        elif isinstance(inst, (df.Cmd, df.Entrypoint)):
            words = self._command(state, inst.cmd, inst.exec_form)
            quoted = "[" + " ".join(go_quote(w) for w in words) + "]"
            if isinstance(inst, df.Cmd):
                cfg = dataclasses.replace(cfg, cmd=words)
                comment = f"CMD {quoted}"
            else:
                cfg = dataclasses.replace(cfg, entrypoint=words if words else None,
                                          cmd=None if not self._cmd_set_in_stage(stage, inst) else cfg.cmd)
                comment = f"ENTRYPOINT {quoted}"
        elif isinstance(inst, df.Expose):
            ports = set(cfg.exposed_ports) | {p if "/" in p else f"{p}/tcp" for p in inst.ports}
            cfg = dataclasses.replace(cfg, exposed_ports=tuple(sorted(ports)))
            comment = "EXPOSE " + " ".join(inst.ports)
        elif isinstance(inst, df.Volume):
            cfg = dataclasses.replace(cfg, volumes=tuple(sorted(set(cfg.volumes) | set(inst.paths))))
            comment = f"VOLUME [{' '.join(inst.paths)}]"
        elif isinstance(inst, df.User):
            cfg = dataclasses.replace(cfg, user=inst.user)
            comment = f"USER {inst.user}"
        elif isinstance(inst, df.Workdir):
            path = inst.path if inst.path.startswith("/") else os.path.join(cfg.working_dir or "/", inst.path)
            cfg = dataclasses.replace(cfg, working_dir=os.path.normpath(path))
            comment = f"WORKDIR {cfg.working_dir}"
        elif isinstance(inst, df.StopSignal):
            cfg = dataclasses.replace(cfg, stop_signal=inst.signal)
            comment = f"STOPSIGNAL {inst.signal}"
        elif isinstance(inst, df.Shell):
            cfg = dataclasses.replace(cfg, shell=inst.shell)
            comment = "SHELL [" + " ".join(go_quote(w) for w in inst.shell) + "]"
        elif isinstance(inst, df.Onbuild):
            cfg = dataclasses.replace(cfg, on_build=cfg.on_build + (inst.expression,))
            comment = f"ONBUILD {inst.expression}"
        elif isinstance(inst, df.Healthcheck):
            hc = {"Test": list(inst.test)}
            for key, value in (("Interval", inst.interval), ("Timeout", inst.timeout),
                               ("StartPeriod", inst.start_period), ("Retries", inst.retries)):
                if value:
                    hc[key] = value
            cfg = dataclasses.replace(cfg, healthcheck=tuple(sorted(hc.items())))
            comment = f"HEALTHCHECK &{{{go_quote_list(inst.test)} {inst.interval} {inst.timeout} {inst.start_period} {inst.retries}}}"
        elif isinstance(inst, df.Arg):
            for name, default in inst.pairs:
                value = self.build_args[name] if name in self.build_args and self.build_args[name] is not None \
                    else default
                state.args[name] = value
                self.used_args.add(name)
            name, default = inst.pairs[0]
            comment = f"ARG {name}" + (f"={default}" if default is not None else "")
        else:  # pragma: no cover - the parser knows no other instruction
            raise _Failed(f"unsupported instruction {inst.keyword}")
        state.image = dataclasses.replace(state.image, config=cfg)
        probe = dataclasses.replace(cfg, cmd=self._shell(cfg) + (f"#(nop) ", comment))
        yield from self._commit_step(state, probe, number, started, kind="meta",
                                     workdir=cfg.working_dir if isinstance(inst, df.Workdir) else None)

    def _cmd_set_in_stage(self, stage, inst) -> bool:
        return any(isinstance(i, df.Cmd) and i.line < inst.line for i in stage.instructions)

    def _shell(self, cfg: ContainerConfig) -> tuple[str, ...]:
        return tuple(cfg.shell) if cfg.shell else DEFAULT_SHELL

    def _command(self, state: _State, cmd, exec_form: bool) -> tuple[str, ...]:
        if exec_form:
            return tuple(cmd)
        if cmd in ((), ""):
            return ()
        return self._shell(state.config) + (cmd,)

    # --- cache ----------------------------------------------------------------------------------

    def _probe_cache(self, state: _State, probe: ContainerConfig) -> str | None:
        if self.cache_busted or state.image_id is None:
            return None
        best: tuple[str, float] | None = None
        for child in self.store.children(state.image_id):
            row = self.store.image(child)
            if not row.built_locally:
                continue
            cfg = load_config(self.store, child)
            container_config = dict(cfg.extra).get("container_config")
            if container_config is None or ContainerConfig.from_dict(container_config) != probe:
                continue
            if best is None or row.added > best[1]:
                best = (child, row.added)
        return best[0] if best else None

    # --- steps ----------------------------------------------------------------------------------

    def _new_container(self, state: _State, argv: tuple[str, ...], env: tuple[str, ...] = ()):
        image = state.image_id
        if image is None:
            raise _Failed("LayerLab cannot run containers from scratch images yet: add a base image with FROM")
        opts = RunOptions(image=image, command=argv, entrypoint="", env=env, user=state.config.user or None,
                          workdir=state.config.working_dir or None)
        return self.runtime.create(opts)

    def _commit_step(self, state: _State, probe: ContainerConfig, number: int, started: float, *, kind: str,
                     workdir: str | None = None, container=None, created_by: str | None = None,
                     announce: bool = True) -> Iterator[BuildEvent]:
        cached = self._probe_cache(state, probe)
        if cached:
            yield CacheHit(cached)
            self._advance(state, cached)
            yield StepDone(number, cached, True, time.monotonic() - started)
            return
        self.cache_busted = True
        if container is None:
            if state.image_id is None:  # scratch: metadata only, no container
                image_id = self._commit(state, None, probe, created_by)
                yield StepDone(number, image_id, False, time.monotonic() - started)
                return
            container = self._new_container(state, probe.cmd or ("/bin/sh",))
            if announce:
                yield ContainerRunning(container.id)
            if workdir:
                os.makedirs(ContainerDirs(self.store, container.id).upper / workdir.lstrip("/"), exist_ok=True)
        try:
            image_id = self._commit(state, container, probe, created_by)
        finally:
            if self.opts.rm or self.opts.force_rm:
                self.runtime.remove(container.id, force=True)
        if (self.opts.rm or self.opts.force_rm) and announce:
            yield ContainerRemoved(container.id)
        yield StepDone(number, image_id, False, time.monotonic() - started)

    def _advance(self, state: _State, image_id: str) -> None:
        state.image_id = image_id
        state.image = load_config(self.store, image_id)

    def _commit(self, state: _State, container, probe: ContainerConfig, created_by: str | None) -> str:
        from .runtime.commit import write_container_layer

        diff_ids = state.image.diff_ids
        empty = True
        if container is not None:
            with self.store.blob_writer(verify=False) as w:
                layer = write_container_layer(container, self.store, w, epoch=self.epoch)
                w.commit(layer.diff_id)
            empty = layer.diff_id == EMPTY_TAR_DIGEST
            if not empty:
                self.store.add_layer(layer.diff_id, layer.size, layer.tar_size)
                self.store.add_layer_blob(layer.diff_id, layer.diff_id, OCI_LAYER, layer.tar_size)
                diff_ids = diff_ids + (layer.diff_id,)
            elif not self.store.has_layer(layer.diff_id):
                self.store.delete_blob(layer.diff_id)
        ts = rfc3339(now_or_epoch())
        history = History(created=ts, created_by=created_by if created_by is not None else " ".join(probe.cmd or ()),
                          empty_layer=empty)
        extra = dict(state.image.extra)
        extra["container_config"] = probe.to_dict()
        image = dataclasses.replace(state.image, created=ts, diff_ids=diff_ids,
                                    history=state.image.history + (history,), extra=tuple(sorted(extra.items())))
        image_id, _ = register_config(self.store, image.to_json(), parent=state.image_id, built_locally=True)
        self.engine._emit("image", "create", image_id, None)
        state.image_id = image_id
        state.image = image
        return image_id

    def _run(self, state: _State, inst: df.Run, number: int, started: float) -> Iterator[BuildEvent]:
        argv = tuple(inst.cmd) if inst.exec_form else self._shell(state.config) + (str(inst.cmd),)
        if inst.heredocs and not inst.exec_form:
            argv = self._shell(state.config) + (str(inst.cmd) + "\n" + "".join(h.content for h in inst.heredocs),)
        args = sorted(f"{k}={v}" for k, v in state.args.items()
                      if v is not None and k not in state.config.env_dict())
        probe_cmd = ((f"|{len(args)}", *args) if args else ()) + argv
        probe = dataclasses.replace(state.config, cmd=probe_cmd)
        cached = self._probe_cache(state, probe)
        if cached:
            yield CacheHit(cached)
            self._advance(state, cached)
            yield StepDone(number, cached, True, time.monotonic() - started)
            return
        self.cache_busted = True
        container = self._new_container(state, argv, tuple(args))
        yield ContainerRunning(container.id)
        outputs: list[BuildEvent] = []
        import subprocess

        from .runtime.manager import JsonLog, pump

        log = JsonLog(ContainerDirs(self.store, container.id).log)
        try:
            try:
                box = self.runtime.start(container, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
            except ContainerError as e:
                self.runtime.remove(container.id, force=True)
                yield ContainerRemoved(container.id)
                raise _Failed(str(e), 1) from None
            events: list[tuple[str, bytes]] = []
            code = _pump_events(box, events, log)
            for stream, data in events:
                outputs.append(Output(stream, data))
        finally:
            log.close()
        yield from outputs
        self.runtime.finish(container, code)
        if code != 0:
            if self.opts.force_rm:
                self.runtime.remove(container.id, force=True)
                yield ContainerRemoved(container.id)
            joined = " ".join(argv) if not inst.exec_form else go_json_list(argv)
            raise _Failed(f"The command '{joined}' returned a non-zero code: {code}", code)
        yield from self._finish_run(state, container, probe, probe_cmd, number, started)

    def _finish_run(self, state, container, probe, probe_cmd, number, started) -> Iterator[BuildEvent]:
        try:
            image_id = self._commit(state, container, probe, " ".join(probe_cmd))
        finally:
            if self.opts.rm or self.opts.force_rm:
                self.runtime.remove(container.id, force=True)
        if self.opts.rm or self.opts.force_rm:
            yield ContainerRemoved(container.id)
        yield StepDone(number, image_id, False, time.monotonic() - started)

    def _copy(self, parsed, stage, state: _State, inst, number: int, started: float) -> Iterator[BuildEvent]:
        word = "COPY" if isinstance(inst, df.Copy) else "ADD"
        from_stage = getattr(inst, "from_stage", None)
        if from_stage is not None:
            yield from self._copy_from(parsed, stage, state, inst, number, started)
            return
        for src in inst.sources:
            if "://" in src:
                raise _Failed(f"{word} failed: downloading {src} needs the internet, which LayerLab does not use; "
                              "download it into the build context and ADD it from there")
        if inst.heredocs:
            hashes = ["file:" + __import__("hashlib").sha256(h.content.encode()).hexdigest() for h in inst.heredocs]
            rels: list[str] = []
        else:
            rels = [r for src in inst.sources for r in self.context.resolve(src, word)]
            hashes = [self.context.source_hash(r) for r in rels]
        key = sources_hash(hashes)
        dest = inst.dest
        comment = f"{word} {key} in {dest} "
        probe = dataclasses.replace(state.config, cmd=self._shell(state.config) + (f"#(nop) {comment}",))
        cached = self._probe_cache(state, probe)
        if cached:
            yield CacheHit(cached)
            self._advance(state, cached)
            yield StepDone(number, cached, True, time.monotonic() - started)
            return
        self.cache_busted = True
        container = self._new_container(state, probe.cmd or ("/bin/sh",))
        try:
            upper = ContainerDirs(self.store, container.id).upper
            upper.mkdir(exist_ok=True)
            _write_sources(self.context, rels, inst, upper, state, multiple=len(inst.sources) > 1, add=word == "ADD",
                           store=self.store)
        except BaseException:
            self.runtime.remove(container.id, force=True)
            raise
        try:
            image_id = self._commit(state, container, probe, None)
        finally:
            self.runtime.remove(container.id, force=True)
        yield StepDone(number, image_id, False, time.monotonic() - started)

    def _copy_from(self, parsed, stage, state, inst, number, started) -> Iterator[BuildEvent]:
        from .runtime.commit import copy_out_entries  # noqa: F401 (documented path)

        target = df.resolve_from(parsed, stage.index, inst.from_stage)
        if isinstance(target, int):
            image_id = self.stage_images[target]
        else:
            try:
                image_id = resolve(self.store, target)
            except ImageNotFound:
                raise _Failed(f"COPY failed: no such image or stage: {target}")
        if image_id is None:
            raise _Failed("COPY --from a scratch stage has nothing to copy")
        from .runtime.snapshots import ensure_snapshots
        from .runtime.users import read_merged  # noqa: F401

        layers = ensure_snapshots(self.store, load_config(self.store, image_id).diff_ids)
        import tempfile

        with tempfile.TemporaryDirectory(dir=self.store.tmp_dir) as tmp:
            rels = []
            for src in inst.sources:
                _materialize(layers, src, os.path.join(tmp, "ctx"))
                rels.append(os.path.normpath(src.lstrip("/")))
            ctx = BuildContext.open(os.path.join(tmp, "ctx"))
            hashes = [ctx.source_hash(r) for r in rels]
            key = sources_hash(hashes)
            comment = f"COPY {key} in {inst.dest} "
            probe = dataclasses.replace(state.config, cmd=self._shell(state.config) + (f"#(nop) {comment}",))
            cached = self._probe_cache(state, probe)
            if cached:
                yield CacheHit(cached)
                self._advance(state, cached)
                yield StepDone(number, cached, True, time.monotonic() - started)
                return
            self.cache_busted = True
            container = self._new_container(state, probe.cmd or ("/bin/sh",))
            try:
                upper = ContainerDirs(self.store, container.id).upper
                upper.mkdir(exist_ok=True)
                _write_sources(ctx, rels, inst, upper, state, multiple=len(inst.sources) > 1, add=False,
                               store=self.store)
                image_id = self._commit(state, container, probe, None)
            finally:
                self.runtime.remove(container.id, force=True)
        yield StepDone(number, image_id, False, time.monotonic() - started)


def go_quote_list(words) -> str:
    return "[" + " ".join(go_quote(w) for w in words) + "]"


def go_json_list(words) -> str:
    import json

    return json.dumps(list(words))


def _pump_events(box, events: list, log) -> int:
    from .runtime.manager import pump

    return pump(box, lambda stream, data: events.append((stream, data)), log)


def _materialize(layers: list[str], src: str, dest_root: str) -> None:
    """Copy ``src`` out of a layer stack into ``dest_root`` (same relative path)."""
    from .runtime.commit import merged_entries
    from .layer import write_tar
    from .extract import extract_layer
    import io

    entries = list(merged_entries(layers, lambda u, g: (u, g), root=src))
    if not entries:
        raise _Failed(f"COPY failed: stat {src}: file does not exist")
    parents = []
    rel = os.path.normpath(src.lstrip("/"))
    parts = rel.split("/")[:-1]
    from .layer import Entry

    for i in range(len(parts)):
        parents.append(Entry("/".join(parts[: i + 1]), "dir", 0o755))
    buf = io.BytesIO()
    write_tar(parents + entries, buf)
    buf.seek(0)
    os.makedirs(dest_root, exist_ok=True)
    extract_layer(buf, dest_root)


def _chown_ids(store, spec: str | None, state: _State) -> tuple[int, int] | None:
    """``--chown=user[:group]`` resolved through the image's own passwd/group files."""
    if not spec:
        return None
    from .runtime.snapshots import ensure_snapshots
    from .runtime.users import resolve_user

    layers = ensure_snapshots(store, state.image.diff_ids) if state.image.diff_ids else []
    user, _, group = spec.partition(":")
    try:
        who = resolve_user(f"{user}:{group or user}" if not group and not user.isdigit() else spec, layers)
    except ContainerError as e:
        raise _Failed(str(e)) from None
    return who.uid, (who.gid if group or not user.isdigit() else who.uid)


def _write_sources(ctx: BuildContext, rels: list[str], inst, upper, state: _State, *, multiple: bool, add: bool,
                   store=None) -> None:
    """Put COPY/ADD sources into a container's writable layer, with Docker's destination rules."""
    dest = inst.dest
    if not dest.startswith("/"):
        dest = os.path.join(state.config.working_dir or "/", dest)
    dest_is_dir = inst.dest.endswith("/") or multiple or inst.dest in (".", "./")
    if multiple and not inst.dest.endswith("/"):
        raise _Failed(f"When using {'ADD' if add else 'COPY'} with more than one source file, the destination "
                      "must be a directory and end with a /")
    owner = _chown_ids(store, inst.chown, state)
    mode = int(inst.chmod, 8) if getattr(inst, "chmod", None) else None
    target_root = os.path.join(str(upper), dest.lstrip("/"))
    if inst.heredocs:
        for h in inst.heredocs:
            path = os.path.join(target_root, h.name) if dest_is_dir else target_root
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(h.content)
            _apply(path, owner, mode)
        return
    assert ctx.root is not None
    for rel in rels:
        src = ctx.root / rel if rel != "." else ctx.root
        if src.is_dir() and not src.is_symlink():
            _copy_tree(ctx, rel, target_root, owner, mode)
            continue
        if add and _is_archive(src):
            from .extract import extract_layer

            os.makedirs(target_root, exist_ok=True)
            extract_layer(str(src), target_root)
            continue
        path = os.path.join(target_root, os.path.basename(rel)) if dest_is_dir else target_root
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        if os.path.lexists(path) and os.path.isdir(path) and not os.path.islink(path):
            path = os.path.join(path, os.path.basename(rel))
        _copy_one(str(src), path)
        _apply(path, owner, mode)


def _copy_tree(ctx: BuildContext, rel: str, target_root: str, owner, mode) -> None:
    os.makedirs(target_root, exist_ok=True)
    prefix = "" if rel == "." else rel.rstrip("/") + "/"
    for p in ctx.files():
        if prefix and not p.startswith(prefix):
            continue
        sub = p[len(prefix):]
        src = ctx.root / p  # type: ignore[operator]
        dst = os.path.join(target_root, sub)
        if src.is_dir() and not src.is_symlink():
            os.makedirs(dst, exist_ok=True)
            shutil.copystat(src, dst)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            _copy_one(str(src), dst)
        _apply(dst, owner, mode)


def _copy_one(src: str, dst: str) -> None:
    if os.path.lexists(dst) and not os.path.isdir(dst):
        os.unlink(dst)
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(src, dst)


def _apply(path: str, owner, mode) -> None:
    if owner is not None:
        try:
            os.lchown(path, *owner)
        except PermissionError:
            pass
    if mode is not None and not os.path.islink(path):
        os.chmod(path, mode)


def _is_archive(path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    from .layer import detect_compression

    if detect_compression(head):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def build(engine, opts: BuildOptions) -> Iterator[BuildEvent]:
    """Build an image; yields events (last: :class:`Built` and :class:`Tagged`, or :class:`BuildFailed`)."""
    yield from Builder(engine, opts).run()


__all__ = ["BuildOptions", "BuildEvent", "build", "render"]
