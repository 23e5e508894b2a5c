"""Run another process in a running container: ``docker exec``.

A fresh single-threaded helper E (forked as the shims are, see :mod:`.spawner` and
``_shim.exec_run``) opens a pidfd of the container's pid 1, checks its start time against the
state directory (so a recycled pid is never joined), and ``setns``-es into its user, mount, pid,
uts, ipc and (unless ``network="host"``) net namespaces at once, then ``chroot``-s into its root.
A ``setns`` into a pid namespace only applies to children, so E forks X, which is inside; X gets
the same treatment as the container's main process: capability bounding set cut to Docker's
default set, ids, working directory, ``PATH`` lookup, and Docker's exit codes when exec fails (127
not found, 126 not runnable).  E supervises X as the shim supervises pid 1 and reports its exit
code; X dies with the container (the kernel kills a pid namespace whose init dies).

Example::

    >>> proc = exec_in("/store/containers/abc/state", ["cat", "/etc/hostname"],
    ...                stdout=subprocess.PIPE, container_id="abc")                   # doctest: +SKIP
    >>> proc.communicate()[0], proc.returncode                                       # doctest: +SKIP
    (b'web1\\n', 0)
"""
from __future__ import annotations

import logging
import marshal
import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from ..errors import ContainerError
from . import _shim
from .control import read_state
from .sandbox import Sandbox
from .spawner import close_fds, launch, stdio_or_tty
from ..values import value

if TYPE_CHECKING:
    from .spawner import StdArg

log = logging.getLogger(__name__)

__all__ = ["ExecSpec", "exec_in"]


@value
class ExecSpec:
    """What :func:`exec_in` ran (kept on the returned handle as ``spec``)."""

    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    tty: bool = False


def exec_in(state_dir: str, argv: Sequence[str], *, env: Sequence[str] = (), cwd: str = "/", uid: int = 0,
            gid: int = 0, groups: Sequence[int] = (), tty: bool = False, stdin: StdArg = None,
            stdout: StdArg = None, stderr: StdArg = None, container_id: str = "",
            detach: bool = False) -> Sandbox:
    """Start ``argv`` inside the running container whose state directory is ``state_dir``.

    ``env`` is the whole environment (``K=V``; Docker gives the container's own env plus ``-e``:
    the caller's business, ``HOME`` is added as for the main process); ``cwd`` must exist (it is not
    created, as in Docker).  ``uid``/``gid`` must be mapped in the container's user namespace: in
    a rootless container only the user it was started with is, so pass that one.  ``stdin``,
    ``stdout``, ``stderr`` and ``tty`` work as for :func:`.sandbox.start`.  ``detach`` keeps the
    process running when this handle or its process goes away (``exec -d``).

    Returns a :class:`.sandbox.Sandbox` (``wait``, ``communicate``, ``kill``, ``poll``…) whose
    ``pid`` is the host pid of the new process.  Raises :class:`ContainerError`:
    ``Container <container_id> is not running`` (exit code 1) when it has ended, else 127/126/125
    with Docker's message when the command cannot be run.
    """
    spec = ExecSpec(argv=tuple(argv), env=tuple(env), cwd=cwd or "/", uid=uid, gid=gid, groups=tuple(groups),
                    tty=tty)
    if not spec.argv:
        raise ContainerError("no command specified", exit_code=125)
    if not os.path.isabs(spec.cwd):
        raise ContainerError(f"the working directory '{spec.cwd}' is invalid, it needs to be an absolute path")
    if any("\0" in item for item in (*spec.argv, *spec.env, spec.cwd)):
        raise ContainerError("invalid argument: NUL byte in the command, environment or cwd")
    not_running = ContainerError(f"Container {container_id} is not running", exit_code=1)
    try:
        state = read_state(state_dir)
    except ContainerError:
        raise not_running from None
    if not state.running:
        raise not_running
    payload = marshal.dumps({
        "pid": state.pid, "pid_start": state.pid_start, "network": state.network,
        "argv": list(spec.argv), "env": list(spec.env), "cwd": spec.cwd, "uid": uid, "gid": gid,
        "groups": list(spec.groups), "setgroups": _setgroups_allowed(state.pid), "tty": tty,
        "detach": detach,
    })
    theirs: list[int] = []
    ours: list[int] = []
    streams: tuple[IO[bytes] | None, ...] = (None, None, None)
    tty_fd: int | None = None
    try:
        std_fds, streams, tty_fd = stdio_or_tty(tty, stdin, stdout, stderr, theirs)
        if tty_fd is not None:
            ours.append(tty_fd)
        try:
            pid, ctl_w, done_r = launch(b"E", payload, std_fds)
        except ContainerError as e:
            if e.message == _shim.NOT_RUNNING:
                raise not_running from None
            raise
    except BaseException:
        close_fds(ours)
        for stream in streams:
            if stream is not None:
                stream.close()
        raise
    finally:
        close_fds(theirs)
    log.debug("exec pid %d in container %s: %s", pid, container_id or state_dir, " ".join(spec.argv))
    return Sandbox(spec=spec, pid=pid, ctl_fd=ctl_w, done_fd=done_r, tty_fd=tty_fd, streams=streams,
                   rootfs_mode="exec", detached=detach, state_dir=None)


def _setgroups_allowed(pid: int | None) -> bool:
    """Whether the container's user namespace lets its processes set supplementary groups."""
    try:
        with open(f"/proc/{pid}/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return False
