"""The container verbs of the ``layerlab`` command (``run``, ``ps``, ``logs``, ``commit`` …).

Each verb is a thin shell over one :class:`engine.Engine` call; see :mod:`engine.cli` (which also
says why :mod:`engine.format` is imported by the verbs that print tables).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from .api import Engine
from .cli import Streams, verb
from .cli_parser import UsageError
from .errors import ContainerError, EngineError, InvalidReference
from .reference import parse as parse_reference
from .runtime.containers import Container, NoSuchContainer
from .runtime.manager import RunOptions
from .values import replace


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


PULL_POLICIES = ("always", "missing", "never")   # docker-cli's PullImageAlways, PullImageMissing, PullImageNever


def run_options(a) -> RunOptions:
    pull = getattr(a, "pull", "missing")
    if pull not in PULL_POLICIES:
        raise UsageError(f"invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\"",
                         "run" if hasattr(a, "detach") else "create")
    return RunOptions(
        image=a.image, command=tuple(a.command), entrypoint=a.entrypoint, env=tuple(a.env),
        env_files=tuple(a.env_file), workdir=a.workdir, user=a.user, name=a.name, hostname=a.hostname,
        network=a.network, publish=tuple(a.publish), publish_all=a.publish_all, expose=tuple(a.expose),
        volumes=tuple(a.volume), tty=a.tty, interactive=a.interactive, auto_remove=a.rm,
        detach=getattr(a, "detach", False), pull=pull)


class RunFailed(EngineError):
    """A ``run``/``create`` that failed before its command started: ``layerlab: <message>``."""


def _run_error(e: ContainerError) -> RunFailed:
    return RunFailed(f"layerlab: Error response from daemon: {e}", exit_code=e.exit_code)


def _pull_printer(a, s: Streams):
    """``progress`` for Engine.run/create: the pull's lines on stderr as ``docker run`` prints them (``-q``: none)."""
    if getattr(a, "quiet", False):
        return lambda event: None

    def progress(event) -> None:
        from .registry.events import render_daemon

        line = render_daemon(event)
        if line is not None:
            s.err(line)
    return progress


def _writer(s: Streams):
    def write(stream: str, data: bytes) -> None:
        binary = s.stdout_binary if stream == "stdout" else s.stderr_binary
        if binary is not None:
            binary.write(data)
            binary.flush()
        else:
            target = s.stdout if stream == "stdout" else s.stderr
            target.write(data.decode("utf-8", "replace"))
            target.flush()
    return write


@verb("run")
def _run(eng: Engine, a, s: Streams) -> int:
    opts = run_options(a)
    if opts.detach:
        try:
            c = eng.run_detached(opts, progress=_pull_printer(a, s))
        except ContainerError as e:
            raise _run_error(e) from None
        s.out(c.id)
        return 0
    if opts.tty and not (s.stdin is not None and _is_tty(s.stdin)) and opts.interactive:
        raise RunFailed("the input device is not a TTY", exit_code=1)
    stdin = _stdin_for(s) if opts.interactive else None
    try:
        eng.pull_for_run(opts, _pull_printer(a, s))  # before the terminal goes raw
        opts = replace(opts, pull="never")
        if opts.tty:
            with _raw_terminal(s):
                _, code = eng.run(opts, output=_writer(s), stdin=stdin)
        else:
            _, code = eng.run(opts, output=_writer(s), stdin=stdin)
    except ContainerError as e:
        raise _run_error(e) from None
    except KeyboardInterrupt:
        return 130
    return code


def _stdin_for(s: Streams):
    """What ``-i`` feeds the container: the terminal's descriptor, else everything on stdin."""
    if s.stdin is None:
        return b""
    try:
        return s.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return s.stdin.read()


class _raw_terminal:
    """Put the caller's terminal in raw mode for ``-it`` (the container's pty does the echo)."""

    def __init__(self, s: Streams) -> None:
        self.fd = None
        if s.stdin is not None and _is_tty(s.stdin):
            self.fd = s.stdin.fileno()

    def __enter__(self):
        if self.fd is not None:
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@verb("create")
def _create(eng: Engine, a, s: Streams) -> int:
    try:
        c = eng.create_container(run_options(a), progress=_pull_printer(a, s))
    except ContainerError as e:
        raise _run_error(e) from None
    s.out(c.id)
    return 0


