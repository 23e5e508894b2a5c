"""Layers: reproducible tar writing, layer identities, whiteouts and tar inspection.

A layer is a tar of a filesystem change set. LayerLab writes layers reproducibly: entries in
sorted order (parents before children), owners normalised (uname/gname empty), PAX headers for
long names and xattrs, mtimes clamped to ``SOURCE_DATE_EPOCH`` when it is set. Layers are stored
uncompressed, so the blob digest is the DiffID; gzip (header mtime 0) is produced on demand.

Safe extraction lives in :mod:`engine.extract`.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator

from .digest import CHUNK
from .errors import ArchiveError
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms of a build)
if TYPE_CHECKING:
    import tarfile
    from typing import BinaryIO, Literal

    EntryKind = Literal["file", "dir", "symlink", "hardlink", "char", "block", "fifo", "whiteout", "opaque"]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
#: the digest of an empty tar (two zero blocks): the layer of a step or commit that changed nothing
EMPTY_TAR_DIGEST = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

Owner = Callable[[int, int], tuple[int, int]]


def source_date_epoch() -> int | None:
    """``SOURCE_DATE_EPOCH`` as an int, or None when unset or invalid."""
    v = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(v) if v.isdigit() else None


@value
class Entry:
    """One member of a layer to write. ``path`` is relative, without a leading ``/``."""

    path: str
    kind: EntryKind
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    size: int = 0
    source: str | None = None          # host file with the content (kind == "file")
    data: bytes | None = None          # inline content (kind == "file")
    linkname: str = ""                 # symlink target, or hardlink target path
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


@value
class LayerDigest:
    """What writing or reading a layer tar measured."""

    diff_id: str        # sha256 of the uncompressed tar
    tar_size: int       # bytes of the uncompressed tar
    size: int           # Docker's layer size: bytes of regular-file content


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through."""

    def __init__(self, out: BinaryIO | None) -> None:
        self.out = out
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b: bytes | memoryview) -> int:
        self.h.update(b)
        self.n += len(b)
        if self.out is not None:
            self.out.write(b)
        return len(b)

    @property
    def digest(self) -> str:
        return "sha256:" + self.h.hexdigest()


def _tarinfo(e: Entry, mtime: int) -> tarfile.TarInfo:
    import tarfile  # here and below: a cached build writes no tar (tarfile and shutil: 3 ms)

    name = e.path + "/" if e.kind == "dir" else e.path
    if e.kind == "whiteout":  # path names the deleted file; write .wh.<name> beside it
        head, _, base = e.path.rpartition("/")
        name = f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base
    elif e.kind == "opaque":  # path names the directory whose lower contents are hidden
        name = f"{e.path}/{OPAQUE_WHITEOUT}" if e.path else OPAQUE_WHITEOUT
    ti = tarfile.TarInfo(name)
    ti.mode = e.mode & 0o7777
    ti.uid, ti.gid = e.uid, e.gid
    ti.uname = ti.gname = ""
    ti.mtime = mtime
    if e.kind == "file":
        ti.type, ti.size = tarfile.REGTYPE, e.size
    elif e.kind in ("whiteout", "opaque"):
        ti.type, ti.size, ti.mode = tarfile.REGTYPE, 0, 0o644
    elif e.kind == "dir":
        ti.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        ti.type, ti.linkname = tarfile.SYMTYPE, e.linkname
    elif e.kind == "hardlink":
        ti.type, ti.linkname = tarfile.LNKTYPE, e.linkname
    elif e.kind in ("char", "block"):
        ti.type = tarfile.CHRTYPE if e.kind == "char" else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = e.devmajor, e.devminor
    elif e.kind == "fifo":
        ti.type = tarfile.FIFOTYPE
    else:  # pragma: no cover - EntryKind is closed
        raise ValueError(e.kind)
    if e.xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in e.xattrs}
    return ti


