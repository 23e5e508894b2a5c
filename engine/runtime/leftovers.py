"""Find what containers left behind that should be gone: for ``system check``.

What a container can leave on the host is processes: its own (pid 1 and everything in its pid
namespace, ``exec``'d ones included) and its shim, which also holds its published ports (the
forwarder lives in the shim) and its log file open.  Its mounts live only in its private mount
namespace, which the kernel frees with the last of these processes, so no process means no mount
and no bound port.  :func:`leftovers` therefore looks for:

* processes of a container that has ended (``exit_code`` recorded) or whose state directory is not
  among the known ones: its pid 1, any other process of its pid namespace, its shim;
* shims (processes named ``layerlab-shim``) whose state directory was deleted or is not known,
  wherever it is (found through the directory descriptor the shim keeps open).

A shim without a state directory (a foreground run without ``state_dir``) belongs to a live caller
and dies with it; it is not reported.  Only processes this user may inspect are seen.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from . import _shim
from .control import ContainerError, alive, read_state
from ..values import value

__all__ = ["Leftover", "leftovers"]

_DELETED = " (deleted)"


@value
class Leftover:
    """One thing that should be gone: ``kind`` is ``process`` or ``shim``; ``str()`` says it in a line."""

    state_dir: str
    kind: str
    pid: int
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.pid} of {self.state_dir}: {self.detail}"


@value
class _Process:
    pid: int
    comm: str
    pidns: str | None


def _processes() -> list[_Process]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        try:
            pidns: str | None = os.readlink(f"/proc/{entry}/ns/pid")
        except OSError:
            pidns = None
        found.append(_Process(int(entry), comm, pidns))
    return found


def _shim_state_dir(pid: int) -> str | None:
    """The state directory a shim holds open (None if it has none)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if not stat.S_ISDIR(os.stat(f"/proc/{pid}/fd/{fd}").st_mode):  # the open file, even deleted
                continue
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/"):
            return target
    return None


def _state_dirs(base: str) -> set[str]:
    """Directories at most two levels below ``base`` that hold a ``state.json``."""
    found: set[str] = set()
    for root, dirs, files in os.walk(base):
        if "state.json" in files:
            found.add(os.path.abspath(root))
        if os.path.relpath(root, base).count(os.sep) >= 1:
            dirs.clear()
    return found


def _under(path: str, base: str) -> bool:
    base = os.path.abspath(base)
    return os.path.abspath(path).startswith(base.rstrip(os.sep) + os.sep)


def leftovers(state_dirs_known: Iterable[str], base: str) -> list[Leftover]:
    """What should be gone but is not (see the module docstring), sorted by state directory.

    ``state_dirs_known`` are the state directories of containers that exist (running or not);
    ``base`` is where state directories live, searched two levels deep.
    """
    known = {os.path.abspath(d) for d in state_dirs_known}
    base_dirs = _state_dirs(base) if os.path.isdir(base) else set()
    processes = _processes()
    found: list[Leftover] = []
    for state_dir in sorted(known | base_dirs):
        try:
            state = read_state(state_dir)
        except (ContainerError, ValueError):
            continue
        orphan = state_dir not in known
        if state.running and not orphan:
            continue
        why = "its container has no record" if orphan else f"its container exited ({state.exit_code})"
        members = [p for p in processes if state.pidns and p.pidns == state.pidns]
        for proc in members:
            found.append(Leftover(state_dir, "process", proc.pid, f"{proc.comm} still runs, {why}"))
        if alive(state.shim_pid, state.shim_start):
            ports = ", ".join(str(b) for b in state.ports)
            detail = f"the shim still runs{' and holds ' + ports if ports else ''}, {why}"
            found.append(Leftover(state_dir, "shim", state.shim_pid or 0, detail))
    reported = {item.pid for item in found}
    for proc in processes:
        if proc.comm != _shim.SHIM_NAME.decode() or proc.pid in reported:
            continue
        state_dir = _shim_state_dir(proc.pid)
        if state_dir is None:
            continue
        if not _under(state_dir.removesuffix(_DELETED), base) and state_dir not in known:
            continue  # a container of another store: not ours to judge
        if state_dir.endswith(_DELETED):
            found.append(Leftover(state_dir[:-len(_DELETED)], "shim", proc.pid,
                                  "the shim still runs, its state directory was deleted"))
        elif state_dir not in known and state_dir not in base_dirs:
            found.append(Leftover(state_dir, "shim", proc.pid, "the shim still runs, its container has no record"))
    return found
