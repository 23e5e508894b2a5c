"""Run one container process in Linux namespaces, without a daemon and without privileges.

:func:`start` takes a :class:`SandboxSpec` (layer directories, command, identity, mounts…) and
returns a :class:`Sandbox` for the running container.  It knows nothing about images: the store
hands it directories.  The namespaces are entered by small single-threaded helper processes
(``_shim.py``, forked by a per-caller fork server, or by a single-threaded caller itself, see
:mod:`.spawner`), because ``unshare(CLONE_NEWUSER)`` refuses the multi-threaded processes a Jupyter
kernel is.

Isolation
    user + mount + pid + uts + ipc namespaces, plus a network namespace unless ``network="host"``
    (``private`` and ``none`` both get their own namespace with ``lo`` up, as Docker's ``none`` has;
    ``private`` is where a later layer publishes ports).  The root file system is overlayfs mounted
    inside the user namespace (``userxattr``), or a copy (see :mod:`.rootfs`); ``pivot_root`` then
    detaches the host's tree; every mount is private to the container's mount namespace, so nothing
    is ever visible on the host and everything vanishes with the container.  Fresh ``/proc``;
    ``/sys`` read-only; ``/dev`` is a tmpfs with the host's null, zero, full, random, urandom and tty
    bind-mounted, its own ``devpts`` and ``/dev/shm``; ``/etc/hosts``, ``/etc/hostname`` and
    ``/etc/resolv.conf`` are bind-mounted files, so they never show up in ``diff``.  Docker's masked
    and read-only ``/proc`` paths are applied and the capability bounding set is cut to Docker's
    default set: container root can neither ``mount`` nor ``sethostname`` nor undo the masks.

Identity mapping (the user namespace)
    * invoked by an ordinary user: a single-id map, container ``spec.uid`` → the invoking uid
      (``spec.gid`` → the invoking gid) and ``setgroups`` denied.  The container never holds more
      than the student already has; files the student owns appear owned by ``spec.uid``; other
      host ids appear as ``nobody`` (65534) and cannot be changed; supplementary groups are ignored.
    * invoked by real root: the identity map ``0 0 4294967295``, so layers extracted with real owners
      keep them and ``uid``/``gid``/``groups`` work as in Docker.  Container root then *is* uid 0 on
      the host, as in Docker's default (no userns-remap) configuration; what it may do is bounded by
      the namespaces (no host process, mount or file outside its root and mounts is reachable), by
      the capability bounding set above and by the masked ``/proc`` paths (``/proc/sysrq-trigger``
      and ``/proc/sys`` only check for uid 0, not for capabilities).  Like Docker, files it creates in
      bind-mounted host directories are owned by root and may be set-uid: mount only what you trust
      the container with.  With ``network="host"`` it also reaches the host's abstract unix sockets.

Lifetime
    The shim supervising a container is never the caller's child: the fork server (or an
    intermediate child of the caller, see :mod:`.spawner`) forks it into a session of its own.
    Without ``detach``, the container dies with the caller: the shim holds a pipe from the caller
    and kills the container when it reads EOF (the caller's process died, or dropped its
    :class:`Sandbox` handle), and pid 1 has ``PR_SET_PDEATHSIG`` against the shim.  With
    ``detach=True`` the shim ignores that EOF, so the container outlives the Python process that
    started it (``docker run -d``; give it files, not pipes, for its output).  If ``state_dir`` is
    given, the shim writes ``<state_dir>/state.json`` (host pids of pid 1 and of the shim with their
    start times, the pid namespace, ports, log path) and the container's host pid to
    ``<state_dir>/pid`` before :func:`start` returns, and Docker's exit code to
    ``<state_dir>/exit_code`` when it ends; :mod:`.control` reads them from any process
    (``is_running``, ``signal_container``, ``wait_container``, ``stop_container``) and
    :func:`.nsexec.exec_in` joins the container.

Published ports and logs
    ``spec.ports`` are bound by :func:`start` in the caller's (host) network namespace before
    anything else happens (:func:`.ports.bind_ports`; a taken port raises :class:`.ports.PortInUse`)
    and handed to the shim, which proxies them into the container's namespace for as long as the
    container runs (``private`` network only).  With ``log_path`` the shim also writes the
    container's output to a Docker json-file log (read it with :func:`.logs.read_logs`), and still
    copies it to the ``stdout``/``stderr`` the caller gave; a detached container's log outlives the
    caller.  A detached ``tty`` container's pty is held by the shim too, so it survives the caller.

Example::

    >>> spec = SandboxSpec(lowerdirs=("/layers/busybox",), upperdir="/c/1/upper",
    ...                    workdir="/c/1/work", argv=("echo", "hi"), hostname="c1")  # doctest: +SKIP
    >>> box = start(spec, stdout=subprocess.PIPE)                                     # doctest: +SKIP
    >>> box.communicate()[0], box.returncode                                          # doctest: +SKIP
    (b'hi\\n', 0)
"""
from __future__ import annotations

