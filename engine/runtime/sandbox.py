"""Run one container process in Linux namespaces, without a daemon and without privileges.

:func:`start` takes a :class:`SandboxSpec` (layer directories, command, identity, mounts…) and
returns a :class:`Sandbox` for the running container.  It knows nothing about images: the store
hands it directories.  The work happens in a small helper process (``_shim.py``), because
``unshare(CLONE_NEWUSER)`` refuses the multi-threaded processes a Jupyter kernel is.

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
    Without ``detach``, the container dies with the caller: the shim holds a pipe from the caller and
    kills the container when it reads EOF (the caller's process died), and pid 1 has
    ``PR_SET_PDEATHSIG`` against the shim.  With ``detach=True`` the shim double-forks into its own
    session and ignores the caller's death, so the container outlives the Python process that started
    it; its exit code is then also written to ``<state_dir>/exit_code`` (and the container's host pid
    to ``<state_dir>/pid``) when it ends.

Example::

    >>> spec = SandboxSpec(lowerdirs=("/layers/busybox",), upperdir="/c/1/upper",
    ...                    workdir="/c/1/work", argv=("echo", "hi"), hostname="c1")  # doctest: +SKIP
    >>> box = start(spec, stdout=subprocess.PIPE)                                     # doctest: +SKIP
    >>> box.communicate()[0], box.returncode                                          # doctest: +SKIP
    (b'hi\\n', 0)
"""
from __future__ import annotations

import logging
import marshal
import os
import select
import signal
import subprocess
import time
import weakref
from dataclasses import dataclass
from typing import IO, Any, Literal, Union

from ..errors import ContainerError
from . import rootfs
from .rootfs import overlay_supported

log = logging.getLogger(__name__)

__all__ = ["Mount", "SandboxSpec", "Sandbox", "start", "overlay_supported", "docker_exit_code"]

StdArg = Union[None, int, IO[Any]]

DEFAULT_HOSTNAME = "localhost"
#: how long start() waits for the shim to report that the command was exec'd
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Mount:
    """A bind mount, ``-v source:target[:ro]``; ``source`` is a host path that must exist."""

    source: str
    target: str
    readonly: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to run one container process.

    ``lowerdirs`` are read-only layer snapshot directories in overlayfs format, top first (may be
    empty: ``scratch``); ``upperdir`` is the container's writable layer and ``workdir`` overlayfs'
    work directory on the same file system (both created if missing).  ``argv`` is the resolved
    command (Entrypoint + Cmd); ``env`` entries are ``K=V`` (``HOME`` is added from the container's
    ``/etc/passwd`` when missing, as runc does; ``PATH`` and ``HOSTNAME`` are the caller's business).
    ``hosts`` / ``resolv_conf`` default to ``localhost`` + the hostname, and the host's resolv.conf.
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
    """One started container process (see :func:`start`).

    ``pid`` is the host pid of the container's init (pid 1 inside); ``tty_fd`` the pty master when
    the spec asked for a tty; ``stdin``/``stdout``/``stderr`` are the pipes asked for with
    ``subprocess.PIPE``.  ``returncode`` is ``None`` while it runs, then Docker's exit code.
    """

    def __init__(self, *, spec: SandboxSpec, process: subprocess.Popen[bytes], pid: int, ctl_fd: int,
                 done_fd: int | None, tty_fd: int | None, rootfs_mode: str, state_dir: str | None) -> None:
        self.spec = spec
        self.pid = pid
        self.tty_fd = tty_fd
        self.rootfs_mode = rootfs_mode
        self.state_dir = state_dir
        self.detached = done_fd is not None
        self.returncode: int | None = None
        self._process = process
        self._ctl_fd = ctl_fd
        self._done_fd = done_fd
        self._done_buf = b""
        fds = [fd for fd in (ctl_fd, done_fd) if fd is not None]
        self._finalizer = weakref.finalize(self, _close_fds, fds)

    @property
    def stdin(self) -> IO[bytes] | None:
        return self._process.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._process.stdout

    @property
    def stderr(self) -> IO[bytes] | None:
        return self._process.stderr

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
        if self._done_fd is None:
            try:
                code = self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"container {self.pid} still running after {timeout}s") from None
            self.returncode = docker_exit_code(code)
        else:
            self.returncode = self._wait_detached(timeout)
        return self.returncode

    def _wait_detached(self, timeout: float | None) -> int:
        assert self._done_fd is not None
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
        text = self._done_buf.decode().strip()
        if text:
            return int(text)
        if self.state_dir:  # the shim died (and pid 1 with it) before it could tell us
            try:
                with open(os.path.join(self.state_dir, "exit_code")) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                pass
        return 128 + signal.SIGKILL

    def communicate(self, input: bytes | None = None, timeout: float | None = None) -> tuple[bytes | None, bytes | None]:
        """``Popen.communicate`` for the container's pipes; sets :attr:`returncode`."""
        if self._done_fd is not None:
            raise ContainerError("communicate() is not available for a detached container")
        try:
            out, err = self._process.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"container {self.pid} still running after {timeout}s") from None
        self.wait()
        return out, err

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the container's pid 1 (asynchronously; call :meth:`wait` afterwards).

        ``SIGKILL`` ends the whole container (the kernel kills every process of a pid namespace whose
        init dies).  Like Docker, any other signal is dropped by a pid 1 that has no handler for it.
        """
        if self.returncode is not None or self._finalizer.alive is False:
            return
        try:
            os.write(self._ctl_fd, bytes([int(sig)]))
        except (BrokenPipeError, OSError):
            pass  # already gone

    def close(self) -> None:
        """Release the handle's descriptors; a container that is not detached is killed by this."""
        self._finalizer()
        if self.tty_fd is not None:
            try:
                os.close(self.tty_fd)
            except OSError:
                pass
            self.tty_fd = None
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()

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


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _validate(spec: SandboxSpec) -> None:
    if not spec.argv:
        raise ContainerError("no command specified", exit_code=125)
    if spec.network not in ("private", "host", "none"):
        raise ContainerError(f"unknown network mode {spec.network!r}")
    if not 0 <= spec.uid < 2**32 - 1 or not 0 <= spec.gid < 2**32 - 1:
        raise ContainerError(f"invalid user {spec.uid}:{spec.gid}")
    for m in spec.mounts:
        if not os.path.isabs(m.target):
            raise ContainerError(f"invalid mount config: mount path must be absolute: {m.target}")
        if not os.path.exists(m.source):
            raise ContainerError(f"invalid mount config for type \"bind\": bind source path does not exist: "
                                 f"{m.source}")


