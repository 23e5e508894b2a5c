"""Blob transfers on a few threads, their events reported in a fixed order.

dockerd pushes up to 5 layers at a time and pulls up to 3 (``--max-concurrent-uploads`` /
``--max-concurrent-downloads``): most of a small transfer is waiting for the registry, and that
waiting overlaps. :func:`run_jobs` runs ``job(emit, cancelled)`` callables on ``limit`` threads.
Events a job emits come back to the calling generator's thread: progress ticks at once, every other
event in job order (all of job 0's, then job 1's …), so the lines a transfer prints do not depend on
which request the registry answered first. The first failure (in job order) is raised once the
running jobs have stopped (or ``ABANDON_AFTER`` passed); jobs not yet started are skipped, running
ones see ``cancelled`` set.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from queue import SimpleQueue
from typing import Any

from .events import PROGRESS_STATUSES, LayerProgress, TransferEvent

Emit = Callable[[TransferEvent], None]
Job = Callable[[Emit, threading.Event], Any]
ABANDON_AFTER = 5.0     # seconds to wait for running jobs after a failure or a cancellation


class _Finished:
    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error


def _is_tick(event: TransferEvent) -> bool:
    return isinstance(event, LayerProgress) and event.status in PROGRESS_STATUSES


def run_jobs(jobs: list[Job], limit: int) -> Iterator[TransferEvent]:
    """Run ``jobs`` on up to ``limit`` threads, yielding their events; return their results (job order)."""
    n = len(jobs)
    if n == 0:
        return []
    queue: SimpleQueue = SimpleQueue()
    cancelled = threading.Event()
    todo = list(range(n - 1, -1, -1))     # popped from the end: job 0 first
    lock = threading.Lock()

    def worker() -> None:
        while not cancelled.is_set():
            with lock:
                if not todo:
                    return
                i = todo.pop()
            try:
                result = jobs[i](lambda event, i=i: queue.put((i, event)), cancelled)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                cancelled.set()            # before this thread (or another) takes the next job
                queue.put((i, _Finished(error=e)))
            else:
                queue.put((i, _Finished(result)))

    threads = [threading.Thread(target=worker, name=f"layerlab-transfer-{k}", daemon=True)
               for k in range(min(limit, n))]
    for t in threads:
        t.start()
    held: list[list[TransferEvent]] = [[] for _ in range(n)]
    finished: list[_Finished | None] = [None] * n
    head = 0                               # the first job whose events are not all out yet
    try:
        while head < n:
            i, item = queue.get()
            if isinstance(item, _Finished):
                finished[i] = item
                if item.error is not None:
                    cancelled.set()
            elif _is_tick(item):
                yield item
            else:
                held[i].append(item)
            while head < n and finished[head] is not None:
                done = finished[head]
                if done.error is not None:  # type: ignore[union-attr]
                    raise done.error  # type: ignore[union-attr,misc]
                yield from held[head]
                head += 1
            if head < n and held[head]:
                yield from held[head]
                held[head].clear()
    except BaseException:      # a failed job, or the consumer gone (close(), Ctrl-C): stop the others
        cancelled.set()
        deadline = time.monotonic() + ABANDON_AFTER
        for t in threads:      # a request stalled in the network is left to its own timeout
            t.join(max(deadline - time.monotonic(), 0))
        raise
    for t in threads:
        t.join()
    return [f.result for f in finished]  # type: ignore[union-attr]