import marshal
import os
import select
import selectors
import signal
import sys
import time
import weakref

from ..errors import ContainerError
from . import ports as _ports
from . import rootfs
from .ports import PortBinding
from .rootfs import overlay_supported
from .spawner import START_TIMEOUT, close_fds, launch, stdio_or_tty
from ..values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from typing import IO, Literal

    from .spawner import StdArg

__all__ = ["Mount", "SandboxSpec", "Sandbox", "start", "overlay_supported", "docker_exit_code", "PortBinding",
           "START_TIMEOUT"]

DEFAULT_HOSTNAME = "localhost"
#: state files of a container (see the module docstring)
STATE_FILES = ("exit_code", "pid", "state.json")
STATE_VERSION = 1


@value
class Mount:
    """A bind mount, ``-v source:target[:ro]``; ``source`` is a host path that must exist."""

    source: str
    target: str
    readonly: bool = False


@value
class SandboxSpec:
    """Everything needed to run one container process.

    ``lowerdirs`` are read-only layer snapshot directories in overlayfs format, top first (may be
    empty: ``scratch``); ``upperdir`` is the container's writable layer and ``workdir`` overlayfs'
    work directory on the same file system (both created if missing; ``workdir`` is unused in copy
    mode, where ``upperdir`` receives a full copy of the image).  ``argv`` is the resolved
    command (Entrypoint + Cmd); ``env`` entries are ``K=V`` (``HOME`` is added from the container's
    ``/etc/passwd`` when missing, as runc does; ``PATH`` and ``HOSTNAME`` are the caller's business).
    ``hostname`` defaults to ``localhost`` (the host's name is never shown); ``hosts`` /
    ``resolv_conf`` default to ``localhost`` + the hostname, and the host's resolv.conf.  ``uid``,
    ``gid`` and ``groups`` are numeric: resolving user names is the caller's business.  ``ports``
    are published with ``network="private"`` only (see :mod:`.ports`).
    """

    lowerdirs: tuple[str, ...]
    upperdir: str
    workdir: str
    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    hostname: str = ""
    network: Literal["private", "host", "none"] = "private"
    mounts: tuple[Mount, ...] = ()
    rootfs_mode: Literal["auto", "overlay", "copy"] = "auto"
    hosts: str | None = None
    resolv_conf: str | None = None
    tty: bool = False
    ports: tuple[PortBinding, ...] = ()


def docker_exit_code(returncode: int) -> int:
    """Docker's rule for an exit status: the code of a normal exit, 128+n when killed by signal n.

    ``returncode`` is in :mod:`subprocess` form (negative for a signal).
    """
    return 128 - returncode if returncode < 0 else returncode


def default_hosts(hostname: str) -> str:
    """``/etc/hosts`` for a container without an address of its own."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    if hostname and hostname != "localhost":
        lines.append(f"127.0.0.1\t{hostname}")
    return "\n".join(lines) + "\n"


def host_resolv_conf() -> str:
    """The host's resolv.conf, or nothing."""
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


