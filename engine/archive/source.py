"""Reading an archive safely, by entry name: a tar staged once into private files, or a layout directory.

Names are checked (no absolute paths, no ``..``), links inside a tar are resolved by name and never
on disk, symlinks in a layout directory are refused, JSON members are read with a 16 MiB cap, and
blobs are checked against the digests that name or describe them.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

from ..digest import CHUNK, is_digest, sha256_stream
from ..errors import ArchiveError, DigestMismatch
from ..layer import decompressed
from ..spec import Descriptor
from .layout import blob_name
from ..values import field, value

MAX_JSON = 16 << 20
_MAX_LINK_HOPS = 16


class ArchiveDigestMismatch(ArchiveError, DigestMismatch):
    """An archive entry's content does not match the digest it is named or described by."""


def clean(name: str, what: str = "archive entry", *, allow_root: bool = False) -> str:
    """A relative archive path without ``.`` parts; absolute paths and ``..`` are refused."""
    if not isinstance(name, str) or "\x00" in name:
        raise ArchiveError(f"{what} {name!r}: invalid name")
    if name.startswith("/"):
        raise ArchiveError(f"{what} {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{what} {name!r}: path escapes the archive")
    if not parts and not allow_root:
        raise ArchiveError(f"{what} {name!r}: invalid name")
    return "/".join(parts)


class Source:
    """Regular files of an archive, by name; a name that is missing or not allowed raises ArchiveError."""

    def _locate(self, name: str) -> object:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        try:
            self._locate(name)
            return True
        except ArchiveError:
            return False

    def open(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def digest(self, name: str) -> str:
        raise NotImplementedError

    def head(self, name: str) -> bytes:
        raise NotImplementedError


@value
class _Member:
    path: Path
    size: int
    digest: str
    head: bytes


@value(frozen=False)
class _StagedTar(Source):
    """Regular members of a tar copied to a private directory; links kept as names."""

    members: dict[str, _Member] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def _locate(self, name: str) -> _Member:
        current = name
        for _ in range(_MAX_LINK_HOPS):
            if current in self.members:
                return self.members[current]
            if current not in self.links:
                raise ArchiveError(f"archive entry {name!r} not found")
            current = self.links[current]
        raise ArchiveError(f"archive entry {name!r}: too many levels of links")

    def open(self, name: str) -> BinaryIO:
        return open(self._locate(name).path, "rb")

    def size(self, name: str) -> int:
        return self._locate(name).size

    def digest(self, name: str) -> str:
        return self._locate(name).digest

    def head(self, name: str) -> bytes:
        return self._locate(name).head


def _stage_member(tf: tarfile.TarFile, ti: tarfile.TarInfo, path: Path) -> _Member:
    src = tf.extractfile(ti)
    assert src is not None
    h = hashlib.sha256()
    head = b""
    size = 0
    with open(path, "xb") as f:
        while chunk := src.read(CHUNK):
            if len(head) < 8:
                head += chunk[: 8 - len(head)]
            h.update(chunk)
            f.write(chunk)
            size += len(chunk)
    return _Member(path, size, "sha256:" + h.hexdigest(), head)


def _link_target(name: str, ti: tarfile.TarInfo) -> str:
    """Where a link member points, as an archive name; links leaving the archive are refused."""
    if ti.islnk():
        return clean(ti.linkname, f"hard link {ti.name!r} ->")
    if ti.linkname.startswith("/"):
        raise ArchiveError(f"archive entry {ti.name!r}: symlink to absolute path {ti.linkname!r}")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(name), ti.linkname))
    if target in (".", "..") or target.startswith("../"):
        raise ArchiveError(f"archive entry {ti.name!r}: symlink {ti.linkname!r} points outside the archive")
    return target


def stage_tar(stream: BinaryIO, workdir: Path) -> Source:
    """Read a (possibly compressed) tar once, keeping regular members as files in ``workdir``.

    Members are named by their position in the tar, never by their archive name.
    """
    staged = _StagedTar()
    try:
        with tarfile.open(fileobj=decompressed(stream), mode="r|", errorlevel=2) as tf:
            for i, ti in enumerate(tf):
                name = clean(ti.name, allow_root=ti.isdir())
                if ti.isdir():
                    continue
                if name in staged.members or name in staged.links:
                    raise ArchiveError(f"archive entry {ti.name!r} appears twice")
                if ti.isreg():
                    staged.members[name] = _stage_member(tf, ti, workdir / str(i))
                elif ti.issym() or ti.islnk():
                    staged.links[name] = _link_target(name, ti)
                else:
                    raise ArchiveError(f"archive entry {ti.name!r}: unsupported entry type")
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise ArchiveError(f"invalid archive: {e}") from None
    return staged


@value(frozen=False)
class LayoutDir(Source):
    """An archive already unpacked as a directory (an OCI layout); symlinks are refused."""

    root: Path
    _digests: dict[str, str] = field(default_factory=dict)

    def _locate(self, name: str) -> Path:
        path = self.root
        for part in name.split("/"):
            path = path / part
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                raise ArchiveError(f"layout entry {name!r} not found") from None
            if stat.S_ISLNK(st.st_mode):
                raise ArchiveError(f"layout entry {name!r}: symlinks are not allowed")
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError(f"layout entry {name!r} is not a regular file")
        return path

    def open(self, name: str) -> BinaryIO:
        fd = os.open(self._locate(name), os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")

    def size(self, name: str) -> int:
        return self._locate(name).stat().st_size

    def digest(self, name: str) -> str:
        if name not in self._digests:
            with self.open(name) as f:
                self._digests[name] = sha256_stream(f)[0]
        return self._digests[name]

    def head(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read(8)


def read_bytes(src: Source, name: str, what: str) -> bytes:
    """A small member (JSON), refused when larger than :data:`MAX_JSON`."""
    size = src.size(name)
    if size > MAX_JSON:
        raise ArchiveError(f"archive entry {name!r}: {what} is too large ({size} bytes, limit {MAX_JSON})")
    with src.open(name) as f:
        return f.read(MAX_JSON + 1)[:MAX_JSON]


def parse_json(data: bytes, name: str, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ArchiveError(f"archive entry {name!r}: invalid {what}: {e}") from None


def read_json(src: Source, name: str, what: str) -> Any:
    return parse_json(read_bytes(src, name, what), name, what)


def verify_digest(src: Source, name: str, expected: str) -> None:
    """Refuse member ``name`` unless its content has the digest ``expected``."""
    actual = src.digest(name)
    if actual != expected:
        raise ArchiveDigestMismatch(expected, actual, f"archive entry {name!r}")


def check_blob(src: Source, desc: Descriptor, what: str) -> str:
    """The archive name of a described blob, after checking its digest and size."""
    if not is_digest(desc.digest):
        raise ArchiveError(f"{what}: unsupported digest {desc.digest!r}")
    name = blob_name(desc.digest)
    if not src.exists(name):
        raise ArchiveError(f"{what}: blob {name!r} is missing from the archive")
    verify_digest(src, name, desc.digest)
    if src.size(name) != desc.size:
        raise ArchiveError(f"archive entry {name!r}: size {src.size(name)} differs from the descriptor's {desc.size}")
    return name
