"""Control a container from any process, through its state directory (``docker ps/kill/stop/wait``).

:func:`.sandbox.start` with ``state_dir`` makes the shim write there (see the sandbox module):

* ``state.json`` before ``start()`` returns: host pid of the container's pid 1 (``pid``) and of its
  shim (``shim_pid``), each with its start time (field 22 of ``/proc/<pid>/stat``, ``*_start``), the
  pid namespace (``pidns``), ``network``, ``tty``, ``detach``, ``ports``, ``log_path``;
* ``pid`` (the host pid alone, for humans);
* ``exit_code`` once the container has ended, after its ports were closed and its log completed.

A pid is only ever trusted together with its start time, and signals go through a pidfd opened
*before* the start time is checked, so a recycled pid is never signalled.

Exit codes when the shim could not record one (it was killed with ``kill -9``; the container dies
with it, see ``_shim.parent_death_armed``): :func:`wait_container` returns 137, as if the container
had been killed, and :attr:`ContainerState.shim_lost` says the code is a guess.

Example::

    >>> handle = ContainerHandle.attach("/store/containers/abc/state")   # doctest: +SKIP
    >>> handle.is_running(), handle.stop(timeout=10)                      # doctest: +SKIP
    (True, 137)
"""
from __future__ import annotations

import json
import os
import select
import signal
import time

from ..errors import ContainerError
from .ports import PortBinding
from ..values import value

__all__ = ["ContainerState", "ContainerHandle", "read_state", "is_running", "signal_container",
           "wait_container", "stop_container", "parse_signal", "LOST_EXIT_CODE"]

#: what a container whose shim died without recording its exit code is reported to have exited with
LOST_EXIT_CODE = 128 + signal.SIGKILL