@verb("start")
def _start(eng: Engine, a, s: Streams) -> int:
    failed = []
    for ref in a.containers:
        try:
            if a.attach:
                return eng.start_attached(ref, output=_writer(s))
            eng.start(ref)
            s.out(ref)
        except NoSuchContainer as e:
            s.err(f"Error response from daemon: {e}")
            failed.append(ref)
        except ContainerError as e:
            s.err(f"Error response from daemon: {e}")
            failed.append(ref)
    if failed:
        s.err(f"Error: failed to start containers: {', '.join(failed)}")
        return 1
    return 0


def _status(c: Container, now: datetime) -> str:
    from .format import status_created, status_exited, status_up

    if c.state == "running" and c.started_at:
        return status_up(_dt(c.started_at), now)
    if c.state == "exited" and c.finished_at:
        return status_exited(c.exit_code or 0, _dt(c.finished_at), now)
    return status_created()


def ps_image(image: str, image_id: str, resolves_to: str | None, no_trunc: bool = False) -> str:
    """The IMAGE column of ``docker ps`` for a container created from ``image`` (as the user named it).

    The daemon (moby ``daemon/list.go``) shows the image ID instead when ``image`` no longer names the
    container's image (``resolves_to``: what it names now, None when nothing); docker-cli then shows
    an ID as 12 hex digits, ``name:tag`` in its familiar form and other names without their digest,
    unless ``no_trunc``.
    """
    if not image:
        return "<no image>"
    if image != image_id and resolves_to != image_id:
        image = image_id
    if no_trunc:
        return image
    from .format import truncate_id

    if truncate_id(image) == truncate_id(image_id):
        return truncate_id(image_id)
    try:
        ref = parse_reference(image)
    except InvalidReference:
        return image
    if ref.tag and not ref.digest and f":{ref.tag}" in image.rpartition("/")[2]:
        return ref.familiar
    return ref.familiar_repository


@verb("ps")
def _ps(eng: Engine, a, s: Streams) -> int:
    from .format import ago, format_ports, ps_command, render_table

    cs = eng.containers(all=a.all or a.latest or a.last > 0)
    if a.latest:
        cs = cs[:1]
    elif a.last > 0:
        cs = cs[:a.last]
    if a.quiet:
        for c in cs:
            s.out(c.id if a.no_trunc else c.short_id)
        return 0
    now = _dt(time.time())

    def resolves_to(image: str) -> str | None:
        try:
            return eng.image_id(image)
        except EngineError:
            return None

    rows = [[c.id if a.no_trunc else c.short_id, ps_image(c.image, c.image_id, resolves_to(c.image), a.no_trunc),
             ps_command(list(c.argv), a.no_trunc),
             ago(c.created, now), _status(c, now),
             format_ports([(p.host_ip, p.host_port, p.container_port, p.proto) for p in c.bound_ports])
             if c.running else "", c.name] for c in cs]
    s.stdout.write(render_table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows))
    return 0


def _each(refs, s: Streams, fn, *, not_found_prefix: str = "Error response from daemon: ") -> int:
    code = 0
    for ref in refs:
        try:
            fn(ref)
            s.out(ref)
        except NoSuchContainer as e:
            s.err(f"{not_found_prefix}{e}")
            code = 1
        except ContainerError as e:
            s.err(f"Error response from daemon: {e}")
            code = 1
    return code


@verb("stop")
def _stop(eng: Engine, a, s: Streams) -> int:
    return _each(a.containers, s, lambda r: eng.stop(r, timeout=a.time))


@verb("kill")
def _kill(eng: Engine, a, s: Streams) -> int:
    from .runtime.control import parse_signal

    sig = parse_signal(a.signal)
    return _each(a.containers, s, lambda r: eng.kill(r, sig))


@verb("rm")
def _rm(eng: Engine, a, s: Streams) -> int:
    return _each(a.containers, s, lambda r: eng.remove_container(r, force=a.force), not_found_prefix="Error: ")


@verb("wait")
def _wait(eng: Engine, a, s: Streams) -> int:
    code = 0
    for ref in a.containers:
        try:
            s.out(str(eng.wait(ref)))
        except EngineError as e:
            s.err(f"Error response from daemon: {e}")
            code = 1
    return code


