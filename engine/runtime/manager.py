"""The container verbs: create, start, run, ps, rm, wait, diff, commit, export (the runtime facade).

:class:`Runtime` turns ``run``/``create`` options into a :class:`~.containers.Container` record,
starts it on the sandbox, streams its output and keeps the record true. It never prints: output
goes to a callback ``(stream, bytes)``; errors are :class:`~engine.errors.ContainerError` with
Docker's message and exit code (125 for anything before the command starts, 126/127 when the
command cannot run).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

from ..errors import ContainerError, EngineError, ImageNotFound
from ..images import load_config, resolve
from ..names import unique_name
from ..spec import DEFAULT_PATH
from ..store import Store
from ..values import replace, value
from .containers import Container, ContainerDirs, ContainerRecords, new_id
from .options import PortSpec, check_name, merge_env, parse_env, parse_publish, parse_volume

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from typing import BinaryIO

Output = Callable[[str, bytes], None]


@value
class RunOptions:
    """The flags of ``docker run`` / ``docker create`` that LayerLab supports."""

    image: str
    command: tuple[str, ...] = ()
    entrypoint: str | None = None          # None: the image's; "": none
    env: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    name: str | None = None
    hostname: str | None = None
    network: str = "default"
    publish: tuple[str, ...] = ()
    publish_all: bool = False
    expose: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    detach: bool = False
    rootfs_mode: str = "auto"
    pull: str = "missing"                  # --pull always|missing|never (Engine.create_container/run pull)




class Runtime:
    """Container verbs over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.records = ContainerRecords(store)

    # --- create ----------------------------------------------------------------------------------

    def create(self, opts: RunOptions, *, snapshots: bool = True) -> Container:
        """``docker create``: check everything, then write the record and the directories.

        ``snapshots=False``: the image's layer snapshots are made when the container is first started,
        exported or copied from (the builder's containers for steps that run nothing never are).
        """
        from .snapshots import ensure_snapshots, snapshot_dirs
        from .users import resolve_user

        try:
            image_id = resolve(self.store, opts.image)
        except ImageNotFound:
            raise ContainerError(f"No such image: {_with_tag(opts.image)}", exit_code=125) from None
        image = load_config(self.store, image_id)
        cfg = image.config
        entrypoint = tuple(cfg.entrypoint or ()) if opts.entrypoint is None else \
            ((opts.entrypoint,) if opts.entrypoint else ())
        cmd = tuple(opts.command) if opts.command else (tuple(cfg.cmd or ()) if opts.entrypoint is None else ())
        argv = entrypoint + cmd
        if not argv:
            raise ContainerError("No command specified")
        network = {"default": "private", "bridge": "private", "private": "private", "host": "host",
                   "none": "none"}.get(opts.network)
        if network is None:
            raise ContainerError(f"network {opts.network} not found")
        ports: list[PortSpec] = []
        for p in opts.publish:
            ports.extend(parse_publish(p))
        exposed = sorted(set(cfg.exposed_ports) | {e if "/" in e else f"{e}/tcp" for e in opts.expose})
        if opts.publish_all:
            published = {p.container_port for p in ports}
            for e in exposed:
                port = int(e.split("/")[0])
                if port not in published:
                    ports.append(PortSpec("0.0.0.0", 0, port))
        if ports and network != "private":
            ports = []  # Docker ignores published ports with host or none networks
        volumes = tuple(parse_volume(v) for v in opts.volumes)
        config_env = merge_env(list(cfg.env), parse_env(opts.env, opts.env_files))
        cid = new_id()
        name = check_name(opts.name) if opts.name else unique_name(self.records.name_taken, cid)
        hostname = opts.hostname or cid[:12]
        env = merge_env([f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"] + (["TERM=xterm"] if opts.tty else []),
                        config_env)
        lowerdirs = (ensure_snapshots if snapshots else snapshot_dirs)(self.store, image.diff_ids)
        user_spec = opts.user if opts.user is not None else cfg.user
        who = resolve_user(user_spec, lowerdirs)
        cwd = opts.workdir or cfg.working_dir or "/"
        if not cwd.startswith("/"):
            raise ContainerError(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
        record = Container(
            id=cid, name=name, image_id=image_id, image=opts.image, argv=argv, env=tuple(env), cwd=cwd,
            user=user_spec, uid=who.uid, gid=who.gid, groups=who.groups, hostname=hostname, network=network,
            tty=opts.tty, interactive=opts.interactive, auto_remove=opts.auto_remove,
            rootfs_mode=os.environ.get("LAYERLAB_ROOTFS", opts.rootfs_mode), lowerdirs=tuple(lowerdirs),
            ports=tuple(ports), volumes=volumes,
            config={"Cmd": list(cmd) or None, "Entrypoint": list(entrypoint) or None, "Env": config_env,
                    "WorkingDir": opts.workdir or cfg.working_dir, "User": user_spec, "Hostname": hostname,
                    "ExposedPorts": exposed, "Labels": dict(cfg.labels), "Tty": opts.tty,
                    "OpenStdin": opts.interactive, "Image": opts.image, "StopSignal": cfg.stop_signal},
            created=time.time())
        dirs = ContainerDirs(self.store, cid)
        dirs.create()
        try:
            self.records.insert_new(record)
        except BaseException:
            dirs.remove()
            raise
        return record

    # --- start and run ------------------------------------------------------------------------------

    def _rootfs_mode(self, requested: str) -> str:
        """Resolve ``auto`` once per store, kernel and user (the probe mounts an overlay: ~15 ms)."""
        if requested != "auto":
            return requested
        key = f"overlay-supported:{os.uname().release}:{os.geteuid()}"
        known = self.store.get_kv(key)
        if known is None:
            from .rootfs import overlay_supported

            known = "overlay" if overlay_supported(str(self.store.home)) else "copy"
            self.store.set_kv(key, known)
        return known

    def _spec(self, c: Container):
        from .ports import PortBinding
        from .sandbox import Mount, SandboxSpec
        from .snapshots import ensure_lowerdirs

        dirs = ContainerDirs(self.store, c.id)
        return SandboxSpec(
            lowerdirs=ensure_lowerdirs(self.store, c.image_id, c.lowerdirs), upperdir=str(dirs.upper), workdir=str(dirs.work), argv=c.argv, env=c.env,
            cwd=c.cwd, uid=c.uid, gid=c.gid, groups=c.groups, hostname=c.hostname, network=c.network,  # type: ignore[arg-type]
            mounts=tuple(Mount(v.source, v.target, v.readonly) for v in c.volumes),
            ports=tuple(PortBinding(p.host_ip, p.host_port, p.container_port, p.proto) for p in c.ports),
            rootfs_mode=self._rootfs_mode(c.rootfs_mode), tty=c.tty)  # type: ignore[arg-type]

    def start(self, c: Container, *, stdin=None, stdout=None, stderr=None, detach: bool = False):
        """Start a created or exited container; returns the :class:`~.sandbox.Sandbox`.

        Published ports are bound first (``PortInUse`` before anything runs); the shim writes the
        container's output to its json-file log in every mode.
        """
        from . import sandbox

        c = self.records.get(c.id)
        if c.running:
            raise ContainerError(f"container {c.id} is already running", exit_code=1)
        dirs = ContainerDirs(self.store, c.id)
        try:
            box = sandbox.start(self._spec(c), stdin=stdin, stdout=stdout, stderr=stderr, detach=detach,
                                state_dir=str(dirs.state), log_path=str(dirs.log), endpoint=f"{c.name} ({c.id})")
        except ContainerError as e:
            self.records.put(replace(c, exit_code=e.exit_code, error=str(e)))
            raise
        bound = tuple(PortSpec(b.host_ip or "0.0.0.0", b.host_port, b.container_port, b.proto) for b in box.ports)
        self.records.put(replace(c, state="running", pid=box.pid, started_at=time.time(),
                                             exit_code=None, finished_at=None, error="", bound_ports=bound))
        return box

    def finish(self, c: Container, code: int) -> Container:
        """Record that a container's process ended with ``code``."""
        current = self.records.get(c.id)
        if current.state == "exited":
            return current
        done = replace(current, state="exited", exit_code=code, finished_at=time.time(), pid=None)
        self.records.put(done)
        return done

    def run(self, opts: RunOptions, *, output: Output, stdin: BinaryIO | bytes | int | None = None) -> tuple[Container, int]:
        """``docker run`` in the foreground: stream output to ``output``; return the record and exit code.

        A failure before the command starts removes the container (nothing half-created is left).
        KeyboardInterrupt kills the whole container (within a second) and is re-raised.
        """
        from .foreground import run_foreground

        c = self.create(opts)
        feed: bytes | None = None
        stdin_fd: int | None = None
        stdin_arg: object = subprocess.DEVNULL
        if opts.interactive:
            if isinstance(stdin, bytes):
                feed, stdin_arg = stdin, subprocess.PIPE
            elif isinstance(stdin, int):
                stdin_fd, stdin_arg = stdin, subprocess.PIPE
        try:
            if opts.tty:
                box = self.start(c)
            else:
                box = self.start(c, stdin=stdin_arg, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except ContainerError:
            self.remove(c.id, force=True)
            raise
        try:
            code = run_foreground(box, on_stdout=lambda b: output("stdout", b),
                                  on_stderr=lambda b: output("stderr", b), input=feed, stdin_fd=stdin_fd)
        except KeyboardInterrupt:
            self.finish(c, 130)
            if opts.auto_remove:
                self.remove(c.id, force=True)
            raise
        finally:
            box.close()
        c = self.finish(c, code)
        if opts.auto_remove:
            self.remove(c.id, force=True)
        return c, code

    def run_detached(self, opts: RunOptions) -> Container:
        """``docker run -d``: the container outlives this process; its output goes to its log."""
        c = self.create(opts)
        try:
            box = self.start(c, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             detach=True)
        except ContainerError:
            self.remove(c.id, force=True)
            raise
        box.close()
        return self.records.get(c.id)

    def start_detached(self, ref: str) -> Container:
        """``docker start``: start a created or exited container in the background."""
        c = self.records.get(ref)
        if c.running:
            return c
        box = self.start(c, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         detach=True)
        box.close()
        return self.records.get(c.id)

    def start_attached(self, ref: str, *, output: Output) -> int:
        """``docker start -a``: start and stream the output; return the exit code."""
        from .foreground import run_foreground

        c = self.records.get(ref)
        box = self.start(c, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            code = run_foreground(box, on_stdout=lambda b: output("stdout", b),
                                  on_stderr=lambda b: output("stderr", b))
        finally:
            box.close()
        self.finish(c, code)
        return code

    def exec(self, ref: str, argv: tuple[str, ...], *, env: tuple[str, ...] = (), user: str | None = None,
             workdir: str | None = None, output: Output, stdin: bytes | int | None = None,
             tty: bool = False, detach: bool = False) -> int:
        """``docker exec``: run ``argv`` inside the running container's namespaces.

        With ``detach`` the command keeps running in the background and 0 is returned at once.
        """
        from .commit import container_layers
        from .foreground import run_foreground
        from .nsexec import exec_in
        from .users import resolve_user

        c = self.records.get(ref)
        if not c.running:
            raise ContainerError(f"Container {c.id} is not running", exit_code=1)
        if not argv:
            raise ContainerError("No exec command specified", exit_code=1)
        who = resolve_user(user if user is not None else c.user, container_layers(c, self.store))
        full_env = merge_env(list(c.env), parse_env(env))
        feed = stdin if isinstance(stdin, bytes) else None
        stdin_fd = stdin if isinstance(stdin, int) else None
        state_dir = str(ContainerDirs(self.store, c.id).state)
        if detach:
            exec_in(state_dir, argv, env=tuple(full_env), cwd=workdir or c.cwd, uid=who.uid, gid=who.gid,
                    groups=who.groups, container_id=c.id, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, detach=True).close()
            return 0
        box = exec_in(state_dir, argv, env=tuple(full_env), cwd=workdir or c.cwd,
                      uid=who.uid, gid=who.gid, groups=who.groups, container_id=c.id, tty=tty,
                      stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                      stdout=None if tty else subprocess.PIPE, stderr=None if tty else subprocess.PIPE)
        try:
            return run_foreground(box, on_stdout=lambda b: output("stdout", b),
                                  on_stderr=lambda b: output("stderr", b), input=feed, stdin_fd=stdin_fd)
        finally:
            box.close()

    def logs(self, ref: str, *, tail: int | None = None, follow: bool = False):
        """``docker logs``: the container's output lines (``LogLine``), following while it runs."""
        from .control import is_running
        from .logs import read_logs

        c = self.records.get(ref)
        dirs = ContainerDirs(self.store, c.id)
        if not dirs.log.exists():
            return iter(())
        state_dir = str(dirs.state)
        return read_logs(str(dirs.log), tail=tail, follow=follow,
                         stop=lambda: not (dirs.state / "state.json").exists() or not is_running(state_dir))

    # --- queries and removal -------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        return self.records.get(ref)

    def list(self, *, all: bool = False) -> list[Container]:
        cs = self.records.all()
        return cs if all else [c for c in cs if c.running]

    def remove(self, ref: str, *, force: bool = False) -> Container:
        """``docker rm [-f]``: a running container needs ``force`` (then it is killed first)."""
        c = self.records.get(ref)
        if c.running:
            if not force:
                raise ContainerError(f"You cannot remove a running container {c.id}. Stop the container before "
                                     "attempting removal or force remove", exit_code=1)
            from .control import signal_container, wait_container

            state_dir = str(ContainerDirs(self.store, c.id).state)
            signal_container(state_dir, signal.SIGKILL)
            try:
                wait_container(state_dir, 10)
            except TimeoutError:
                raise ContainerError(f"could not kill container {c.id}", exit_code=1) from None
        ContainerDirs(self.store, c.id).remove()
        self.records.delete(c.id)
        return c

    def kill(self, ref: str, sig: int = signal.SIGKILL) -> Container:
        """``docker kill``: signal the container's init (SIGKILL ends every process in it)."""
        from .control import signal_container

        c = self.records.get(ref)
        if not c.running or not signal_container(str(ContainerDirs(self.store, c.id).state), sig):
            raise ContainerError(f"Cannot kill container: {ref}: Container {c.id} is not running", exit_code=1)
        return c

    def wait(self, ref: str, *, timeout: float | None = None) -> int:
        """``docker wait``: block until the container exits; return its exit code."""
        from .control import wait_container

        c = self.records.get(ref)
        if c.running:
            try:
                code = wait_container(str(ContainerDirs(self.store, c.id).state), timeout)
            except TimeoutError:
                raise ContainerError(f"container {c.short_id} is still running", exit_code=1) from None
            return self.finish(c, code).exit_code or 0
        return c.exit_code if c.exit_code is not None else 0

    def stop(self, ref: str, *, timeout: float = 10) -> Container:
        """``docker stop``: the stop signal (SIGTERM), then SIGKILL after ``timeout`` seconds."""
        from .control import stop_container

        c = self.records.get(ref)
        if not c.running:
            return c
        code = stop_container(str(ContainerDirs(self.store, c.id).state), timeout,
                              c.config.get("StopSignal") or "SIGTERM")
        return self.finish(c, code)

    def diff(self, ref: str):
        """``docker diff``: the changes of the container's writable layer."""
        from .diff import diff

        c = self.records.get(ref)
        dirs = ContainerDirs(self.store, c.id)
        if not dirs.upper.exists():
            return []
        return diff((c.lowerdirs, str(dirs.upper)))




def _with_tag(image: str) -> str:
    from ..reference import parse

    try:
        return parse(image).familiar
    except EngineError:
        return image


def commit_container(store: Store, c: Container, *, message: str = "", author: str = "",
                     changes: tuple[str, ...] = ()) -> str:
    """``docker commit``: the container's writable layer on top of its image; returns the image ID.

    As in Docker, the new image keeps the container's Cmd/Entrypoint/Env, ``-c`` changes apply on
    top, history ``created_by`` is the command, and an unchanged file system adds no layer
    (``empty_layer``), which is what the classic builder's metadata steps are.
    """
    from ..changes import apply_changes
    from ..images import now_or_epoch, register_config, rfc3339
    from ..layer import EMPTY_TAR_DIGEST, source_date_epoch
    from ..spec import OCI_LAYER, History
    from .commit import write_container_layer

    base = load_config(store, c.image_id)
    with store.blob_writer(verify=False) as w:
        layer = write_container_layer(c, store, w, epoch=source_date_epoch())
        w.commit(layer.diff_id)
    empty = layer.diff_id == EMPTY_TAR_DIGEST
    diff_ids = base.diff_ids
    if not empty:
        store.add_layer(layer.diff_id, layer.size, layer.tar_size)
        store.add_layer_blob(layer.diff_id, layer.diff_id, OCI_LAYER, layer.tar_size)
        diff_ids = diff_ids + (layer.diff_id,)
    cfg = c.config
    config = replace(
        base.config,
        cmd=tuple(cfg["Cmd"]) if cfg.get("Cmd") is not None else None,
        entrypoint=tuple(cfg["Entrypoint"]) if cfg.get("Entrypoint") is not None else None,
        env=tuple(cfg.get("Env") or ()), user=cfg.get("User") or "", working_dir=cfg.get("WorkingDir") or "",
        exposed_ports=tuple(cfg.get("ExposedPorts") or ()),
    )
    config = apply_changes(config, changes)
    ts = rfc3339(now_or_epoch())
    history = History(created=ts, created_by=" ".join(cfg.get("Cmd") or c.argv), comment=message, author=author,
                      empty_layer=empty)
    image = replace(base, created=ts, author=author, config=config, diff_ids=diff_ids,
                                history=base.history + (history,))
    image_id, _ = register_config(store, image.to_json(), parent=c.image_id)
    if empty and not store.has_layer(layer.diff_id):
        store.delete_blob(layer.diff_id)
    return image_id