@value
class ContainerState:
    """A snapshot of one container as its state directory and ``/proc`` tell it.

    ``running`` is true while the container's pid 1 (the very process, checked by start time) is
    alive and not a zombie.  ``exit_code`` is known once it has ended; ``shim_lost`` means the shim
    died before recording it, and ``exit_code`` is then :data:`LOST_EXIT_CODE`.
    """

    state_dir: str
    pid: int | None
    pid_start: int | None
    shim_pid: int | None
    shim_start: int | None
    pidns: str | None
    network: str
    tty: bool
    detached: bool
    ports: tuple[PortBinding, ...]
    log_path: str | None
    running: bool
    exit_code: int | None
    shim_lost: bool = False


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _proc_stat(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read()
    except OSError:  # ENOENT, or ESRCH while it is being reaped
        return None


def process_start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (clock ticks after boot), or None if there is no such process."""
    stat = _proc_stat(pid) if pid > 0 else None
    if not stat:
        return None
    try:
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def _process_state(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[stat.rindex(")") + 2] if stat else None


def alive(pid: int | None, start: int | None) -> bool:
    """Whether ``pid`` is still the process that had start time ``start``, and not a zombie."""
    if not pid or start is None:
        return False
    return process_start_time(pid) == start and _process_state(pid) not in (None, "Z", "X")


def open_verified(pid: int | None, start: int | None) -> int | None:
    """A pidfd for ``pid`` if it is still the process started at ``start``, else None."""
    if not pid or start is None:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if process_start_time(pid) != start:  # checked after opening: the pidfd cannot be recycled
        os.close(fd)
        return None
    return fd


def _exit_code_file(state_dir: str) -> int | None:
    text = _read_text(os.path.join(state_dir, "exit_code"))
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def read_state(state_dir: str) -> ContainerState:
    """The container's state; raises :class:`ContainerError` if ``state_dir`` holds none."""
    text = _read_text(os.path.join(state_dir, "state.json"))
    if text is None:
        raise ContainerError(f"no container state in {state_dir}")
    data = json.loads(text)
    code = _exit_code_file(state_dir)
    pid, pid_start = data.get("pid"), data.get("pid_start")
    shim_pid, shim_start = data.get("shim_pid"), data.get("shim_start")
    running = code is None and alive(pid, pid_start)
    lost = False
    if code is None and not running and not alive(shim_pid, shim_start):
        code = _exit_code_file(state_dir)  # the shim may have written it just now
        if code is None:
            code, lost = LOST_EXIT_CODE, True
    return ContainerState(
        state_dir=state_dir, pid=pid, pid_start=pid_start, shim_pid=shim_pid, shim_start=shim_start,
        pidns=data.get("pidns"), network=data.get("network", "private"), tty=bool(data.get("tty")),
        detached=bool(data.get("detach")),
        ports=tuple(PortBinding(ip, hp, cp, proto) for ip, hp, cp, proto in data.get("ports", [])),
        log_path=data.get("log_path"), running=running, exit_code=code, shim_lost=lost)


def is_running(state_dir: str) -> bool:
    """Whether the container's pid 1 is alive (False for a state directory without a container)."""
    try:
        return read_state(state_dir).running
    except ContainerError:
        return False


def parse_signal(value: int | str) -> int:
    """``9``, ``"9"``, ``"KILL"``, ``"SIGKILL"`` (any case) → 9, as ``docker kill -s`` takes them."""
    if isinstance(value, int):
        number = value
    else:
        text = value.strip().upper()
        if text.isdigit():
            number = int(text)
        else:
            name = text if text.startswith("SIG") else "SIG" + text
            try:
                number = int(signal.Signals[name])
            except KeyError:
                raise ContainerError(f"Invalid signal: {value}") from None
    if not 0 < number < signal.NSIG:
        raise ContainerError(f"Invalid signal: {value}")
    return number


def signal_container(state_dir: str, sig: int | str = signal.SIGKILL) -> bool:
    """Send ``sig`` to the container's pid 1 if it is still the very process started; True if sent.

    As in Docker, a pid 1 without a handler for ``sig`` ignores it (SIGKILL excepted), and SIGKILL
    ends the whole container.
    """
    number = parse_signal(sig)
    state = read_state(state_dir)
    if not state.running:
        return False
    fd = open_verified(state.pid, state.pid_start)
    if fd is None:
        return False
    try:
        signal.pidfd_send_signal(fd, number)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def _wait_fd(fd: int, deadline: float | None) -> bool:
    """Wait until ``fd`` is readable; False on timeout."""
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        try:
            if select.select([fd], [], [], left)[0]:
                return True
        except InterruptedError:
            continue


def wait_container(state_dir: str, timeout: float | None = None) -> int:
    """Wait until the container has ended; its exit code (Docker's, 128+n for signal n).

    Works from any process: waits on a pidfd of the container's pid 1, then for the shim to record
    the exit code.  Raises :class:`TimeoutError` after ``timeout`` seconds, :class:`ContainerError`
    if ``state_dir`` holds no container.  See the module docstring for a shim killed with -9.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    state = read_state(state_dir)
    if state.exit_code is not None:
        return state.exit_code
    fd = open_verified(state.pid, state.pid_start)
    if fd is not None:
        try:
            if not _wait_fd(fd, deadline):
                raise TimeoutError(f"container {state.pid} still running after {timeout}s")
        finally:
            os.close(fd)
    # pid 1 has ended: the shim closes the ports, completes the log, records the code and leaves
    shim = open_verified(state.shim_pid, state.shim_start)
    if shim is not None:
        try:
            if not _wait_fd(shim, deadline):
                raise TimeoutError(f"container {state.pid} still finishing after {timeout}s")
        finally:
            os.close(shim)
    code = _exit_code_file(state_dir)
    return LOST_EXIT_CODE if code is None else code


def stop_container(state_dir: str, timeout: float | None = 10, stop_signal: int | str = "SIGTERM") -> int:
    """Docker's ``stop -t``: ``stop_signal``, up to ``timeout`` seconds (None: forever), then SIGKILL.

    Returns the exit code; a container that has already ended is left alone.
    """
    if not is_running(state_dir):
        return wait_container(state_dir, 0)
    signal_container(state_dir, stop_signal)
    try:
        return wait_container(state_dir, timeout)
    except TimeoutError:
        signal_container(state_dir, signal.SIGKILL)
        return wait_container(state_dir)


@value
class ContainerHandle:
    """A container reached through its state directory, from this or any other process."""

    state_dir: str

    @classmethod
    def attach(cls, state_dir: str) -> ContainerHandle:
        """A handle for the container whose shim writes ``state_dir``; ContainerError if there is none."""
        read_state(state_dir)
        return cls(state_dir)

    def state(self) -> ContainerState:
        return read_state(self.state_dir)

    def is_running(self) -> bool:
        return is_running(self.state_dir)

    def signal(self, sig: int | str = signal.SIGKILL) -> bool:
        return signal_container(self.state_dir, sig)

    def wait(self, timeout: float | None = None) -> int:
        return wait_container(self.state_dir, timeout)

    def stop(self, timeout: float | None = 10, stop_signal: int | str = "SIGTERM") -> int:
        return stop_container(self.state_dir, timeout, stop_signal)