@verb("diff")
def _diff(eng: Engine, a, s: Streams) -> int:
    try:
        for change in eng.diff(a.container):
            s.out(f"{change.kind} {change.path}")
    except NoSuchContainer as e:
        s.err(f"Error response from daemon: {e}")
        return 1
    return 0


@verb("commit")
def _commit(eng: Engine, a, s: Streams) -> int:
    try:
        image_id = eng.commit(a.container, a.repository, message=a.message, author=a.author,
                              changes=tuple(a.change))
    except NoSuchContainer as e:
        s.err(f"Error response from daemon: {e}")
        return 1
    s.out(image_id)
    return 0


@verb("export")
def _export(eng: Engine, a, s: Streams) -> int:
    if a.output:
        from .cli import check_output_path

        try:
            check_output_path(a.output)
        except EngineError as e:
            raise EngineError(f"failed to export container: {e}") from None
        eng.export(a.container, a.output)
        return 0
    out = s.stdout_binary
    if out is None or _is_tty(out):
        raise EngineError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    eng.export(a.container, out)
    out.flush()
    return 0


@verb("logs")
def _logs(eng: Engine, a, s: Streams) -> int:
    tail = None if a.tail == "all" else int(a.tail)
    try:
        for line in eng.logs(a.container, tail=tail, follow=a.follow):
            text = line.text
            if a.timestamps:
                text = f"{line.time} {text}"
            _writer(s)(line.stream, text.encode())
    except NoSuchContainer as e:
        s.err(f"Error: {e}")
        return 1
    return 0


@verb("exec")
def _exec(eng: Engine, a, s: Streams) -> int:
    if not a.command:
        raise UsageError('"layerlab exec" requires at least 2 arguments.', "exec")
    stdin = _stdin_for(s) if a.interactive else None
    try:
        return eng.exec(a.container, a.command, output=_writer(s), env=a.env, user=a.user, workdir=a.workdir,
                        stdin=stdin, tty=a.tty, detach=a.detach)
    except NoSuchContainer as e:
        s.err(f"Error: {e}")
        return 1
    except ContainerError as e:
        s.err(f"Error response from daemon: {e}")
        return e.exit_code if e.exit_code in (126, 127) else 1


@verb("cp")
def _cp(eng: Engine, a, s: Streams) -> int:
    eng.copy(a.source, a.dest)
    return 0


@verb("port")
def _port(eng: Engine, a, s: Streams) -> int:
    from .format import port_mapping

    c = eng.container(a.container)
    want = a.private_port
    for p in c.bound_ports if c.running else ():
        key = f"{p.container_port}/{p.proto}"
        if want and want not in (key, str(p.container_port)):
            continue
        s.out(port_mapping(p.container_port, p.proto, p.host_ip, p.host_port))
    return 0




@verb("build")
def _build(eng: Engine, a, s: Streams) -> int:
    from .builder import BuildFailed, BuildOptions, Built, Output, render

    text = None
    context: str | None = a.context
    if a.context == "-":
        text = (s.stdin.read() if s.stdin else b"").decode()
        context = None
    elif not __import__("os").path.isdir(a.context):
        raise EngineError(f'unable to prepare context: path "{a.context}" not found')
    dockerfile = a.file
    if a.file == "-" and a.context != "-":  # `docker build -f- PATH`: the Dockerfile on stdin, the context PATH
        text = (s.stdin.read() if s.stdin else b"").decode()
        dockerfile = None
    opts = BuildOptions(context=context, dockerfile=dockerfile, dockerfile_text=text, tags=tuple(a.tag),
                        build_args=tuple(a.build_arg), no_cache=a.no_cache, rm=a.rm != "false",
                        force_rm=a.force_rm, target=a.target, pull=a.pull)
    code = 0
    write = _writer(s)
    for event in eng.build(opts):
        if isinstance(event, BuildFailed):
            code = event.exit_code
            s.err(event.message)
            continue
        if a.quiet:
            if isinstance(event, Built):
                s.out(event.image_id)
            continue
        if isinstance(event, Output):  # classic docker build: RUN's stderr on stdout, in red
            data = event.data if event.stream == "stdout" else b"\x1b[91m" + event.data + b"\x1b[0m"
            write("stdout", data)
            continue
        line = render(event)
        if line is not None:
            s.out(line)
    return code
