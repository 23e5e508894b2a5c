"""Where COPY/ADD take files from (the build context, or an image for ``COPY --from``), Docker's
cache keys for them, and the layer entries a COPY writes.

Docker's classic builder keys a COPY step by a hash of its sources: for each file, sha256 over a
tarsum-v1 header (name, mode with file-type bits, uid, gid, size, type, link target, user and
group names -- empty, as dockerd leaves them --, device numbers, ``security.capability``; *not*
the mtime) followed by the content; a directory is ``dir:`` + sha256 of its entries' sorted hashes
joined by ``,``; several sources are ``multi:``. The CLI sends the context owned by root, so
uid/gid are 0. LayerLab computes the same keys, so its ``COPY file:<hash>`` history lines equal
Docker's (checked against dockerd 20.10 by the integration tests).

Docker's rules reproduced here (moby ``builder/dockerfile/copy.go``, 20.10):

* a source that is a symbolic link is followed inside the tree (its content is copied, under the
  source's own name); links *inside* a copied directory are copied as links;
* a directory source copies its contents, not itself; several sources (after wildcard expansion)
  need a destination ending in ``/``;
* a file goes to ``dest/<name>`` when ``dest`` ends in ``/`` or is an existing directory of the image,
  else to ``dest``; a relative ``dest`` is relative to WORKDIR;
* new files and new parent directories belong to root (or ``--chown``, whose names are looked up in
  the image's own ``/etc/passwd`` and ``/etc/group``); ``COPY --from`` keeps the owners it finds;
* ``ADD`` of a local tar archive (plain or compressed) extracts it into ``dest``;
* the Dockerfile and ``.dockerignore`` are part of the context unless ``.dockerignore`` excludes them.

Only the files a COPY names are hashed, and each at most once per build.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from pathlib import Path
from collections.abc import Iterator, Sequence

from .digest import CHUNK
from .dockerignore import DockerIgnore, clean_path, walk_context_entries
from .errors import BuildError
from .layer import Entry, Owner, entry_from_stat
from .values import field, value

_TYPE_BITS = {stat.S_IFREG: 0o100000, stat.S_IFDIR: 0o40000, stat.S_IFLNK: 0o120000, stat.S_IFCHR: 0o20000,
              stat.S_IFBLK: 0o60000, stat.S_IFIFO: 0o10000, stat.S_IFSOCK: 0o140000}
_TYPE_FLAG = {stat.S_IFREG: "0", stat.S_IFDIR: "5", stat.S_IFLNK: "2", stat.S_IFCHR: "3", stat.S_IFBLK: "4",
              stat.S_IFIFO: "6"}
_MAX_SYMLINKS = 255
_HASHES: dict[tuple, str] = {}   # context file hashes by (path, name, inode, size, mtime, ctime, mode)
_HASHES_MAX = 200_000


def tarsum_v1_header(name: str, st: os.stat_result, link: str, capability: bytes | None,
                     uid: int = 0, gid: int = 0, uname: str = "", gname: str = "") -> bytes:
    """The tarsum v1 header Docker hashes before a file's content (mtime excluded).

    The context's files come from the CLI's tar (no user names); an image's files are described by
    Go's ``tar.FileInfoHeader`` on the daemon's host, which looks the names up there.
    """
    fmt = stat.S_IFMT(st.st_mode)
    mode = stat.S_IMODE(st.st_mode)
    go_mode = (mode & 0o777) | (0o4000 if mode & stat.S_ISUID else 0) | (0o2000 if mode & stat.S_ISGID else 0) \
        | (0o1000 if mode & stat.S_ISVTX else 0) | _TYPE_BITS.get(fmt, 0)
    is_dir = fmt == stat.S_IFDIR
    size = st.st_size if fmt == stat.S_IFREG else 0
    major = os.major(st.st_rdev) if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0
    minor = os.minor(st.st_rdev) if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0
    fields = [("name", name + "/" if is_dir and not name.endswith("/") else name), ("mode", str(go_mode)),
              ("uid", str(uid)), ("gid", str(gid)), ("size", str(size)), ("typeflag", _TYPE_FLAG.get(fmt, "0")),
              ("linkname", link), ("uname", uname), ("gname", gname), ("devmajor", str(major)),
              ("devminor", str(minor))]
    if capability is not None:
        fields.append(("security.capability", capability.decode("latin-1")))
    return "".join(k + v for k, v in fields).encode("utf-8", "surrogateescape")


def go_match(pattern: str, path: str) -> bool:
    """Go's ``filepath.Match``: wildcards never cross a ``/``."""
    parts, names = pattern.split("/"), path.split("/")
    return len(parts) == len(names) and all(fnmatch.fnmatchcase(n, p) for p, n in zip(parts, names))


