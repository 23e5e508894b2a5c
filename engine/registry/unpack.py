"""One layer blob downloaded, verified and unpacked in a single pass, on two threads.

The thread that downloads hashes every chunk and writes it to a staged (uncommitted) blob; a second
thread takes the same chunks from a short queue, decompresses them (gzip with :mod:`zlib` directly,
in 1 MiB blocks; other compressions through :func:`engine.layer.decompressed`), hashes the DiffID,
writes the uncompressed staged blob and walks the tar. hashlib, zlib, sockets and file writes
release the GIL on large buffers, so the two overlap on two cores instead of reading the blob twice.

Nothing reaches the store before it is verified: both blobs stay staged (removed on any failure)
until the caller commits them; the blob's digest and size are checked first, and only then is the
unpacking's outcome (an archive error, or the DiffID) looked at, so a tampered blob is always
reported as ``filesystem layer verification failed``.
"""
from __future__ import annotations

import hashlib
import threading
import zlib
from collections.abc import Callable
from queue import Queue
from typing import Any

from ..errors import ArchiveError, RegistryError
from ..layer import LayerDigest, decompressed, detect_compression, measure_tar
from ..spec import Descriptor
from .client import CHUNK, RegistryClient
from .events import LayerProgress, TransferEvent
from .transfer import StagedBlob

TICK = 4 << 20                  # bytes between Downloading events
QUEUE_CHUNKS = 16               # chunks the unpacking may lag behind the download (16 MiB)
#: a layer's tar may not leave less than this free on the store's disk: a few kB of gzip can claim
#: terabytes (a decompression bomb), and the registry chose both the blob and the digest we check
DISK_RESERVE = 256 << 20
DISK_CHECK_EVERY = 64 << 20     # bytes of tar between two looks at the free space


class _Chunks:
    """The chunks a download hands over, as a readable stream (``None`` in the queue ends it)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.buf = memoryview(b"")
        self.ended = False

    def _fill(self) -> bool:
        while not self.buf:
            if self.ended:
                return False
            item = self.queue.get()
            if item is None:
                self.ended = True
                return False
            self.buf = memoryview(item)
        return True

    def peek(self) -> bytes:
        return bytes(self.buf[:8]) if self._fill() else b""

    def read(self, n: int = -1) -> bytes:
        if not self._fill():
            return b""
        if n is None or n < 0 or n >= len(self.buf):
            data, self.buf = self.buf, memoryview(b"")
        else:
            data, self.buf = self.buf[:n], self.buf[n:]
        return data.obj if data.nbytes == len(data.obj) else bytes(data)  # type: ignore[union-attr]

    def drain(self) -> None:
        while not self.ended:
            self.buf = memoryview(b"")
            self._fill()


class _Gunzip:
    """Gzip members (and zero padding between them, as :mod:`gzip` allows) decompressed with zlib;
    each member's CRC and length are checked by zlib. Reads return at most ``n`` bytes."""

    def __init__(self, src: Any) -> None:
        self.src = src
        self.d = zlib.decompressobj(31)
        self.pending = b""

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n is None or n < 0 else n
        while not self.pending:
            if self.d.eof:
                data = self.d.unused_data
                while not (data := data.lstrip(b"\0")):
                    data = self.src.read(CHUNK)
                    if not data:
                        return b""
                self.d = zlib.decompressobj(31)
            else:
                data = self.d.unconsumed_tail or self.src.read(CHUNK)
                if not data:
                    raise EOFError("compressed data ended before the end-of-stream marker")
            try:
                self.pending = self.d.decompress(data, max(n, CHUNK))
            except zlib.error as e:
                raise ArchiveError(f"invalid gzip data: {e}") from None
        data, self.pending = self.pending[:n], self.pending[n:]
        return data


class _Tee:
    """The decompressed tar, written to ``out`` as it is read; refused before it fills the disk."""

    def __init__(self, src: Any, out: StagedBlob) -> None:
        self.src, self.out = src, out
        self.written, self.next_check = 0, 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        if data:
            if self.written >= self.next_check:
                self.next_check = self.written + DISK_CHECK_EVERY
                if self.out.free_bytes() < DISK_RESERVE + DISK_CHECK_EVERY:
                    raise ArchiveError(f"the uncompressed layer would leave less than {DISK_RESERVE >> 20} MiB "
                                       f"free on the store's disk after {self.written} bytes")
            self.out.write(data)
            self.written += len(data)
        return data


class _Unpacker(threading.Thread):
    """Decompresses (unless ``out`` is None: the blob is the tar), writes ``out``, measures the tar."""

    def __init__(self, out: StagedBlob | None) -> None:
        super().__init__(name="layerlab-unpack", daemon=True)
        self.queue: Queue = Queue(QUEUE_CHUNKS)
        self.out = out
        self.measured: LayerDigest | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        src = _Chunks(self.queue)
        try:
            if self.out is None:
                self.measured = measure_tar(src)  # type: ignore[arg-type]
            else:
                stream = _Gunzip(src) if detect_compression(src.peek()) == "gzip" else decompressed(src)  # type: ignore[arg-type]
                self.measured = measure_tar(_Tee(stream, self.out))  # type: ignore[arg-type]
                self.out.flush()
        except BaseException as e:  # noqa: BLE001 - reported by the downloading thread, after the digest check
            self.error = e
        finally:
            src.drain()            # never leave the downloader blocked on a full queue


def fetch_layer(client: RegistryClient, repo: str, d: Descriptor, diff_id: str, blob: StagedBlob,
                layer: StagedBlob | None, layer_id: str, emit: Callable[[TransferEvent], None],
                cancelled: threading.Event | None = None) -> LayerDigest:
    """Download ``d`` into ``blob`` and its uncompressed tar into ``layer`` (None when the blob is the
    tar); emit Docker's Downloading / Verifying Checksum / Download complete; return the measured tar."""
    unpacker = _Unpacker(layer)
    unpacker.start()
    h = hashlib.sha256()
    n, next_tick = 0, TICK
    try:
        resp = client.open_blob(repo, d.digest)
        with resp:
            for chunk in resp.iter_content(CHUNK):
                n += len(chunk)
                if n > d.size:
                    break
                h.update(chunk)
                blob.write(chunk)
                unpacker.queue.put(chunk)
                if n >= next_tick:
                    next_tick = n + TICK
                    emit(LayerProgress(layer_id, "Downloading", n, d.size))
                if cancelled is not None and cancelled.is_set():
                    raise RegistryError("pull cancelled")
    finally:
        unpacker.queue.put(None)
        unpacker.join()
    emit(LayerProgress(layer_id, "Verifying Checksum"))
    if n != d.size or "sha256:" + h.hexdigest() != d.digest:
        raise RegistryError(f"filesystem layer verification failed for digest {d.digest}")
    blob.flush()
    emit(LayerProgress(layer_id, "Download complete"))
    if unpacker.error is not None:
        e = unpacker.error
        if isinstance(e, (ArchiveError, OSError, EOFError)):
            raise RegistryError(f"layer {d.digest}: {e}") from None
        raise e
    measured = unpacker.measured
    assert measured is not None
    if measured.diff_id != diff_id:
        raise RegistryError(f"layer {d.digest}: DiffID {measured.diff_id} does not match the config's {diff_id}")
    return measured
