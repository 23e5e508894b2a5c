"""The transfer machinery under push and pull: jobs on threads with their lines in a fixed order,
and the one-pass gunzip of a downloading layer."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import threading
import zlib
from queue import Queue

import pytest

from engine.errors import ArchiveError
from engine.layer import measure_tar
from engine.registry.events import Header, LayerProgress
from engine.registry.unpack import _Chunks, _Gunzip
from engine.registry.workers import run_jobs


def collect(gen):
    """The events of a generator and its return value."""
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_lines_follow_job_order_whatever_finishes_first() -> None:
    """Job 1 finishes (and emits) before job 0 has emitted anything: its line still comes second,
    while its progress tick is passed on at once."""
    first_done = threading.Event()

    def job0(emit, cancelled):
        assert first_done.wait(10)
        emit(LayerProgress("aaaaaaaaaaaa", "Pushed"))
        return "a"

    def job1(emit, cancelled):
        emit(LayerProgress("bbbbbbbbbbbb", "Pushing", 5, 10))
        emit(LayerProgress("bbbbbbbbbbbb", "Pushed"))
        first_done.set()
        return "b"

    events, results = collect(run_jobs([job0, job1], 5))
    assert events == [LayerProgress("bbbbbbbbbbbb", "Pushing", 5, 10),
                      LayerProgress("aaaaaaaaaaaa", "Pushed"), LayerProgress("bbbbbbbbbbbb", "Pushed")]
    assert results == ["a", "b"]


def test_jobs_really_run_side_by_side() -> None:
    """Two jobs that each wait for the other to have started: only possible on two threads."""
    started = [threading.Event(), threading.Event()]

    def job(i):
        def run(emit, cancelled):
            started[i].set()
            assert started[1 - i].wait(10), "the other job never ran alongside"
            emit(Header(f"job {i}"))
        return run

    events, _ = collect(run_jobs([job(0), job(1)], 2))
    assert events == [Header("job 0"), Header("job 1")]


def test_first_failure_in_job_order_is_raised_and_later_jobs_are_skipped() -> None:
    ran: list[int] = []

    def ok(i):
        def run(emit, cancelled):
            ran.append(i)
            emit(Header(f"ok {i}"))
        return run

    def fail(emit, cancelled):
        ran.append(1)
        raise ValueError("job 1 failed")

    gen = run_jobs([ok(0), fail, ok(2), ok(3)], 1)
    assert next(gen) == Header("ok 0")
    with pytest.raises(ValueError, match="job 1 failed"):
        next(gen)
    assert ran == [0, 1]           # one thread: nothing was started after the failure


def test_closing_the_generator_cancels_and_waits_for_running_jobs() -> None:
    seen_cancel = threading.Event()
    running = threading.Event()

    def slow(emit, cancelled):
        running.set()
        emit(LayerProgress("cccccccccccc", "Pushing", 1, 2))
        assert cancelled.wait(10)
        seen_cancel.set()

    gen = run_jobs([slow], 5)
    assert next(gen).status == "Pushing"
    gen.close()
    assert seen_cancel.is_set()    # close() returned only after the job saw the cancellation


def test_no_jobs() -> None:
    assert collect(run_jobs([], 5)) == ([], [])


def chunks_of(data: bytes, size: int) -> _Chunks:
    q: Queue = Queue()
    for i in range(0, len(data), size):
        q.put(data[i:i + size])
    q.put(None)
    return _Chunks(q)


def read_all(stream, n: int = 1 << 20) -> bytes:
    out = []
    while block := stream.read(n):
        out.append(block)
    return b"".join(out)


def test_gunzip_matches_gzip_module_on_members_and_padding() -> None:
    a, b = os.urandom(3 << 20), b"text " * 300_000
    data = gzip.compress(a, mtime=0) + b"\0" * 1024 + gzip.compress(b, mtime=0) + b"\0" * 100
    assert gzip.decompress(data) == a + b                       # what the gzip module accepts …
    for chunk in (7, 65536, 1 << 20, len(data)):
        assert read_all(_Gunzip(chunks_of(data, chunk))) == a + b, chunk   # … zlib reads the same
    assert read_all(_Gunzip(chunks_of(gzip.compress(b""), 3))) == b""


def test_gunzip_refuses_truncated_corrupt_and_trailing_garbage() -> None:
    data = gzip.compress(os.urandom(100_000) + b"x" * 100_000)
    with pytest.raises(EOFError):
        read_all(_Gunzip(chunks_of(data[:-20], 4096)))
    bad = bytearray(data)
    bad[-6] ^= 0xFF                                             # the CRC-32 of the member
    with pytest.raises(ArchiveError, match="invalid gzip data"):
        read_all(_Gunzip(chunks_of(bytes(bad), 4096)))
    with pytest.raises(ArchiveError):
        read_all(_Gunzip(chunks_of(data + b"not gzip", 4096)))


def test_gunzip_bounds_what_one_read_returns() -> None:
    """A small input that inflates hugely comes out in bounded reads (zlib's max_length)."""
    bomb = zlib.compress(b"\0" * (64 << 20), 9)
    data = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + bomb[2:-4] + \
        zlib.crc32(b"\0" * (64 << 20)).to_bytes(4, "little") + (64 << 20).to_bytes(4, "little")
    g = _Gunzip(chunks_of(data, 1 << 20))
    sizes = []
    while block := g.read(1 << 20):
        sizes.append(len(block))
    assert sum(sizes) == 64 << 20 and max(sizes) <= 1 << 20


def test_chunks_measure_a_tar_as_measure_tar_does() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, size in (("a", 10), ("b/" + "x" * 150, 1 << 20), ("c", 0)):
            ti = tarfile.TarInfo(name)
            ti.size = size
            tf.addfile(ti, io.BytesIO(os.urandom(size)))
    data = buf.getvalue()
    measured = measure_tar(chunks_of(data, 4099))  # type: ignore[arg-type]
    assert measured == measure_tar(io.BytesIO(data))
    assert measured.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
