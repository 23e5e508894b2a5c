"""Foreground runs: stream a container's output live, and kill it when the user interrupts.

``docker run`` without ``-d`` shows the output as it comes and a Ctrl-C (a Jupyter "interrupt
kernel") must end the container, not just the wait: :func:`kill_on_interrupt` sends SIGKILL to the
container's pid 1 (the kernel then kills every process of its pid namespace) when a
``KeyboardInterrupt`` (or any other exception) leaves the block, waits at most
:data:`INTERRUPT_GRACE` seconds for it to be gone, and re-raises.  :func:`run_foreground` does the
streaming inside such a block.

Example::

    >>> box = sandbox.start(spec, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
    ...                     stderr=subprocess.PIPE)                                 # doctest: +SKIP
    >>> run_foreground(box, on_stdout=sys.stdout.buffer.write,
    ...                on_stderr=sys.stderr.buffer.write)                           # doctest: +SKIP
    0
"""
from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from collections.abc import Callable, Iterator

from .sandbox import Sandbox

__all__ = ["kill_on_interrupt", "run_foreground", "INTERRUPT_GRACE"]

#: how long an interrupted foreground run waits for the killed container to be gone
INTERRUPT_GRACE = 1.0
#: the longest a foreground run sleeps in select() before Python may look at pending signals again
SIGNAL_TICK = 0.25

Writer = Callable[[bytes], object]


@contextlib.contextmanager
def kill_on_interrupt(box: Sandbox, grace: float = INTERRUPT_GRACE) -> Iterator[Sandbox]:
    """Kill the whole container if the block is left by an exception (KeyboardInterrupt above all)."""
    try:
        yield box
    except BaseException:
        if box.returncode is None:
            box.kill(signal.SIGKILL)
            try:
                box.wait(grace)
            except (TimeoutError, KeyboardInterrupt):
                pass
        raise


def run_foreground(box: Sandbox, *, on_stdout: Writer | None = None, on_stderr: Writer | None = None,
                   input: bytes | None = None, stdin_fd: int | None = None,
                   timeout: float | None = None) -> int:
    """Stream the container's output to ``on_stdout``/``on_stderr`` as it comes; its exit code.

    Reads ``box.stdout``/``box.stderr`` (started with ``subprocess.PIPE``) or ``box.tty_fd`` (a tty:
    everything goes to ``on_stdout``).  Feeds ``input``, then closes the container's stdin; or copies
    from ``stdin_fd`` (``docker run -i``, e.g. the terminal) until it ends.  Output with no callback
    is read and dropped.  On ``KeyboardInterrupt`` the container is killed (see
    :func:`kill_on_interrupt`) and the exception re-raised; after ``timeout`` seconds,
    :class:`TimeoutError` (the container is killed too).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    with kill_on_interrupt(box), selectors.DefaultSelector() as selector, contextlib.ExitStack() as stack:
        readers: dict[int, Writer | None] = {}
        if box.tty_fd is not None:
            readers[box.tty_fd] = on_stdout
            writer_fd: int | None = stack.enter_context(_dup(box.tty_fd))  # one selector key per use
        else:
            for stream, callback in ((box.stdout, on_stdout), (box.stderr, on_stderr)):
                if stream is not None:
                    readers[stream.fileno()] = callback
            writer_fd = box.stdin.fileno() if box.stdin is not None else None
        for fd in readers:
            selector.register(fd, selectors.EVENT_READ, "out")
        pending = memoryview(input or b"")
        if writer_fd is not None:
            if input:
                selector.register(writer_fd, selectors.EVENT_WRITE, "in")
            elif stdin_fd is not None:
                selector.register(stdin_fd, selectors.EVENT_READ, "stdin")
            elif box.stdin is not None:
                box.stdin.close()
        if not readers:
            selector.register(box.sentinel, selectors.EVENT_READ, "done")
        while readers:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"container {box.pid} still running after {timeout}s")
            # a SIGINT that lands between Python's last signal check and select() does not interrupt
            # it: wake up now and then so that the pending KeyboardInterrupt is raised anyway
            for key, _ in selector.select(SIGNAL_TICK if left is None else min(left, SIGNAL_TICK)):
                if key.data == "done":
                    readers.clear()
                elif key.data == "out":
                    chunk = _read(key.fd)
                    if chunk:
                        callback = readers[key.fd]
                        if callback is not None:
                            callback(chunk)
                    else:
                        selector.unregister(key.fd)
                        del readers[key.fd]
                elif key.data == "in":
                    try:
                        pending = pending[os.write(key.fd, pending[:65536]):]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(key.fd)
                        _close_input(box)
                else:  # copy from the caller's stdin
                    chunk = _read(key.fd)
                    if not chunk:
                        selector.unregister(key.fd)
                        _close_input(box)
                    elif writer_fd is not None:
                        try:
                            _write_all(writer_fd, chunk)
                        except BrokenPipeError:
                            selector.unregister(key.fd)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return box.wait(left)


@contextlib.contextmanager
def _dup(fd: int) -> Iterator[int]:
    copy = os.dup(fd)
    try:
        yield copy
    finally:
        os.close(copy)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: a pty whose container side is closed
        return b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _close_input(box: Sandbox) -> None:
    """The input ended: EOF for the container (a tty gets ^D, pipes are closed)."""
    if box.tty_fd is not None:
        try:
            os.write(box.tty_fd, b"\x04")
        except OSError:
            pass
    elif box.stdin is not None:
        box.stdin.close()
