"""The caller's end of each container shim: forked directly, or by the shim's fork server.

Shims are forked by a *zygote* (see ``_shim.zygote``): one per calling process, started lazily,
ended by the kernel closing its socket when the caller exits.  It is a plain child process, not a
daemon: it holds no state and serves nobody else.  A multi-threaded caller (a Jupyter kernel) must
not fork, and forking the small zygote is cheaper than forking a big caller (about 5 ms per
container start instead of 9 ms, copy-on-write included).  But starting the zygote is a Python
start-up (about 10 ms more), which a process that starts one container never earns back: so the
first shim of a single-threaded process (the ``layerlab`` command) is forked directly from it
(:func:`fork_shim`), and only a second one starts the zygote.  Either way the shim ends up the
same: in a session of its own, not the caller's child, with only its descriptors open.

:func:`launch` starts one shim and waits for its report; :func:`stdio` turns Popen-style
``stdin``/``stdout``/``stderr`` arguments into descriptors.
"""
from __future__ import annotations

import array
import faulthandler
import fcntl
import gc
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from ..errors import ContainerError
from . import _shim

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    import socket
    from typing import IO, Any, Union

    StdArg = Union[None, int, IO[Any]]

_SHIM_DIR = os.path.dirname(os.path.abspath(__file__))


def shim_command(call: str) -> list[str]:
    """argv running ``_shim.<call>`` in a lean interpreter: no site, isolated, stdlib only."""
    code = f"import sys; sys.path.insert(0, {_SHIM_DIR!r}); import _shim; _shim.{call}"
    return [sys.executable or "python3", "-S", "-I", "-c", code]


class Spawner:
    """Hands descriptor sets to the zygote, which forks one shim per set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        #: whether this process has forked a shim itself (see :func:`spawn`)
        self.forked_directly = False

    def _start(self) -> None:
        import socket  # here and in spawn(): only the zygote's path needs it (about 2 ms to import)

        self._close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [*shim_command("zygote()"), str(theirs.fileno())], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), start_new_session=True, cwd="/")
        except OSError as e:
            ours.close()
            raise ContainerError(f"cannot start the container shim: {e}") from e
        finally:
            theirs.close()
        self._sock = ours
        import logging  # not at the top: see sandbox._debug

        logging.getLogger(__name__).debug("container shim zygote started, pid %d", self._process.pid)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def spawn(self, fds: list[int], kind: bytes = b"R") -> None:
        """Fork a shim with ``fds`` = stdin, stdout, stderr, spec, status, ctl, done[, extra…]."""
        import socket

        message = [kind], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        with self._lock:
            for attempt in (1, 2):
                if self._sock is None or self._process is None or self._process.poll() is not None:
                    self._start()
                assert self._sock is not None
                try:
                    self._sock.sendmsg(*message)
                    return
                except (BrokenPipeError, ConnectionError) as e:
                    if attempt == 2:
                        raise ContainerError(f"cannot reach the container shim: {e}") from e
                    self._close()  # the zygote died: start another one
                except OSError as e:
                    raise ContainerError(f"cannot hand the container's descriptors to the shim: {e}") from e

    def _after_fork(self) -> None:
        """In a forked child: the parent's zygote is not ours (and our copy would keep it alive)."""
        self._lock = threading.Lock()
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._process = None
        self.forked_directly = False


SPAWNER = Spawner()
os.register_at_fork(after_in_child=SPAWNER._after_fork)


def single_threaded() -> bool:
    """Whether this process has one thread only (Python's count, and the kernel's for native threads)."""
    if threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def spawn(fds: list[int], kind: bytes = b"R") -> int | None:
    """Start a shim for ``fds`` (see :meth:`Spawner.spawn`): the process's first one forked here if
    that is safe (one thread), every other one by the zygote (see the module docstring).

    Returns the pid of a child of ours to :func:`reap` (see :func:`fork_shim`), or None.
    """
    if not SPAWNER.forked_directly and single_threaded():
        SPAWNER.forked_directly = True
        return fork_shim(fds, kind)
    SPAWNER.spawn(fds, kind)
    return None


def fork_shim(fds: list[int], kind: bytes = b"R") -> int:
    """Fork the shim from this single-threaded process, as the zygote's child would be forked.

    Two forks: the intermediate child exits at once, so the shim is not our child (nobody here
    waits for it; it is reparented as the zygote's children are when the zygote ends) and a
    detached container outlives us.  The shim then does what the zygote's child does (``_shim.zygote``).
    Returns the intermediate child's pid, for :func:`reap` (meanwhile, it runs in parallel).
    """
    try:
        middle = os.fork()
    except OSError as e:
        raise ContainerError(f"cannot start the container shim: {e}") from e
    if middle == 0:
        code = 125
        try:
            # the caller's objects are not ours: never collect them here (a finalizer could flush the
            # caller's buffers again, or close a descriptor number the shim has reused)
            gc.freeze()
            os.setsid()  # out of the caller's process group at once: its Ctrl-C must not reach the shim
            if os.fork() == 0:
                _become_shim(fds, kind)  # never returns
            code = 0
        finally:
            os._exit(code)  # neither this child nor the shim may ever return into the caller's code
    return middle