def write_tar(entries: Iterable[Entry], out: BinaryIO | None, *, epoch: int | None = None) -> LayerDigest:
    """Write ``entries`` (already in the order wanted) as a tar to ``out``; return its identity.

    With ``out=None`` only the digest is computed. Mtimes are clamped to ``epoch`` when given.
    """
    import tarfile

    w = _HashingWriter(out)
    content = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    for e in entries:
        mtime = e.mtime if epoch is None else min(e.mtime, epoch)
        ti = _tarinfo(e, max(mtime, 0))
        w.write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if e.kind != "file":
            continue
        remaining = e.size
        if e.data is not None:
            if len(e.data) != e.size:
                raise ArchiveError(f"{e.path}: inline data length differs from size")
            w.write(e.data)
            remaining = 0
        elif remaining:
            with open(e.source or "", "rb", buffering=0) as f:
                while remaining:
                    n = f.readinto(view[: min(CHUNK, remaining)])
                    if not n:
                        raise ArchiveError(f"{e.path}: file shrank while being archived")
                    w.write(view[:n])
                    remaining -= n
        content += e.size
        pad = (-e.size) % tarfile.BLOCKSIZE
        if pad:
            w.write(bytes(pad))
    # end of archive: two zero blocks, padded to a full record as GNU tar and Go do not; Docker
    # writes just the two blocks (Go archive/tar), and so do we.
    w.write(bytes(2 * tarfile.BLOCKSIZE))
    return LayerDigest(w.digest, w.n, content)


