"""A build context: the files a Dockerfile may COPY/ADD, with Docker's cache keys for them.

Docker's classic builder keys a COPY step by a hash of its sources: for each file, sha256 over a
tarsum-v1 header (name, mode with file-type bits, uid, gid, size, type, link target, user and group
names, device numbers, ``security.capability``; *not* the mtime) followed by the content; a
directory is ``dir:`` + sha256 of its entries' sorted hashes joined by ``,``; several sources are
``multi:``. The CLI sends the context owned by root, so uid/gid are 0 and names ``root``. LayerLab
computes the same keys, so its ``COPY file:<hash>`` history lines equal Docker's.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .digest import CHUNK
from .dockerignore import DockerIgnore, walk_context
from .errors import BuildError

_TYPE_BITS = {stat.S_IFREG: 0o100000, stat.S_IFDIR: 0o40000, stat.S_IFLNK: 0o120000, stat.S_IFCHR: 0o20000,
              stat.S_IFBLK: 0o60000, stat.S_IFIFO: 0o10000, stat.S_IFSOCK: 0o140000}
_TYPE_FLAG = {stat.S_IFREG: "0", stat.S_IFDIR: "5", stat.S_IFLNK: "2", stat.S_IFCHR: "3", stat.S_IFBLK: "4",
              stat.S_IFIFO: "6"}


def tarsum_v1_header(name: str, st: os.stat_result, link: str, capability: bytes | None) -> bytes:
    """The tarsum v1 header Docker hashes before a file's content (mtime excluded)."""
    fmt = stat.S_IFMT(st.st_mode)
    mode = stat.S_IMODE(st.st_mode)
    go_mode = (mode & 0o777) | (0o4000 if mode & stat.S_ISUID else 0) | (0o2000 if mode & stat.S_ISGID else 0) \
        | (0o1000 if mode & stat.S_ISVTX else 0) | _TYPE_BITS.get(fmt, 0)
    is_dir = fmt == stat.S_IFDIR
    size = st.st_size if fmt == stat.S_IFREG else 0
    major = os.major(st.st_rdev) if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0
    minor = os.minor(st.st_rdev) if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0
    fields = [("name", name + "/" if is_dir and not name.endswith("/") else name), ("mode", str(go_mode)),
              ("uid", "0"), ("gid", "0"), ("size", str(size)), ("typeflag", _TYPE_FLAG.get(fmt, "0")),
              ("linkname", link), ("uname", "root"), ("gname", "root"), ("devmajor", str(major)),
              ("devminor", str(minor))]
    if capability is not None:
        fields.append(("security.capability", capability.decode("latin-1")))
    return "".join(k + v for k, v in fields).encode("utf-8", "surrogateescape")


@dataclass
class BuildContext:
    """The context directory of a build (or none), filtered by ``.dockerignore``."""

    root: Path | None
    ignore: DockerIgnore = field(default_factory=DockerIgnore)
    _sums: dict[str, str] = field(default_factory=dict)
    _files: list[str] | None = None

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None) -> "BuildContext":
        if root is None:
            return cls(None)
        path = Path(root)
        if not path.is_dir():
            raise BuildError(f"unable to prepare context: path \"{root}\" not found")
        ignore_file = path / ".dockerignore"
        ignore = DockerIgnore.from_file(ignore_file) if ignore_file.exists() else DockerIgnore()
        return cls(path.resolve(), ignore)

    def files(self) -> list[str]:
        """Relative paths in the context (dirs included), as Docker's walk sends them."""
        if self._files is None:
            self._files = list(walk_context(self.root, self.ignore)) if self.root else []
        return self._files

    def tar_size(self, dockerfile_name: str | None = None, dockerfile_text: str | None = None) -> int:
        """Bytes of the context tar Docker's CLI would send (``Sending build context``)."""
        total = 1024  # end-of-archive blocks
        seen = set()
        for rel in self.files():
            seen.add(rel)
            st = os.lstat(self.root / rel)  # type: ignore[operator]
            total += 512 + _long_name_cost(rel, stat.S_ISDIR(st.st_mode))
            if stat.S_ISREG(st.st_mode):
                total += -(-st.st_size // 512) * 512
        if dockerfile_text is not None and (dockerfile_name or "Dockerfile") not in seen:
            total += 512 + -(-len(dockerfile_text.encode()) // 512) * 512
        return total

    def excluded(self, rel: str) -> bool:
        return self.ignore.excluded(rel) if self.root else True

    def _path(self, rel: str) -> Path:
        assert self.root is not None
        return self.root / rel

    def hash(self, rel: str) -> str:
        """Docker's tarsum-v1 content hash of one context path (hex)."""
        if rel in self._sums:
            return self._sums[rel]
        path = self._path(rel)
        st = os.lstat(path)
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        try:
            cap = os.getxattr(path, "security.capability", follow_symlinks=False)
        except OSError:
            cap = None
        h = hashlib.sha256(tarsum_v1_header(rel, st, link, cap))
        if stat.S_ISREG(st.st_mode) and st.st_size:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        self._sums[rel] = h.hexdigest()
        return self._sums[rel]

    def source_hash(self, rel: str) -> str:
        """``file:<hash>`` for a file, ``dir:<hash>`` for a directory (Docker's copyInfo hash)."""
        path = self._path(rel)
        if not path.is_dir() or path.is_symlink():
            return "file:" + self.hash(rel)
        prefix = rel.rstrip("/") + "/" if rel not in ("", ".") else ""
        subs = sorted(self.hash(p) for p in self.files() if p.startswith(prefix) or (not prefix))
        return "dir:" + hashlib.sha256(",".join(subs).encode()).hexdigest()

    def resolve(self, source: str, instruction: str) -> list[str]:
        """Context-relative paths a COPY/ADD source names (wildcards expanded), or Docker's error."""
        if self.root is None:
            raise BuildError(f"{instruction} failed: no build context: pass a context directory to copy {source}")
        rel = os.path.normpath(source.lstrip("/")) if source not in ("", ".", "/") else "."
        if rel.startswith(".."):
            raise BuildError(f"{instruction} failed: forbidden path outside the build context: {source} ()")
        if any(c in rel for c in "*?["):
            matches = [p for p in self.files() if go_match(rel, p)]
            if not matches:
                raise BuildError(f"{instruction} failed: no source files were specified")
            return matches
        if rel != "." and (not os.path.lexists(self._path(rel)) or self.excluded(rel)):
            raise BuildError(f"{instruction} failed: file not found in build context or excluded by "
                             f".dockerignore: stat {source}: file does not exist")
        return [rel]


def go_match(pattern: str, path: str) -> bool:
    """Go's ``filepath.Match``: wildcards never cross a ``/``."""
    parts, names = pattern.split("/"), path.split("/")
    return len(parts) == len(names) and all(fnmatch.fnmatchcase(n, p) for p, n in zip(parts, names))


def _long_name_cost(rel: str, is_dir: bool) -> int:
    name = rel + "/" if is_dir else rel
    if len(name.encode()) <= 100:
        return 0
    return 512 + -(-(len(name.encode()) + 20) // 512) * 512  # a PAX record for the long name


def sources_hash(hashes: list[str]) -> str:
    """Docker's key for the sources of one COPY: the single hash, or ``multi:`` over all of them."""
    if len(hashes) == 1:
        return hashes[0]
    return "multi:" + hashlib.sha256(",".join(hashes).encode()).hexdigest()