def reap(pid: int) -> None:
    """Wait for a child that is ending (the intermediate child of :func:`fork_shim`)."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # SIGCHLD ignored here: the kernel reaped it
        pass


def _become_shim(fds: list[int], kind: bytes) -> None:
    """In the shim forked by :func:`fork_shim`: leave the caller's state behind, then run the request.

    The zygote's child starts with no more than the zygote has (a bare interpreter, stdio, the
    request's descriptors); here everything the caller had is reset or closed first.
    """
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():  # the caller's Python handlers go: a fresh interpreter has none
        handler = signal.getsignal(sig)
        if callable(handler) and not (sig == signal.SIGINT and handler is signal.default_int_handler):
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as in any Python interpreter: G restores both
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if faulthandler.is_enabled():
        faulthandler.disable()  # its descriptor is about to be closed
    os.chdir("/")
    os.setsid()  # a session of its own, of which it is the leader, as the zygote's child
    # the request's descriptors, moved above every descriptor of the caller and close-on-exec (as
    # the zygote receives them); then nothing else stays open but them and stdio
    base = max(2, *fds) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base) for fd in fds]
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in moved:
            try:
                os.close(int(name))
            except OSError:  # the listing's own descriptor, closed already
                pass
    for target, fd in enumerate(moved[:3]):
        os.dup2(fd, target)
        os.close(fd)
    if kind == b"R":
        _shim.run(*moved[3:7], moved[7:])
    else:
        _shim.exec_run(*moved[3:7])


#: how long a launch waits for the shim to report that the command was exec'd
START_TIMEOUT = 60.0
#: how long a failed launch waits for the shim to close the container's ports and record its end
FAILED_START_GRACE = 5.0


def close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def stdio(stdin: StdArg, stdout: StdArg, stderr: StdArg,
          theirs: list[int]) -> tuple[list[int], tuple[IO[bytes] | None, ...]]:
    """Descriptors for the shim's 0, 1, 2 and our ends of any pipes, following Popen's conventions.

    Descriptors opened here for the shim are appended to ``theirs`` (the caller closes them once
    the shim has its copies).
    """
    fds: list[int] = []
    streams: list[IO[bytes] | None] = []
    for index, arg in enumerate((stdin, stdout, stderr)):
        stream: IO[bytes] | None = None
        if arg is None:
            fd = index
        elif arg == subprocess.PIPE:
            r, w = os.pipe()
            mine, fd = (w, r) if index == 0 else (r, w)
            theirs.append(fd)
            stream = open(mine, "wb" if index == 0 else "rb")  # noqa: SIM115 - owned by the Sandbox
        elif arg == subprocess.DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            theirs.append(fd)
        elif arg == subprocess.STDOUT and index == 2:
            fd = fds[1]
        elif isinstance(arg, int):
            fd = arg
        else:
            fd = arg.fileno()
        fds.append(fd)
        streams.append(stream)
    return fds, tuple(streams)


def stdio_or_tty(tty: bool, stdin: StdArg, stdout: StdArg, stderr: StdArg,
                 theirs: list[int]) -> tuple[list[int], tuple[IO[bytes] | None, ...], int | None]:
    """:func:`stdio`, or with ``tty`` a new pty whose slave is all three: ``(fds, streams, master)``.

    The slave goes to ``theirs``; the master (None without a tty) is the caller's to keep or close.
    """
    if not tty:
        fds, streams = stdio(stdin, stdout, stderr, theirs)
        return fds, streams, None
    if stdin is not None or stdout is not None or stderr is not None:
        raise ContainerError("stdin/stdout/stderr cannot be given with tty=True")
    master, slave = os.openpty()
    theirs.append(slave)
    return [slave, slave, slave], (None, None, None), master


def launch(kind: bytes, payload: bytes, fds: Sequence[int]) -> tuple[int, int, int]:
    """Start a shim (see :func:`spawn`) for ``payload`` with ``fds`` (stdin, stdout, stderr, extras…).

    Returns ``(pid, ctl, done)``: the host pid the shim reported and our ends of its ``ctl`` and
    ``done`` pipes, once the command was exec'd.  Raises :class:`ContainerError` with the shim's
    exit code and message otherwise.  ``fds`` stay the caller's to close.
    """
    ours: list[int] = []
    theirs: list[int] = []
    middle: int | None = None
    try:
        spec_r, spec_w = os.pipe()
        ours.append(spec_w)
        theirs.append(spec_r)
        status_r, status_w = os.pipe()
        ours.append(status_r)
        theirs.append(status_w)
        ctl_r, ctl_w = os.pipe()
        ours.append(ctl_w)
        theirs.append(ctl_r)
        done_r, done_w = os.pipe()
        ours.append(done_r)
        theirs.append(done_w)
        middle = spawn([*fds[:3], spec_r, status_w, ctl_r, done_w, *fds[3:]], kind)
        close_fds(theirs)
        theirs = []
        _write_all(spec_w, payload)
        ours.remove(spec_w)
        os.close(spec_w)
        pid, error = _read_status(status_r)
        if error is not None or pid is None:
            if pid is not None:  # the shim is finishing (ports, state): nothing may be left when we raise
                _wait_eof(done_r, FAILED_START_GRACE)
            code, message = error if error is not None else (125, "the container shim exited without a report")
            raise ContainerError(message, exit_code=code)
        ours.remove(status_r)
        os.close(status_r)
    except BaseException:
        close_fds(theirs + ours)
        raise
    finally:
        if middle is not None:  # reaped only now: it exits while the shim sets the container up
            reap(middle)
    return pid, ctl_w, done_r


def _wait_eof(fd: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0] and not os.read(fd, 4096):
            return


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
