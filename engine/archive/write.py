"""Writing archive entries reproducibly: as a tar with Go ``archive/tar``'s bytes, or into a directory.

An :class:`Entry` is one member (a directory, inline bytes, a store blob or a symlink); the tar has
fixed owner and modes, mtime ``SOURCE_DATE_EPOCH`` (or 0) and Go's two-block end marker.
"""
from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, Iterable

from ..digest import CHUNK
from ..errors import ArchiveError
from ..layer import decompressed, source_date_epoch
from ..store import Store
from ..values import value


@value
class Entry:
    """One archive member: a directory, inline bytes, a store blob, or a symlink."""

    name: str
    data: bytes | None = None
    blob: str | None = None            # store digest to stream
    blob_size: int = 0
    decompress: bool = False           # stream the blob through a decompressor
    linkname: str | None = None
    is_dir: bool = False

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.blob_size


def stored_size(store: Store, digest: str) -> int:
    """The size of a stored blob's file."""
    return store.blob_path(digest).stat().st_size


def blob_entry(store: Store, name: str, digest: str) -> Entry:
    """A member ``name`` holding a stored blob as it is."""
    return Entry(name, blob=digest, blob_size=stored_size(store, digest))


def in_archive_order(entries: Iterable[Entry]) -> list[Entry]:
    """Entries sorted by path component, so a directory comes before what it holds."""
    return sorted(entries, key=lambda entry: entry.name.split("/"))


def _archive_mtime() -> int:
    return source_date_epoch() or 0


def _tarinfo(entry: Entry, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(entry.name)
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = mtime
    if entry.is_dir:
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    elif entry.linkname is not None:
        ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, entry.linkname
    else:
        ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o644, entry.size
    return ti


_TYPE_BITS = {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK, tarfile.REGTYPE: stat.S_IFREG}


def _header(ti: tarfile.TarInfo) -> bytes:
    """Header blocks for ``ti`` as Go's archive/tar writes them (file-type bits in the mode, zero devices)."""
    buf = bytearray(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
    block = len(buf) - tarfile.BLOCKSIZE          # the ustar header is the last block
    buf[block + 100:block + 108] = b"%07o\0" % (_TYPE_BITS[ti.type] | ti.mode)
    buf[block + 329:block + 345] = b"0000000\0" * 2    # devmajor, devminor: Go writes zeros, not NULs
    buf[block + 148:block + 156] = b" " * 8
    buf[block + 148:block + 155] = b"%06o\0" % sum(buf[block:])
    return bytes(buf)


def _copy_exact(src: BinaryIO, out: BinaryIO, size: int, what: str) -> None:
    remaining = size
    while remaining:
        chunk = src.read(min(CHUNK, remaining))
        if not chunk:
            raise ArchiveError(f"{what} is shorter than recorded ({size} bytes)")
        out.write(chunk)
        remaining -= len(chunk)


def _write_content(store: Store, entry: Entry, out: BinaryIO) -> None:
    if entry.data is not None:
        out.write(entry.data)
        return
    assert entry.blob is not None
    with store.open_blob(entry.blob) as f:
        src = decompressed(f) if entry.decompress else f
        _copy_exact(src, out, entry.blob_size, f"blob {entry.blob}")


def write_tar(store: Store, entries: list[Entry], out: BinaryIO) -> None:
    """A reproducible tar: given order, fixed mtime, root owner, Go's two-block end marker."""
    mtime = _archive_mtime()
    for entry in entries:
        ti = _tarinfo(entry, mtime)
        out.write(_header(ti))
        if ti.isreg():
            _write_content(store, entry, out)
            pad = (-entry.size) % tarfile.BLOCKSIZE
            if pad:
                out.write(bytes(pad))
    out.write(bytes(2 * tarfile.BLOCKSIZE))
    out.flush()


def write_dir(store: Store, entries: list[Entry], root: Path) -> None:
    """The entries as files under ``root`` (directories 0755, files 0644, each synced)."""
    for entry in entries:
        path = root / entry.name
        if entry.is_dir:
            path.mkdir(mode=0o755, exist_ok=True)
            continue
        with open(path, "xb") as f:
            _write_content(store, entry, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, 0o644)