def has_wildcards(path: str) -> bool:
    return any(c in path for c in "*?[")


def sources_hash(hashes: list[str]) -> str:
    """Docker's key for the sources of one COPY: the single hash, or ``multi:`` over all of them."""
    if len(hashes) == 1:
        return hashes[0]
    return "multi:" + hashlib.sha256(",".join(hashes).encode()).hexdigest()


@value
class Source:
    """One COPY source: ``rel`` is the path with symlinks followed, ``name`` the name it is copied as."""

    rel: str
    name: str


# --- trees: the context, an image ---------------------------------------------------------------

class SourceTree:
    """Files COPY can read: relative paths, ``.`` for the root, symlinks resolved inside the tree."""

    root_label = "build context"

    def __init__(self) -> None:
        self._sums: dict[str, str] = {}
        self._walk: list[str] | None = None

    # what a concrete tree provides
    def lstat(self, rel: str) -> os.stat_result | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def host_path(self, rel: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _walk_all(self) -> Iterator[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def owner(self, st: os.stat_result) -> tuple[int, int]:
        return 0, 0

    def names(self, uid: int, gid: int) -> tuple[str, str]:
        """User and group names in the hash header (none for the context)."""
        return "", ""

    # shared logic
    def files(self) -> list[str]:
        """Every path of the tree (directories included) in ``filepath.Walk`` order."""
        if self._walk is None:
            self._walk = list(self._walk_all())
        return self._walk

    def below(self, rel: str) -> list[str]:
        """Paths under directory ``rel`` (not ``rel`` itself), in walk order."""
        if rel == ".":
            return self.files()
        prefix = rel + "/"
        return [p for p in self.files() if p.startswith(prefix)]

    def follow(self, rel: str) -> str:
        """``rel`` with every symbolic link resolved, never leaving the tree (FollowSymlinkInScope)."""
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/".join(done + [part])
            st = self.lstat(candidate)
            if st is not None and stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise BuildError(f"too many links in {rel}")
                target = os.readlink(self.host_path(candidate))
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            done.append(part)
        return "/".join(done) or "."

    def hash(self, rel: str) -> str:
        """Docker's tarsum-v1 hash of one path (hex)."""
        cached = self._sums.get(rel)
        if cached is not None:
            return cached
        path = self.host_path(rel)
        st = self.lstat(rel) or os.lstat(path)
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        try:
            cap = os.getxattr(path, "security.capability", follow_symlinks=False)
        except OSError:
            cap = None
        uid, gid = self.owner(st)
        h = hashlib.sha256(tarsum_v1_header(rel, st, link, cap, uid, gid, *self.names(uid, gid)))
        if stat.S_ISREG(st.st_mode) and st.st_size:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        self._sums[rel] = h.hexdigest()
        return self._sums[rel]

    def source_hash(self, rel: str) -> str:
        """``file:<hash>`` for a file, ``dir:<hash>`` for a directory (Docker's copyInfo hash)."""
        st = self.lstat(rel) if rel != "." else None
        if rel != "." and (st is None or not stat.S_ISDIR(st.st_mode)):
            return "file:" + self.hash(rel)
        # filepath.Walk visits the directory itself first (the context root excepted)
        # and Hash() follows a symlink to the file it names
        subs = sorted(self._hash_followed(p) for p in ([] if rel == "." else [rel]) + self.below(rel))
        return "dir:" + hashlib.sha256(",".join(subs).encode()).hexdigest()

    def _hash_followed(self, rel: str) -> str:
        st = self.lstat(rel)
        if st is not None and stat.S_ISLNK(st.st_mode):
            target = self.follow(rel)
            if target == "." or self.lstat(target) is None:
                return rel  # Docker: a path without a sum hashes as itself
            return self.hash(target)
        return self.hash(rel)

    def is_dir(self, rel: str) -> bool:
        if rel == ".":
            return True
        st = self.lstat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def sources(self, source: str, instruction: str) -> list[Source]:
        """What one COPY/ADD source names (wildcards expanded, links followed), or Docker's error."""
        rel = clean_path(source.lstrip("/")) if source not in ("", "/") else "."
        if rel == ".." or rel.startswith("../"):
            raise BuildError(f"{instruction} failed: forbidden path outside the {self.root_label}: {source} ()")
        if has_wildcards(rel):
            matches = [p for p in self.files() if go_match(rel, p)]
            if not matches:
                raise BuildError(f"{instruction} failed: no source files were specified")
            return [Source(self.follow(p), p.rsplit("/", 1)[-1]) for p in matches]
        if rel == ".":
            return [Source(".", ".")]
        followed = self.follow(rel)
        if followed != "." and self.lstat(followed) is None:
            raise BuildError(self.not_found(source, instruction))
        return [Source(followed, rel.rsplit("/", 1)[-1])]

    def not_found(self, source: str, instruction: str) -> str:
        return (f"{instruction} failed: file not found in build context or excluded by .dockerignore: "
                f"stat {source}: file does not exist")


@value(frozen=False)
class BuildContext(SourceTree):
    """The context directory of a build (or none), filtered by ``.dockerignore``."""

    root: Path | None
    ignore: DockerIgnore = field(default_factory=DockerIgnore)

    def __post_init__(self) -> None:
        SourceTree.__init__(self)
        self._lstats: dict[str, os.stat_result | None] = {}

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

    def _walk_all(self) -> Iterator[str]:
        """``walk_context``'s walk, keeping each entry's lstat (one system call per path)."""
        if self.root is None:
            return
        for path, entry in walk_context_entries(self.root, self.ignore):
            try:
                self._lstats[path] = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            yield path

    def excluded(self, rel: str) -> bool:
        return self.ignore.excluded(rel) if self.root else True

    def host_path(self, rel: str) -> str:
        assert self.root is not None
        return str(self.root) if rel == "." else os.path.join(self.root, rel)

    def lstat(self, rel: str) -> os.stat_result | None:
        """lstat of a path the context holds (None when absent or excluded by .dockerignore)."""
        if rel in self._lstats:
            return self._lstats[rel]
        st: os.stat_result | None = None
        if self.root is not None and not self.excluded(rel):
            try:
                st = os.lstat(self.host_path(rel))
            except (FileNotFoundError, NotADirectoryError):
                st = None
        self._lstats[rel] = st
        return st

    def hash(self, rel: str) -> str:
        """The tarsum hash, remembered for the life of the process while the file's inode, size,
        mtime and ctime stay the same (a notebook rebuilding the same context hashes nothing new)."""
        st = self.lstat(rel)
        if st is None:
            return super().hash(rel)
        key = (self.host_path(rel), rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
               st.st_mode)
        cached = _HASHES.get(key)
        if cached is None:
            cached = super().hash(rel)
            if len(_HASHES) >= _HASHES_MAX:
                _HASHES.clear()
            _HASHES[key] = cached
        return cached

    def sources(self, source: str, instruction: str) -> list[Source]:
        if self.root is None:
            raise BuildError(f"{instruction} failed: no build context: pass a context directory to copy {source}")
        return super().sources(source, instruction)

    def tar_size(self, dockerfile_name: str | None = None, dockerfile_text: str | None = None) -> int:
        """Bytes of the context tar Docker's CLI would send (``Sending build context``)."""
        total = 1024  # end-of-archive blocks
        seen = set()
        for rel in self.files():
            seen.add(rel)
            st = self._lstats[rel]
            total += 512 + _long_name_cost(rel, stat.S_ISDIR(st.st_mode))
            if stat.S_ISREG(st.st_mode):
                total += -(-st.st_size // 512) * 512
        if dockerfile_text is not None and (dockerfile_name or "Dockerfile") not in seen:
            total += 512 + -(-len(dockerfile_text.encode()) // 512) * 512
        return total


class ImageTree(SourceTree):
    """An image's merged file system (its layer snapshots, top first) as a COPY source or target."""

    root_label = "image"

    def __init__(self, layers: Sequence[str], owner: Owner | None = None) -> None:
        from .runtime.layerview import LayerStack

        super().__init__()
        self.layers = list(layers)
        self.view = LayerStack(self.layers)
        self._owner = owner or (lambda uid, gid: (uid, gid))
        self._located: dict[str, str | None] = {}

    def locate(self, rel: str) -> str | None:
        """The host path holding ``rel`` in the merged view, or None."""
        if rel in self._located:
            return self._located[rel]
        path: str | None = None
        if rel in ("", "."):
            path = self.layers[0] if self.layers else None
        elif self.view.lookup(rel) is not None:
            for layer in self.layers:
                candidate = os.path.join(layer, rel)
                if os.path.lexists(candidate):
                    path = candidate
                    break
        self._located[rel] = path
        return path

    def lstat(self, rel: str) -> os.stat_result | None:
        if not self.layers:
            return None
        return self.view.lookup(rel) if rel not in ("", ".") else os.lstat(self.layers[0])

    def host_path(self, rel: str) -> str:
        path = self.locate(rel)
        if path is None:
            raise BuildError(f"stat /{rel}: file does not exist")
        return path

    def owner(self, st: os.stat_result) -> tuple[int, int]:
        return self._owner(st.st_uid, st.st_gid)

    def names(self, uid: int, gid: int) -> tuple[str, str]:
        return _host_user(uid), _host_group(gid)

    def _walk_all(self) -> Iterator[str]:
        def walk(rel: str) -> Iterator[str]:
            for name in self.view.listdir(rel):
                child = f"{rel}/{name}" if rel else name
                yield child
                st = self.view.lookup(child)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    yield from walk(child)
        return walk("") if self.layers else iter(())

    def below(self, rel: str) -> list[str]:
        if rel == "." or self._walk is not None:
            return super().below(rel)
        out: list[str] = []

        def walk(d: str) -> None:
            for name in self.view.listdir(d):
                child = f"{d}/{name}"
                out.append(child)
                st = self.view.lookup(child)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    walk(child)
        walk(rel)
        return out

    def not_found(self, source: str, instruction: str) -> str:
        return f"{instruction} failed: stat {source}: file does not exist"


def _host_user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def _host_group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


# --- what a COPY writes ---------------------------------------------------------------------------

def is_archive(path: str) -> bool:
    """Docker's ``isArchivePath``: a (possibly compressed) tar whose first header reads."""
    import tarfile  # only for ADD sources

    try:
        with tarfile.open(path, "r:*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False


class CopyWriter:
    """Collects the entries of one COPY/ADD layer over an image (``target``: its merged view)."""

    def __init__(self, target: ImageTree, owner: tuple[int, int] | None, mode: int | None) -> None:
        self.target = target
        self.owner = owner            # --chown ids (None: root for context files, kept for --from)
        self.mode = mode              # --chmod
        self.entries: dict[str, Entry] = {}

    def resolve_dest(self, path: str) -> str:
        """An absolute container path with the image's symlinks in its directories followed."""
        rel = clean_path(path).lstrip("/")
        if not rel or rel == ".":
            return ""
        head, _, last = rel.rpartition("/")
        parent = self.target.follow(head) if head else "."
        parent = "" if parent == "." else parent
        return f"{parent}/{last}" if parent else last

    def _ancestors(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        for i in range(len(parts)):
            p = "/".join(parts[: i + 1])
            if p in self.entries:
                continue
            st = self.target.lstat(p)
            if st is not None and stat.S_ISDIR(st.st_mode):
                uid, gid = self.target.owner(st)
                self.entries[p] = Entry(p, "dir", stat.S_IMODE(st.st_mode), uid, gid, int(st.st_mtime))
            else:
                uid, gid = self.owner or (0, 0)
                self.entries[p] = Entry(p, "dir", 0o755, uid, gid, 0)

    def add_dir(self, rel: str) -> None:
        """A new directory (and its missing parents), 0755."""
        self._ancestors(rel)
        uid, gid = self.owner or (0, 0)
        self.entries[rel] = Entry(rel, "dir", 0o755, uid, gid, 0)

    def exists_as_dir(self, rel: str) -> bool:
        e = self.entries.get(rel)
        if e is not None:
            return e.kind == "dir"
        return rel == "" or self.target.is_dir(rel)

    def add(self, rel: str, tree: SourceTree, src_rel: str, *, keep_owner: bool) -> None:
        path = tree.host_path(src_rel)
        st = os.lstat(path)
        if keep_owner and self.owner is None:
            uid, gid = tree.owner(st)
        else:
            uid, gid = self.owner or (0, 0)
        entry = entry_from_stat(path, rel, st, uid, gid, mode=self.mode)
        if entry is not None:
            self._ancestors(rel)
            self.entries[rel] = entry

    def add_file(self, dest: str, dest_is_dir: bool, tree: SourceTree, source: Source, *, keep_owner: bool) -> None:
        rel = self.resolve_dest(dest)
        if dest_is_dir or self.exists_as_dir(rel):
            rel = f"{rel}/{source.name}" if rel else source.name
        self.add(rel, tree, source.rel, keep_owner=keep_owner)

    def add_directory(self, dest: str, tree: SourceTree, source: Source, *, keep_owner: bool) -> None:
        root = self.resolve_dest(dest)
        if root and not self.exists_as_dir(root):
            st = tree.lstat(source.rel) if source.rel != "." else os.lstat(tree.host_path("."))
            uid, gid = self.owner or ((tree.owner(st) if keep_owner and st else (0, 0)))
            mode = self.mode if self.mode is not None else (stat.S_IMODE(st.st_mode) if st else 0o755)
            self._ancestors(root)
            self.entries[root] = Entry(root, "dir", mode, uid, gid, int(st.st_mtime) if st else 0)
        cut = 0 if source.rel == "." else len(source.rel) + 1
        for sub in tree.below(source.rel):
            rel = f"{root}/{sub[cut:]}" if root else sub[cut:]
            self.add(rel, tree, sub, keep_owner=keep_owner)

    def add_archive(self, dest: str, extracted: str) -> None:
        """Entries for an archive already extracted (safely) into the host directory ``extracted``."""
        from .layer import scan_tree
        from .runtime.commit import owner_map

        root = self.resolve_dest(dest)
        if root and not self.exists_as_dir(root):
            self._ancestors(root)
            self.entries[root] = Entry(root, "dir", 0o755, *(self.owner or (0, 0)), 0)
        for entry in scan_tree(extracted, owner=owner_map(), prefix=f"{root}/" if root else "", xattrs=False):
            if entry.kind == "hardlink":
                entry = Entry(entry.path, "hardlink", entry.mode, entry.uid, entry.gid, entry.mtime,
                              linkname=f"{root}/{entry.linkname}" if root and not entry.linkname.startswith(root + "/")
                              else entry.linkname)
            self._ancestors(entry.path)
            self.entries[entry.path] = entry

    def add_data(self, dest: str, dest_is_dir: bool, name: str, data: bytes) -> None:
        rel = self.resolve_dest(dest)
        if dest_is_dir or self.exists_as_dir(rel):
            rel = f"{rel}/{name}" if rel else name
        self._ancestors(rel)
        uid, gid = self.owner or (0, 0)
        self.entries[rel] = Entry(rel, "file", self.mode if self.mode is not None else 0o644, uid, gid, 0,
                                  len(data), data=data)

    def sorted_entries(self) -> list[Entry]:
        return [self.entries[p] for p in sorted(self.entries, key=lambda p: p.split("/"))]


def lookup_ids(spec: str, target: ImageTree) -> tuple[int, int]:
    """``--chown=user[:group]`` as Docker's ``parseChownFlag``: names from the image's passwd/group
    files, numbers as they are, the user's spec reused for the group when none is given."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise BuildError("invalid chown string format: " + spec)
    user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    prefix = "unable to convert uid/gid chown string to host mapping: "

    def lookup(name: str, file: str, what: str) -> int:
        if name.isdigit():
            return int(name)
        rel = target.follow(f"etc/{file}")
        st = target.lstat(rel)
        if st is None or not stat.S_ISREG(st.st_mode):
            raise BuildError(f"{prefix}can't find {'uid' if what == 'user' else 'gid'} for {what} {name}: "
                             f"open /etc/{file}: no such file or directory")
        with open(target.host_path(rel), encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                    return int(fields[2])
        raise BuildError(f"{prefix}can't find {'uid' if what == 'user' else 'gid'} for {what} {name}: "
                         f"no such {what}: {name}")

    return lookup(user, "passwd", "user"), lookup(group, "group", "group")


def _long_name_cost(rel: str, is_dir: bool) -> int:
    name = rel + "/" if is_dir else rel
    if len(name.encode()) <= 100:
        return 0
    return 512 + -(-(len(name.encode()) + 20) // 512) * 512  # a PAX record for the long name
