"""The caller's end of the shim's fork server (see ``_shim.zygote``).

One zygote per calling process, started lazily, ended by the kernel closing its socket when the
caller exits.  It is a plain child process, not a daemon: it holds no state and serves nobody else.
"""
from __future__ import annotations

import array
import logging
import os
import socket
import subprocess
import sys
import threading

from ..errors import ContainerError

log = logging.getLogger(__name__)

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

    def _start(self) -> None:
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
        log.debug("container shim zygote started, pid %d", self._process.pid)

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

    def spawn(self, fds: list[int]) -> None:
        """Fork a shim with ``fds`` = stdin, stdout, stderr, spec, status, ctl, done."""
        message = [b"R"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
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


SPAWNER = Spawner()
os.register_at_fork(after_in_child=SPAWNER._after_fork)