class Sandbox:
    """One started container process (see :func:`start`), or one ``exec``'d into it (:mod:`.nsexec`).

    ``pid`` is the host pid of the container's init (pid 1 inside); ``tty_fd`` the pty master when
    the spec asked for a tty (a socket relayed to the master by the shim when the shim owns the pty:
    with a log or detached; read and write it the same way, but it takes no terminal ioctls);
    ``stdin``/``stdout``/``stderr`` are the pipes asked for with ``subprocess.PIPE``.  ``ports`` are
    the published ports with the host ports really bound.  ``returncode`` is ``None`` while it
    runs, then Docker's exit code.  ``sentinel`` is a descriptor that becomes readable when the
    container has ended (for ``select``).
    """

    def __init__(self, *, spec: object, pid: int, ctl_fd: int, done_fd: int, tty_fd: int | None,
                 streams: tuple[IO[bytes] | None, IO[bytes] | None, IO[bytes] | None], rootfs_mode: str,
                 detached: bool, state_dir: str | None, ports: tuple[PortBinding, ...] = (),
                 log_path: str | None = None) -> None:
        self.spec = spec
        self.pid = pid
        self.tty_fd = tty_fd
        self.stdin, self.stdout, self.stderr = streams
        self.rootfs_mode = rootfs_mode
        self.detached = detached
        self.state_dir = state_dir
        self.ports = ports
        self.log_path = log_path
        self.returncode: int | None = None
        self._ctl_fd = ctl_fd
        self._done_fd = done_fd
        self._done_buf = b""
        self._finalizer = weakref.finalize(self, close_fds, [ctl_fd, done_fd])

    @property
    def sentinel(self) -> int:
        """A descriptor that is readable (EOF or the exit code) once the container has ended."""
        return self._done_fd

    def poll(self) -> int | None:
        """The exit code if the container has ended, else ``None``."""
        if self.returncode is None:
            try:
                self.wait(0)
            except TimeoutError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the container to end; returns Docker's exit code (128+n if killed by signal n).

        Raises :class:`TimeoutError` if it is still running after ``timeout`` seconds.
        """
        if self.returncode is not None:
            return self.returncode
        if not self._finalizer.alive:
            raise ContainerError("the sandbox handle is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._done_fd], [], [], remaining)
            if not ready:
                raise TimeoutError(f"container {self.pid} still running after {timeout}s")
            chunk = os.read(self._done_fd, 64)
            if not chunk:
                break
            self._done_buf += chunk
        self.returncode = self._exit_code(self._done_buf.decode().strip())
        return self.returncode

    def _exit_code(self, reported: str) -> int:
        if reported:
            return int(reported)
        if self.state_dir:  # the shim died (and pid 1 with it) before it could tell us
            try:
                with open(os.path.join(self.state_dir, "exit_code")) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                pass
        return 128 + signal.SIGKILL

    def communicate(self, input: bytes | None = None,
                    timeout: float | None = None) -> tuple[bytes | None, bytes | None]:
        """Like ``Popen.communicate``: feed ``input``, collect the piped output, wait for the end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        outputs: dict[int, list[bytes]] = {}
        with selectors.DefaultSelector() as selector:
            if self.stdin is not None:
                if input:
                    self.stdin.flush()
                    selector.register(self.stdin.fileno(), selectors.EVENT_WRITE)
                else:
                    self.stdin.close()
            for stream in (self.stdout, self.stderr):
                if stream is not None:
                    selector.register(stream.fileno(), selectors.EVENT_READ)
                    outputs[stream.fileno()] = []
            pending = memoryview(input or b"")
            while selector.get_map():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"container {self.pid} still running after {timeout}s")
                for key, _ in selector.select(remaining):
                    if key.events & selectors.EVENT_WRITE:
                        try:
                            pending = pending[os.write(key.fd, pending[:65536]):]
                        except BrokenPipeError:
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(key.fd)
                            assert self.stdin is not None
                            self.stdin.close()
                    else:
                        chunk = os.read(key.fd, 65536)
                        if chunk:
                            outputs[key.fd].append(chunk)
                        else:
                            selector.unregister(key.fd)
        results = []
        for stream in (self.stdout, self.stderr):
            if stream is None:
                results.append(None)
            else:
                results.append(b"".join(outputs[stream.fileno()]))
                stream.close()
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return results[0], results[1]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the container's pid 1 (asynchronously; call :meth:`wait` afterwards).

        ``SIGKILL`` ends the whole container (the kernel kills every process of a pid namespace whose
        init dies).  Like Docker, any other signal is dropped by a pid 1 that has no handler for it.
        """
        if self.returncode is not None or not self._finalizer.alive:
            return
        try:
            os.write(self._ctl_fd, bytes([int(sig)]))
        except OSError:
            pass  # already gone

    def stop(self, timeout: float | None = 10, stop_signal: int = signal.SIGTERM) -> int:
        """Docker's ``stop -t``: ``stop_signal``, up to ``timeout`` seconds, then SIGKILL; the exit code."""
        if self.poll() is not None:
            return self.returncode  # type: ignore[return-value]
        self.kill(stop_signal)
        try:
            return self.wait(timeout)
        except TimeoutError:
            self.kill(signal.SIGKILL)
            return self.wait()

    def close(self) -> None:
        """Release the handle's descriptors; a container that is not detached is killed by this."""
        self._finalizer()
        if self.tty_fd is not None:
            close_fds([self.tty_fd])
            self.tty_fd = None
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.returncode is None and not self.detached:
            self.kill()
            self.wait()
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.returncode is None else f"exited {self.returncode}"
        return f"<Sandbox pid={self.pid} {self.rootfs_mode} {state}>"