def read_xattrs(path: str) -> tuple[tuple[str, bytes], ...]:
    """The xattrs a layer keeps for ``path`` (``user.*`` but overlayfs' own, file capabilities), sorted."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    out = []
    for name in sorted(names):
        if name.startswith(("user.", "security.capability")) and not name.startswith("user.overlay."):
            try:
                out.append((name, os.getxattr(path, name, follow_symlinks=False)))
            except OSError:
                pass
    return tuple(out)


def entry_from_stat(path: str, rel: str, st: os.stat_result, uid: int, gid: int, *, mode: int | None = None,
                    xattrs: bool = False) -> Entry | None:
    """The entry for the host file ``path`` (lstat ``st``) as ``rel``; None for a socket (Docker skips them).

    ``mode`` replaces the permission bits of everything but a symlink; ``xattrs`` reads a file's or a
    directory's (:func:`read_xattrs`).
    """
    perm = stat.S_IMODE(st.st_mode) if mode is None else mode
    mtime = int(st.st_mtime)
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFDIR:
        return Entry(rel, "dir", perm, uid, gid, mtime, xattrs=read_xattrs(path) if xattrs else ())
    if fmt == stat.S_IFREG:
        return Entry(rel, "file", perm, uid, gid, mtime, st.st_size, source=path,
                     xattrs=read_xattrs(path) if xattrs else ())
    if fmt == stat.S_IFLNK:
        return Entry(rel, "symlink", stat.S_IMODE(st.st_mode), uid, gid, mtime, linkname=os.readlink(path))
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        return Entry(rel, "char" if fmt == stat.S_IFCHR else "block", perm, uid, gid, mtime,
                     devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev))
    if fmt == stat.S_IFIFO:
        return Entry(rel, "fifo", perm, uid, gid, mtime)
    return None


def normal_owner(uid: int, gid: int) -> tuple[int, int]:
    """Default owner mapping for trees taken from the host: everything belongs to root."""
    return 0, 0


def scan_tree(root: str | os.PathLike[str], *, owner: Owner = normal_owner, prefix: str = "",
              xattrs: bool = True) -> Iterator[Entry]:
    """Entries for every path under ``root`` (not ``root`` itself), parents first, names sorted.

    Hard links inside the tree become ``hardlink`` entries to the first path seen.
    """
    seen_inodes: dict[tuple[int, int], str] = {}

    def walk(dir_path: str, rel: str) -> Iterator[Entry]:
        with os.scandir(dir_path) as it:
            items = sorted(it, key=lambda d: d.name)
        for d in items:
            rp = f"{rel}{d.name}"
            st = d.stat(follow_symlinks=False)
            uid, gid = owner(st.st_uid, st.st_gid)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen_inodes:
                    yield Entry(rp, "hardlink", stat.S_IMODE(st.st_mode), uid, gid, int(st.st_mtime),
                                linkname=seen_inodes[key])
                    continue
                seen_inodes[key] = rp
            entry = entry_from_stat(d.path, rp, st, uid, gid, xattrs=xattrs)
            if entry is not None:
                yield entry
            if stat.S_ISDIR(st.st_mode):
                yield from walk(d.path, rp + "/")

    yield from walk(os.fspath(root), prefix)


def tar_directory(root: str | os.PathLike[str], out: BinaryIO | None, *, epoch: int | None = None,
                  owner: Owner = normal_owner) -> LayerDigest:
    """Write the tree under ``root`` as a reproducible layer tar."""
    return write_tar(scan_tree(root, owner=owner), out, epoch=epoch)


# --- reading -------------------------------------------------------------------------------

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


def detect_compression(head: bytes) -> str | None:
    """The compression a stream starts with (``gzip``, ``bzip2``, ``xz``, ``zstd``) or None."""
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


class _Peekable(io.RawIOBase):
    def __init__(self, raw: BinaryIO, head: bytes) -> None:
        self.raw, self.head = raw, head

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        return n


def decompressed(stream: BinaryIO) -> BinaryIO:
    """Wrap ``stream`` so that reads return uncompressed bytes, whatever the compression."""
    head = stream.read(6)
    kind = detect_compression(head)
    raw: BinaryIO = io.BufferedReader(_Peekable(stream, head), CHUNK)  # type: ignore[arg-type]
    if kind is None:
        return raw
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        import bz2
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if kind == "xz":
        import lzma
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    raise ArchiveError("zstd-compressed layers are not supported")


def is_whiteout(name: str) -> bool:
    """Whether a tar member name is a whiteout (plain or opaque)."""
    return os.path.basename(name.rstrip("/")).startswith(WHITEOUT_PREFIX)


def measure_tar(stream: BinaryIO) -> LayerDigest:
    """DiffID, tar size and Docker's content size of an uncompressed tar stream.

    The stream is read once; the tar structure is checked (a truncated tar raises ArchiveError).
    """
    w = _HashingWriter(None)

    class _Tee(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b):  # type: ignore[override]
            data = stream.read(len(b))
            w.write(data)
            b[: len(data)] = data
            return len(data)

    import tarfile

    content = 0
    tee = io.BufferedReader(_Tee(), CHUNK)
    try:
        with tarfile.open(fileobj=tee, mode="r|", errorlevel=2) as tf:
            for ti in tf:
                if ti.isreg():
                    content += ti.size
    except (tarfile.TarError, EOFError) as e:
        raise ArchiveError(f"invalid tar archive: {e}") from None
    while tee.read(CHUNK):  # hash trailing padding too
        pass
    return LayerDigest(w.digest, w.n, content)


def gzip_stream(src: BinaryIO, out: BinaryIO, level: int = 6) -> tuple[str, int]:
    """Gzip ``src`` into ``out`` reproducibly (header mtime 0, no name); return digest and size."""
    w = _HashingWriter(out)
    # gzip header: magic, deflate, no flags, mtime 0, xfl 0, OS 255 (unknown) as Go writes it
    w.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
    comp = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc, n = 0, 0
    while chunk := src.read(CHUNK):
        crc = zlib.crc32(chunk, crc)
        n += len(chunk)
        w.write(comp.compress(chunk))
    w.write(comp.flush())
    w.write(crc.to_bytes(4, "little") + (n & 0xFFFFFFFF).to_bytes(4, "little"))
    return w.digest, w.n

