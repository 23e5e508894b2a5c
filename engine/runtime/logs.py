"""Read a container's log: Docker's ``json-file`` format, as the shim writes it (``docker logs``).

One JSON object per line, ``{"log": "hi\\n", "stream": "stdout", "time": "2024-05-01T10:00:00.5Z"}``;
a line longer than 16 KiB is split into several objects, only the last one ending in ``\\n``; a last
line without a newline is logged as it is.  The file is only ever appended to, one whole record per
``write``, so a reader never sees half a record except at the very end while it is being written.

Example::

    >>> for line in read_logs("/store/containers/abc/abc-json.log", tail=10):   # doctest: +SKIP
    ...     print(line.text, end="")
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal

from ..values import value

__all__ = ["LogLine", "read_logs", "parse_line"]

#: how often a follower looks for new lines
POLL_INTERVAL = 0.05


@value
class LogLine:
    """One record of the log: ``text`` as the container wrote it (with its ``\\n``), its stream and time.

    ``time`` is the RFC 3339 timestamp with nanoseconds, as written (``docker logs -t`` shows it).
    """

    stream: Literal["stdout", "stderr"]
    text: str
    time: str


def parse_line(raw: bytes) -> LogLine | None:
    """One json-file record, or None for a line that is not one (a torn or foreign line)."""
    try:
        data = json.loads(raw)
        return LogLine(stream=data["stream"], text=data["log"], time=data["time"])
    except (ValueError, KeyError, TypeError):
        return None


def _records(chunks: Iterator[bytes]) -> Iterator[LogLine]:
    for raw in chunks:
        line = parse_line(raw)
        if line is not None:
            yield line


def read_logs(path: str, *, tail: int | None = None, follow: bool = False,
              stop: Callable[[], bool] = lambda: True, poll_interval: float = POLL_INTERVAL) -> Iterator[LogLine]:
    """The log's records, oldest first: ``docker logs [--tail N] [-f]``.

    ``tail`` keeps only the last N records (None: all).  With ``follow``, keeps reading new records
    as they are appended until ``stop()`` returns true (typically: the container is no longer
    running), then reads what was appended meanwhile and ends.  A missing file is an empty log.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, the generator may be left early
    except FileNotFoundError:
        if not follow:
            return
        while not os.path.exists(path):
            if stop():
                return
            time.sleep(poll_interval)
        f = open(path, "rb")  # noqa: SIM115
    with f:
        complete, pending = _split(f.read())
        records: Iterator[LogLine] = _records(iter(complete))
        if tail is not None:
            records = iter(deque(records, maxlen=max(tail, 0)))
        yield from records
        if not follow:
            return
        while True:
            ended = stop()  # asked before reading, so nothing appended before the end is missed
            data = f.read()
            if data:
                complete, pending = _split(pending + data)
                yield from _records(iter(complete))
            elif ended:
                if pending:
                    yield from _records(iter([pending]))
                return
            else:
                time.sleep(poll_interval)


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines, and what follows the last newline (a record still being written)."""
    lines = data.split(b"\n")
    return [line for line in lines[:-1] if line], lines[-1]