def start(spec: SandboxSpec, *, stdin: StdArg = None, stdout: StdArg = None, stderr: StdArg = None,
          detach: bool = False, state_dir: str | None = None) -> Sandbox:
    """Start the container described by ``spec``; returns once its command has been exec'd.

    ``stdin``/``stdout``/``stderr`` take what :class:`subprocess.Popen` takes (``None`` inherits,
    a file object or descriptor, ``subprocess.PIPE``, ``subprocess.DEVNULL``); with ``spec.tty`` they
    must be ``None`` and the pty master is ``Sandbox.tty_fd``.  ``detach=True`` lets the container
    outlive the caller (see the module docstring); ``state_dir``, if given, receives ``pid`` and
    ``exit_code`` files.

    Raises :class:`ContainerError` if the container cannot be set up or its command cannot be
    exec'd; ``exit_code`` is then Docker's: 127 for a command that is not found
    (``exec: "nosuch": executable file not found in $PATH``), 126 for one that cannot be run, 125
    otherwise.
    """
    _validate(spec)
    mode = rootfs.resolve_mode(spec.rootfs_mode, spec.upperdir)
    lowers = rootfs.prepare(spec.lowerdirs, spec.upperdir, spec.workdir, mode)
    if state_dir:
        os.makedirs(state_dir, exist_ok=True)
        for name in ("exit_code", "pid"):
            try:
                os.unlink(os.path.join(state_dir, name))
            except FileNotFoundError:
                pass
    hostname = spec.hostname or DEFAULT_HOSTNAME
    request = {
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
    }
    payload = marshal.dumps(request)

    tty_fd: int | None = None
    if spec.tty:
        if stdin is not None or stdout is not None or stderr is not None:
            raise ContainerError("stdin/stdout/stderr cannot be given with tty=True")
        tty_fd, slave = os.openpty()
        stdin = stdout = stderr = slave
    spec_r, spec_w = os.pipe()
    status_r, status_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    done_r, done_w = os.pipe() if detach else (-1, -1)
    child_fds = [fd for fd in (spec_r, status_w, ctl_r, done_w) if fd >= 0]
    try:
        process = subprocess.Popen(
            [*rootfs.shim_command("main()"), str(spec_r), str(status_w), str(ctl_r), str(done_w)],
            stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=child_fds, start_new_session=True,
            close_fds=True)
    except BaseException:
        _close_fds([spec_w, status_r, ctl_w] + ([done_r] if detach else [])
                   + ([tty_fd] if tty_fd is not None else []))
        raise
    finally:
        _close_fds(child_fds + ([slave] if spec.tty else []))
    try:
        _write_all(spec_w, payload)
        pid, error = _read_status(status_r)
    except BaseException:
        _close_fds([ctl_w] + ([done_r] if detach else []))
        process.kill()
        process.wait()
        raise
    finally:
        _close_fds([spec_w, status_r])
    if detach:
        process.wait()  # the first half of the double fork exits at once
    if error is not None or pid is None:
        _close_fds([ctl_w] + ([done_r] if detach else []) + ([tty_fd] if tty_fd is not None else []))
        if not detach:
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        code, message = error if error is not None else (125, "the container shim exited without a report")
        raise ContainerError(message, exit_code=code)
    log.debug("container pid %d started (%s rootfs, %s)", pid, mode, " ".join(spec.argv))
    return Sandbox(spec=spec, process=process, pid=pid, ctl_fd=ctl_w, done_fd=done_r if detach else None,
                   tty_fd=tty_fd, rootfs_mode=mode, state_dir=state_dir)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return  # the shim died; _read_status will say so
        view = view[n:]


def _read_status(fd: int) -> tuple[int | None, tuple[int, str] | None]:
    """Read the shim's report until EOF (= the command was exec'd or everything failed)."""
    data = b""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ContainerError("timed out waiting for the container to start")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    pid: int | None = None
    error: tuple[int, str] | None = None
    for line in data.decode(errors="replace").splitlines():
        word, _, rest = line.partition(" ")
        if word == "PID":
            pid = int(rest)
        elif word == "ERR" and error is None:
            code, _, message = rest.partition(" ")
            error = (int(code), message)
    return pid, error