def _debug(message: str, *args: object) -> None:
    """``logging.getLogger(__name__).debug(...)``, without importing :mod:`logging` when no module did.

    Then nothing can have configured logging and the record would go nowhere; importing it anyway
    would cost every container start of the ``layerlab`` command about 4 ms.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(__name__).debug(message, *args)


def _validate(spec: SandboxSpec) -> None:
    if not spec.argv:
        raise ContainerError("no command specified", exit_code=125)
    if not os.path.isabs(spec.cwd or "/"):
        raise ContainerError(f"the working directory '{spec.cwd}' is invalid, it needs to be an absolute path")
    if any("\0" in item for item in (*spec.argv, *spec.env, spec.cwd, spec.hostname)):
        raise ContainerError("invalid argument: NUL byte in the command, environment, cwd or hostname")
    if spec.network not in ("private", "host", "none"):
        raise ContainerError(f"unknown network mode {spec.network!r}")
    if spec.ports:
        if spec.network != "private":
            raise ContainerError("conflicting options: port publishing and the container type network mode")
        _ports.validate(spec.ports)
    if not 0 <= spec.uid < 2**32 - 1 or not 0 <= spec.gid < 2**32 - 1:
        raise ContainerError(f"invalid user {spec.uid}:{spec.gid}")
    for m in spec.mounts:
        if not os.path.isabs(m.target):
            raise ContainerError(f"invalid mount config: mount path must be absolute: {m.target}")
        if os.path.normpath(m.target) == "/":
            raise ContainerError("invalid mount config for type \"bind\": invalid specification: "
                                 "destination can't be '/'")
        if not os.path.exists(m.source):
            raise ContainerError(f"invalid mount config for type \"bind\": bind source path does not exist: "
                                 f"{m.source}")


def start(spec: SandboxSpec, *, stdin: StdArg = None, stdout: StdArg = None, stderr: StdArg = None,
          detach: bool = False, state_dir: str | None = None, log_path: str | None = None,
          endpoint: str = "", listeners: _ports.Listeners | None = None) -> Sandbox:
    """Start the container described by ``spec``; returns once its command has been exec'd.

    ``stdin``/``stdout``/``stderr`` take what :class:`subprocess.Popen` takes (``None`` inherits the
    caller's descriptor, a file object or descriptor, ``subprocess.PIPE``, ``subprocess.DEVNULL``,
    ``subprocess.STDOUT`` for stderr); with ``spec.tty`` they must be ``None`` and the pty master is
    ``Sandbox.tty_fd``.  ``detach=True`` lets the container outlive the caller (see the module
    docstring); ``state_dir``, if given, receives ``state.json``, ``pid`` and ``exit_code``.

    ``log_path`` makes the shim append the container's output to that file in Docker's json-file
    format, for as long as the container runs, while still copying it to ``stdout``/``stderr``
    (a slow reader holds the container back, as a pipe would; for a detached container the copy
    is dropped instead).  Read the caller's pipes (e.g. with ``communicate``): like a process with
    full pipes, a container whose output nobody reads does not end.

    ``spec.ports`` are bound first of all, in this process (``endpoint`` names the container in the
    :class:`.ports.PortInUse` message); or pass ``listeners`` already bound with
    :func:`.ports.bind_ports` for those bindings.  Either way this function closes its listening
    sockets before it returns: the shim holds the only copies, so the ports are free again when
    the container ends, and at once if the start fails.  ``Sandbox.ports`` has the bound ports.

    Raises :class:`ContainerError` if the container cannot be set up or its command cannot be
    exec'd; ``exit_code`` is then Docker's: 127 for a command that is not found
    (``exec: "nosuch": executable file not found in $PATH``), 126 for one that cannot be run, 125
    otherwise.
    """
    _validate(spec)
    if listeners is None:
        listeners = _ports.bind_ports(spec.ports, endpoint=endpoint)
    elif len(listeners.bindings) != len(spec.ports):
        listeners.close()
        raise ContainerError("listeners do not match the spec's ports")
    try:
        return _start(spec, stdin, stdout, stderr, detach, state_dir, log_path, listeners)
    finally:
        listeners.close()


def _start(spec: SandboxSpec, stdin: StdArg, stdout: StdArg, stderr: StdArg, detach: bool,
           state_dir: str | None, log_path: str | None, listeners: _ports.Listeners) -> Sandbox:
    mode = rootfs.resolve_mode(spec.rootfs_mode, spec.upperdir)
    lowers = rootfs.prepare(spec.lowerdirs, spec.upperdir, spec.workdir, mode)
    if state_dir:
        os.makedirs(state_dir, exist_ok=True)
        for name in STATE_FILES:
            try:
                os.unlink(os.path.join(state_dir, name))
            except FileNotFoundError:
                pass
    hostname = spec.hostname or DEFAULT_HOSTNAME
    bound = listeners.bindings
    log_file = os.path.abspath(log_path) if log_path else None
    own_tty = spec.tty and (log_path is not None or detach)
    extra_names = ["listen"] * len(bound)
    payload = {
        "argv": list(spec.argv), "env": list(spec.env), "cwd": spec.cwd or "/",
        "uid": spec.uid, "gid": spec.gid, "groups": list(spec.groups), "hostname": hostname,
        "network": spec.network, "mode": mode, "lowerdirs": [os.path.abspath(d) for d in lowers],
        "upperdir": os.path.abspath(spec.upperdir),
        "workdir": os.path.abspath(spec.workdir) if mode == "overlay" else "",
        "mounts": [(os.path.abspath(m.source), m.target, m.readonly) for m in spec.mounts],
        "hosts": spec.hosts if spec.hosts is not None else default_hosts(hostname),
        "resolv_conf": spec.resolv_conf if spec.resolv_conf is not None else host_resolv_conf(),
        "tty": spec.tty, "detach": detach,
        "state_dir": os.path.abspath(state_dir) if state_dir else None,
        "state": {"version": STATE_VERSION, "network": spec.network, "tty": spec.tty, "detach": detach,
                  "ports": [[b.host_ip, b.host_port, b.container_port, b.proto] for b in bound],
                  "log_path": log_file},
    }

    theirs: list[int] = []  # descriptors only the shim needs, closed once it has them
    ours: list[int] = []    # our ends, closed on failure
    streams: tuple[IO[bytes] | None, ...] = (None, None, None)
    tty_fd: int | None = None
    extra_fds = listeners.fds()
    try:
        if log_file:
            theirs.append(os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640))
            extra_fds.append(theirs[-1])
            extra_names.append("log")
        std_fds, streams, master = stdio_or_tty(spec.tty, stdin, stdout, stderr, theirs)
        if master is not None and own_tty:  # the shim keeps the pty; we talk to it through a relay
            import socket  # only here: most containers need no relay (about 2 ms to import)

            theirs.append(master)
            mine, relay = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            tty_fd = mine.detach()
            ours.append(tty_fd)
            theirs.append(relay.detach())
            extra_fds += [master, theirs[-1]]
            extra_names += ["master", "relay"]
        elif master is not None:
            tty_fd = master
            ours.append(master)
        payload["extra"] = extra_names  # what each descriptor after stdin/stdout/stderr is
        pid, ctl_w, done_r = launch(b"R", marshal.dumps(payload), [*std_fds, *extra_fds])
    except BaseException:
        close_fds(ours)
        for stream in streams:
            if stream is not None:
                stream.close()
        raise
    finally:
        close_fds(theirs)
    _debug("container pid %d started (%s rootfs): %s", pid, mode, " ".join(spec.argv))
    stdin_s, stdout_s, stderr_s = streams
    return Sandbox(spec=spec, pid=pid, ctl_fd=ctl_w, done_fd=done_r, tty_fd=tty_fd,
                   streams=(stdin_s, stdout_s, stderr_s), rootfs_mode=mode, detached=detach,
                   state_dir=state_dir, ports=bound, log_path=log_file)
