"""Safe, fast extraction of one image layer tar into a directory.

``extract_layer(src, dest)`` streams an uncompressed or gzip layer tar (detected from its
magic bytes) into ``dest`` and returns counts of what it wrote::

    >>> stats = extract_layer("layer.tar.gz", "/tmp/rootfs")          # doctest: +SKIP
    >>> stats.files, stats.bytes                                       # doctest: +SKIP
    (812, 5242880)

Safety design. Nothing is ever written, chmod-ed, chown-ed, utime-d, linked or deleted outside
``dest``. Member names are normalised lexically (leading ``/`` and ``./`` dropped, ``a/../b``
folded to ``b``, as Docker does) and refused when they still climb above the root. Every
directory is reached by walking its components one by one from a descriptor of ``dest`` with
``openat(O_NOFOLLOW|O_DIRECTORY)``; all changes use the ``dir_fd=`` system calls on a single final
name, or a descriptor of the object itself. Symbolic links are therefore never followed: links
with any target (absolute ones too) are stored as they are, but an entry whose path goes
*through* a symlink is refused, even when that symlink points inside ``dest``. (Docker follows
such links inside a chroot, so a layer that writes below a lower layer's ``lib -> usr/lib`` link
is refused here.) Hard links must name an existing regular file inside ``dest``, found with the
same walk. Devices and FIFOs are refused unless running as real root (euid 0 in the initial
user namespace). Directories are created 0o700 and get their real modes (and mtimes) at the
end, deepest first, so a read-only directory never blocks the rest of the layer. Headers are
checked strictly: a truncated or corrupt header, or member data that ends early, raises
:class:`ArchiveError` naming the member; PAX or GNU long-name headers over 1 MiB are refused.
Refusals raise :class:`UnsafeArchive` naming the member; a failing system call while writing
(ENOSPC, EACCES...) is reported as :class:`ArchiveError` naming the member too.

When an error is raised ``dest`` may be partly written: callers extract into a temporary
directory and discard it on error. Refused entries never leave anything outside ``dest``.

Where this is stricter than Docker: a name that escapes after dropping the leading ``/`` is
refused (``/../x``; Docker reads it as ``/x``); writing below a symlink is refused (see above);
devices and FIFOs are refused rather than skipped when not real root; a hard link must name a
regular file; an empty name is refused unless it is a directory (tarfile reports ``/`` as ``""``).
Duplicates behave as in Docker: the last entry wins, replacing (never writing through) whatever
is there, except that two directories merge.

Reading uses ``tarfile`` in streaming mode (``r|``), so pipes and sockets work; member data is
copied in 1 MiB chunks straight from the tar stream, and directory descriptors are cached (LRU,
128 entries) so consecutive members do not re-walk their parents.

Whiteouts (OCI image-spec layer.md):

* ``whiteouts="apply"`` (stacking layers into one directory): ``.wh.<name>`` deletes ``<name>``
  and everything below it. ``.wh..wh..opq`` in a directory deletes, at the end of the layer, every
  child of it that this layer did not write, so entries may come before or after the marker.
  A whiteout only hides *lower* content: when it names something this layer itself writes, that
  entry stays and only older content below it is removed. ``.wh..wh.*`` aufs internals are skipped.
* ``whiteouts="overlay"`` (a per-layer snapshot for an overlayfs lowerdir): ``.wh.<name>``
  becomes the kernel's whiteout, a 0/0 character device (Linux >= 5.8 lets unprivileged users
  make those). When ``mknod`` is refused with EPERM it becomes a zero-size regular file with the
  xattr ``user.overlay.whiteout`` (kernel >= 6.7 "xwhiteouts", read by overlay mounts with
  ``-o userxattr``); its directory then gets ``user.overlay.whiteouts=y`` (the 6.7.0 marker) and
  ``user.overlay.opaque=x`` (the marker of 6.8 and later) unless it is opaque.
  ``.wh..wh..opq`` sets ``user.overlay.opaque=y`` on its directory, plus
  ``trusted.overlay.opaque=y`` as real root (EPERM ignored). A whiteout naming a directory this
  layer writes makes that directory opaque instead, as does a directory entry replacing an
  earlier whiteout; whiteouts inside opaque directories are dropped as pointless.

Ownership is restored (``same_owner``, default: when running as root in any user namespace),
ignoring EPERM/EINVAL for unmapped ids. Xattrs come from PAX ``SCHILY.xattr.*`` records:
``user.*`` always, ``trusted.*`` and ``security.capability`` only as real root; other namespaces,
and the ``*.overlay.*`` xattrs that would change how overlayfs reads the snapshot, are skipped.
"""
from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import sys
import tarfile
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable

from .errors import ArchiveError, EngineError, UnsafeArchive
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms)
if TYPE_CHECKING:
    from typing import BinaryIO, Literal

__all__ = ["ExtractStats", "extract_layer", "open_layer_stream"]


def _debug(message: str, *args: object) -> None:
    """Log at debug level when logging is in use (importing it would cost every extraction 5 ms)."""
    logging = sys.modules.get("logging")  # not imported: nothing is configured to show debug records
    if logging is not None:
        logging.getLogger(__name__).debug(message, *args)


CHUNK_SIZE = 1 << 20
_TAR_BUFSIZE = 16 * 1024
_MAX_SPECIAL_HEADER = 1 << 20
_FD_CACHE_SIZE = 128
_FD_CACHE_HARD = 512
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_IGNORED = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM})
_CHOWN_IGNORED = frozenset({errno.EPERM, errno.EINVAL})
_SPECIAL_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                  tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_ENTRY_ERRORS = (OSError, ValueError, OverflowError, IndexError, EOFError, zlib.error,
                 tarfile.TarError)

Parts = tuple[str, ...]


@value
class ExtractStats:
    """What one ``extract_layer`` call wrote."""

    files: int       # regular files written
    dirs: int
    symlinks: int
    hardlinks: int
    whiteouts: int   # whiteout entries applied
    bytes: int       # regular-file content bytes written


@value
class _Privilege:
    """What the running process may do."""

    ns_root: bool    # euid 0 in its user namespace: may chown
    real_root: bool  # euid 0 in the initial user namespace: devices, trusted.* xattrs


@value
class _DirMeta:
    """Metadata of a directory entry, applied when the layer is complete."""

    mode: int
    mtime_ns: int | None
    uid: int
    gid: int
    xattrs: tuple[tuple[str, bytes], ...]


def _privilege() -> _Privilege:
    """Detect root, and whether it is the initial user namespace's root."""
    if os.geteuid() != 0:
        return _Privilege(ns_root=False, real_root=False)
    try:
        with open("/proc/self/uid_map", encoding="ascii") as uid_map:
            initial = uid_map.read().split() == ["0", "0", "4294967295"]
    except OSError:
        initial = False
    return _Privilege(ns_root=True, real_root=initial)


# --------------------------------------------------------------------------- streams


class _PrefixedReader(io.RawIOBase):
    """A read-only stream that replays already-read bytes before its source; never closes it."""

    def __init__(self, prefix: bytes, raw: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._raw = raw

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if not self._prefix:
            return self._raw.read(-1 if size is None else size) or b""
        if size is None or size < 0:
            data, self._prefix = self._prefix + (self._raw.read() or b""), b""
            return data
        head, self._prefix = self._prefix[:size], self._prefix[size:]
        if len(head) < size:
            head += self._raw.read(size - len(head)) or b""
        return head

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ClosingGzipFile(gzip.GzipFile):
    """A GzipFile that also closes the file it decompresses."""

    def close(self) -> None:
        raw = self.fileobj
        try:
            super().close()
        finally:
            if raw is not None:
                raw.close()


def _read_head(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, retrying short reads (pipes, sockets)."""
    head = b""
    while len(head) < size:
        more = stream.read(size - len(head))
        if not more:
            break
        head += more
    return head


def _peek(stream: BinaryIO, size: int) -> tuple[bytes, BinaryIO]:
    """The first ``size`` bytes and a stream that still starts with them."""
    try:
        seekable = stream.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        position = stream.tell()
        head = _read_head(stream, size)
        stream.seek(position)
        return head, stream
    head = _read_head(stream, size)
    return head, _PrefixedReader(head, stream)  # type: ignore[return-value]


def open_layer_stream(src: BinaryIO | str | os.PathLike) -> BinaryIO:
    """Open a layer blob as an uncompressed tar stream; gzip is detected by its magic ``1f 8b``.

    A path is opened here and closed with the result. A stream stays owned by the caller:
    closing the result never closes ``src`` (the result may be ``src`` itself)::

        >>> with open_layer_stream("blobs/sha256/ab12...") as tar_stream:   # doctest: +SKIP
        ...     header = tar_stream.read(512)
    """
    if isinstance(src, (str, os.PathLike)):
        raw: BinaryIO = open(src, "rb")
        try:
            return _decompressing(raw, owned=True)
        except BaseException:
            raw.close()
            raise
    return _decompressing(src, owned=False)


def _decompressing(raw: BinaryIO, *, owned: bool) -> BinaryIO:
    """Wrap ``raw`` in a gzip reader when its magic says so."""
    head, stream = _peek(raw, 4)
    if head.startswith(_ZSTD_MAGIC):
        raise ArchiveError("zstd-compressed layers are not supported")
    if not head.startswith(_GZIP_MAGIC):
        return stream
    if owned:
        return _ClosingGzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]


class _LayerTarInfo(tarfile.TarInfo):
    """TarInfo that treats truncated or corrupt headers as errors instead of the archive's end."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EmptyHeaderError:  # stream ends on a block boundary: end of archive
            raise tarfile.EOFHeaderError("end of stream") from None
        except (tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError) as exc:
            raise tarfile.ReadError(f"truncated or corrupt header ({exc})") from None

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _SPECIAL_TYPES and self.size > _MAX_SPECIAL_HEADER:
            raise tarfile.ReadError(f"extended header of {self.size} bytes exceeds 1 MiB")
        return super()._proc_member(tarfile_)


# --------------------------------------------------------------------------- names and metadata


def _member_parts(name: str, member: str) -> Parts:
    """Components of ``name`` below the root (``/``, ``.`` dropped, ``..`` folded); no escapes."""
    if "\x00" in name:
        raise UnsafeArchive(member, "name contains a NUL byte")
    parts: list[str] = []
    for component in name.split("/"):
        if component in ("", "."):
            continue
        if component != "..":
            parts.append(component)
        elif parts:
            parts.pop()
        else:
            raise UnsafeArchive(member, f"{name!r} climbs above the extraction root")
    return tuple(parts)


def _mtime_ns(member: tarfile.TarInfo) -> int | None:
    """The member's mtime in nanoseconds (exact for PAX decimals); None when unusable."""
    raw = member.pax_headers.get("mtime")
    if raw is None and isinstance(member.mtime, int):
        return member.mtime * 1_000_000_000
    import decimal  # only for PAX mtimes and fractions

    try:
        return int(decimal.Decimal(raw if raw is not None else member.mtime).scaleb(9))
    except (decimal.InvalidOperation, ValueError, OverflowError):
        return None


def _xattr_allowed(name: str, real_root: bool) -> bool:
    """Whether an archived xattr may be restored."""
    if "\x00" in name or name.startswith(("user.overlay.", "trusted.overlay.")):
        return False
    if name.startswith("user."):
        return True
    return real_root and (name.startswith("trusted.") or name == "security.capability")


def _xattrs(member: tarfile.TarInfo, real_root: bool) -> tuple[tuple[str, bytes], ...]:
    """The ``SCHILY.xattr.*`` records of a member that may be restored."""
    found = []
    for key, text in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        if _xattr_allowed(name, real_root):
            found.append((name, text.encode("utf-8", "surrogateescape")))
        else:
            _debug("%s: skipping xattr %r", member.name, name)
    return tuple(found)


def _set_xattrs(fd: int, xattrs: tuple[tuple[str, bytes], ...]) -> None:
    """Set xattrs on an open file, ignoring ENOTSUP/EPERM."""
    for name, data in xattrs:
        _try_setxattr(fd, name, data)


def _try_setxattr(fd: int, name: str, value: bytes) -> bool:
    """Set one xattr; False when the filesystem or our privileges refuse it."""
    try:
        os.setxattr(fd, name, value)
    except OSError as exc:
        if exc.errno not in _XATTR_IGNORED:
            raise
        _debug("cannot set xattr %s: %s", name, exc.strerror)
        return False
    return True


def _ignoring(errnos: frozenset[int], func: Callable[..., object], *args: object,
              **kwargs: object) -> None:
    """Call ``func``; swallow OSErrors whose errno is in ``errnos``."""
    try:
        func(*args, **kwargs)
    except OSError as exc:
        if exc.errno not in errnos:
            raise


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written."""
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]


def _chmod_special(parent_fd: int, name: str, mode: int) -> None:
    """chmod a device or FIFO without opening it for I/O and without following a symlink."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    try:
        if not stat.S_ISLNK(os.fstat(fd).st_mode):
            os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)


def _open_dir_for_removal(parent_fd: int, name: str, fix_perms: bool) -> int:
    """Open a directory that is about to be emptied; as non-root make it writable first."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        if not fix_perms:
            raise
        _chmod_special(parent_fd, name, 0o700)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    if fix_perms:
        _ignoring(frozenset({errno.EPERM}), os.fchmod, fd, 0o700)
    return fd


def _rmtree_at(parent_fd: int, name: str, fix_perms: bool) -> None:
    """Delete directory ``name`` below ``parent_fd`` with its content; never follows symlinks."""
    fd = _open_dir_for_removal(parent_fd, name, fix_perms)
    frames: list[tuple[int, str, int, list[str]]] = [(parent_fd, name, fd, os.listdir(fd))]
    try:
        while frames:
            up_fd, dir_name, fd, names = frames[-1]
            if not names:
                frames.pop()
                os.close(fd)
                os.rmdir(dir_name, dir_fd=up_fd)
                continue
            child = names.pop()
            if stat.S_ISDIR(os.lstat(child, dir_fd=fd).st_mode):
                child_fd = _open_dir_for_removal(fd, child, fix_perms)
                frames.append((fd, child, child_fd, os.listdir(child_fd)))
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        for _, _, fd, _ in frames:
            os.close(fd)


# --------------------------------------------------------------------------- directory walking


class _Tree:
    """Descriptors of directories below the root, each reached without following symlinks."""

    def __init__(self, root_fd: int, fix_perms: bool) -> None:
        self.root_fd = root_fd
        self.fix_perms = fix_perms                 # not root: make owned read-only dirs writable
        self.created: set[Parts] = set()           # directories made for an entry's parent
        self.saved_modes: dict[Parts, int] = {}    # existing dirs made writable; restored at end
        self._fds: OrderedDict[Parts, int] = OrderedDict()

    def close(self) -> None:
        """Close every cached descriptor."""
        while self._fds:
            os.close(self._fds.popitem()[1])

    def trim(self) -> None:
        """Close the least recently used descriptors; only between members, never mid-walk."""
        while len(self._fds) > _FD_CACHE_SIZE:
            os.close(self._fds.popitem(last=False)[1])

    def forget(self, parts: Parts) -> None:
        """Drop descriptors of ``parts`` and below (the directory is being removed)."""
        depth = len(parts)
        for key in [key for key in self._fds if key[:depth] == parts]:
            os.close(self._fds.pop(key))

    def open_dir(self, parts: Parts, member: str | None, *, create: bool) -> int | None:
        """Descriptor of directory ``parts`` (cached, do not close).

        ``create`` makes missing directories (0o700). A symlink on the way raises UnsafeArchive
        naming ``member``; a missing or non-directory component gives None, or ArchiveError when
        creating. With ``member=None`` every failure gives None.
        """
        if not parts:
            return self.root_fd
        cached = self._fds.get(parts)
        if cached is not None:
            self._fds.move_to_end(parts)
            return cached
        start, base = len(parts) - 1, self.root_fd
        while start > 0:
            ancestor = self._fds.get(parts[:start])
            if ancestor is not None:
                base = ancestor
                break
            start -= 1
        temporary = False
        for depth in range(start, len(parts)):
            key = parts[: depth + 1]
            try:
                child = self._open_child(base, key, member, create)
            finally:
                if temporary:
                    os.close(base)
            if child is None:
                return None
            temporary = depth + 1 < len(parts) and len(self._fds) >= _FD_CACHE_HARD
            if not temporary:
                self._fds[key] = child
            base = child
        return base

    def _open_child(self, parent_fd: int, key: Parts, member: str | None,
                    create: bool) -> int | None:
        """Open (or make) one component below an already opened directory."""
        name = key[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(name, 0o700, dir_fd=parent_fd)
            self.created.add(key)
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if member is None:
                return None
            return self._not_a_directory(parent_fd, key, member, create)
        if self.fix_perms:
            try:
                self._make_writable(fd, key)
            except OSError:
                os.close(fd)
                raise
        return fd

    def _not_a_directory(self, parent_fd: int, key: Parts, member: str, create: bool) -> None:
        """Refuse a symlinked component; report or ignore any other non-directory."""
        where = "/".join(key)
        if stat.S_ISLNK(os.lstat(key[-1], dir_fd=parent_fd).st_mode):
            raise UnsafeArchive(member, f"path component {where!r} is a symbolic link; "
                                        "refusing to follow it")
        if create:
            raise ArchiveError(f"cannot extract {member!r}: {where!r} is not a directory")
        return None

    def _make_writable(self, fd: int, key: Parts) -> None:
        """As non-root, give an owned read-only directory u+rwx until the end of the layer."""
        st = os.fstat(fd)
        if st.st_mode & 0o700 != 0o700 and st.st_uid == os.geteuid():
            self.saved_modes.setdefault(key, stat.S_IMODE(st.st_mode))
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)


# --------------------------------------------------------------------------- extraction

_PARSE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, ValueError, IndexError,
                 OverflowError)


def _set_times(target: int | str, ns: int | None, **kwargs: object) -> None:
    """Set atime and mtime; silently skip timestamps the kernel cannot store."""
    if ns is None:
        return
    try:
        os.utime(target, ns=(ns, ns), **kwargs)  # type: ignore[arg-type]
    except (OverflowError, ValueError):
        _debug("skipping out-of-range mtime %d", ns)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise


class _Extractor:
    """Applies the members of one layer tar to a directory, one member at a time."""

    def __init__(self, root_fd: int, whiteouts: str, chown: bool, priv: _Privilege) -> None:
        self.tree = _Tree(root_fd, fix_perms=not priv.ns_root)
        self.whiteouts = whiteouts
        self.chown = chown
        self.priv = priv
        self.ids = (os.geteuid(), os.getegid())
        self.counts: Counter[str] = Counter()
        self.touched: set[Parts] = set()         # written by this layer, with their ancestors
        self.dir_meta: dict[Parts, _DirMeta] = {}
        self.prune: set[Parts] = set()           # apply: dirs whose older content is hidden
        self.opaque: set[Parts] = set()          # overlay: dirs marked opaque
        self.whiteout_nodes: set[Parts] = set()  # overlay: whiteouts made by this layer

    def stats(self) -> ExtractStats:
        """Counts so far as an ExtractStats."""
        c = self.counts
        return ExtractStats(files=c["files"], dirs=c["dirs"], symlinks=c["symlinks"],
                            hardlinks=c["hardlinks"], whiteouts=c["whiteouts"], bytes=c["bytes"])

    def run(self, stream: BinaryIO) -> None:
        """Extract every member of the tar in ``stream``, then apply deferred work."""
        try:
            tar = tarfile.open(fileobj=stream, mode="r|", bufsize=_TAR_BUFSIZE,
                               tarinfo=_LayerTarInfo)
        except _PARSE_ERRORS as exc:
            raise ArchiveError(f"not a readable layer tar: {exc}") from exc
        with tar:
            previous: str | None = None
            while (member := self._next(tar, previous)) is not None:
                tar.members.clear()  # streaming: keep no list of every TarInfo
                try:
                    self._entry(tar, member)
                except EngineError:
                    raise
                except _ENTRY_ERRORS as exc:
                    raise ArchiveError(f"cannot extract {member.name!r}: {exc}") from exc
                previous = member.name
        try:
            if self.whiteouts == "apply":
                self._prune_all()
            self._apply_dir_meta()
        except EngineError:
            raise
        except _ENTRY_ERRORS as exc:
            raise ArchiveError(f"cannot finish the layer: {exc}") from exc

    def _next(self, tar: tarfile.TarFile, previous: str | None) -> tarfile.TarInfo | None:
        """The next member; ArchiveError (naming the previous member) for a malformed stream."""
        self.tree.trim()
        try:
            return tar.next()
        except _PARSE_ERRORS as exc:
            where = f"after member {previous!r}" if previous is not None else "at its start"
            raise ArchiveError(f"malformed or truncated layer tar {where}: {exc}") from exc

    def _entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        """Dispatch one member by type after validating its name."""
        parts = _member_parts(m.name, m.name)
        if parts and parts[0].startswith(WHITEOUT_META_PREFIX) and parts != (OPAQUE_MARKER,):
            _debug("skipping aufs metadata entry %r", m.name)
            return
        for component in parts[:-1]:
            if component.startswith(WHITEOUT_PREFIX):
                raise UnsafeArchive(m.name, f"whiteout marker {component!r} used as a directory")
        if parts and parts[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(m, parts)
            return
        if not parts:
            self._root_entry(m)
            return
        special = m.ischr() or m.isblk() or m.isfifo()
        if special and not self.priv.real_root:
            raise UnsafeArchive(m.name, "device nodes and FIFOs are only created by real root")
        if self.whiteout_nodes:
            self._reclaim_whiteouts(parts[:-1], m.name)
        parent = self.tree.open_dir(parts[:-1], m.name, create=True)
        assert parent is not None
        if m.isdir():
            self._make_dir(m, parts, parent)
        elif m.isreg():
            self._make_file(tar, m, parts, parent)
        elif m.issym():
            self._make_symlink(m, parts, parent)
        elif m.islnk():
            self._make_hardlink(m, parts, parent)
        elif special:
            self._make_special(m, parts, parent)
        else:
            raise ArchiveError(f"cannot extract {m.name!r}: unsupported entry type {m.type!r}")
        self._touch(parts)

    # ----------------------------------------------------------------- entries

    def _root_entry(self, m: tarfile.TarInfo) -> None:
        """``./`` (or ``/``) sets the root's metadata; anything else there is refused."""
        if not m.isdir():
            reason = "empty name" if not m.name else "entry would replace the extraction root"
            raise UnsafeArchive(m.name, reason)
        self.dir_meta[()] = self._dir_meta(m)
        self.counts["dirs"] += 1

    def _dir_meta(self, m: tarfile.TarInfo) -> _DirMeta:
        xattrs = _xattrs(m, self.priv.real_root) if m.pax_headers else ()
        return _DirMeta(m.mode & 0o7777, _mtime_ns(m), m.uid, m.gid, xattrs)

    def _make_dir(self, m: tarfile.TarInfo, parts: Parts, parent: int) -> None:
        replaces_whiteout = parts in self.whiteout_nodes
        try:
            os.mkdir(parts[-1], 0o700, dir_fd=parent)
        except FileExistsError:
            if not self._clear(parent, parts, keep_dir=True):
                os.mkdir(parts[-1], 0o700, dir_fd=parent)
        self.dir_meta[parts] = self._dir_meta(m)
        self.counts["dirs"] += 1
        if replaces_whiteout:  # overlay: a whiteout then a directory is an opaque directory
            self._set_opaque(parts, self.tree.open_dir(parts, m.name, create=False))

    def _make_file(self, tar: tarfile.TarFile, m: tarfile.TarInfo, parts: Parts,
                   parent: int) -> None:
        try:
            fd = os.open(parts[-1], _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        except FileExistsError:  # O_EXCL never follows a symlink: replace whatever is there
            self._clear(parent, parts, keep_dir=False)
            fd = os.open(parts[-1], _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            self._copy_data(tar, m, fd)
            if self.chown and (m.uid, m.gid) != self.ids:  # before xattrs: chown drops caps
                _ignoring(_CHOWN_IGNORED, os.fchown, fd, m.uid, m.gid)
            if m.pax_headers:  # before chmod: user.* xattrs need a writable inode
                _set_xattrs(fd, _xattrs(m, self.priv.real_root))
            os.fchmod(fd, m.mode & 0o7777)
            _set_times(fd, _mtime_ns(m))
        finally:
            os.close(fd)
        self.counts["files"] += 1
        self.counts["bytes"] += m.size

    @staticmethod
    def _copy_data(tar: tarfile.TarFile, m: tarfile.TarInfo, fd: int) -> None:
        """Copy the member's data in 1 MiB chunks; ArchiveError when the stream ends early."""
        if m.issparse():
            source = tar.extractfile(m)
        else:
            source = tar.fileobj  # the streaming reader, positioned at this member's data
            if source.tell() != m.offset_data:
                source.seek(m.offset_data)
        remaining = m.size
        while remaining > 0:
            chunk = source.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise ArchiveError(f"truncated layer tar: member {m.name!r} declares {m.size} "
                                   f"bytes but the stream ends after {m.size - remaining}")
            _write_all(fd, chunk)
            remaining -= len(chunk)

    def _make_symlink(self, m: tarfile.TarInfo, parts: Parts, parent: int) -> None:
        if "\x00" in m.linkname:
            raise UnsafeArchive(m.name, "symlink target contains a NUL byte")
        try:
            os.symlink(m.linkname, parts[-1], dir_fd=parent)
        except FileExistsError:
            self._clear(parent, parts, keep_dir=False)
            os.symlink(m.linkname, parts[-1], dir_fd=parent)
        self._set_link_meta(m, parts[-1], parent)
        self.counts["symlinks"] += 1

    def _set_link_meta(self, m: tarfile.TarInfo, name: str, parent: int) -> None:
        """Owner and times of a symlink or special file, never following it."""
        if self.chown and (m.uid, m.gid) != self.ids:
            _ignoring(_CHOWN_IGNORED, os.chown, name, m.uid, m.gid, dir_fd=parent,
                      follow_symlinks=False)
        _set_times(name, _mtime_ns(m), dir_fd=parent, follow_symlinks=False)

    def _make_hardlink(self, m: tarfile.TarInfo, parts: Parts, parent: int) -> None:
        target = _member_parts(m.linkname, m.name)
        if target == parts:
            _debug("%s: hard link to itself, nothing to do", m.name)
            return
        if not target:
            raise UnsafeArchive(m.name, "hard link to the extraction root")
        self._clear(parent, parts, keep_dir=False)  # first: it may hold the target
        target_parent = self.tree.open_dir(target[:-1], m.name, create=False)
        try:
            st = None if target_parent is None else os.lstat(target[-1], dir_fd=target_parent)
        except FileNotFoundError:
            st = None
        if st is None or target_parent is None:
            raise UnsafeArchive(m.name, f"hard link target {m.linkname!r} does not exist in "
                                        "the extraction root")
        if not stat.S_ISREG(st.st_mode) or target in self.whiteout_nodes:
            raise UnsafeArchive(m.name, f"hard link target {m.linkname!r} is not a regular file")
        os.link(target[-1], parts[-1], src_dir_fd=target_parent, dst_dir_fd=parent,
                follow_symlinks=False)
        self.counts["hardlinks"] += 1

    def _make_special(self, m: tarfile.TarInfo, parts: Parts, parent: int) -> None:
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        device = 0 if kind == stat.S_IFIFO else os.makedev(m.devmajor, m.devminor)
        try:
            os.mknod(parts[-1], kind | 0o600, device, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, parts, keep_dir=False)
            os.mknod(parts[-1], kind | 0o600, device, dir_fd=parent)
        self._set_link_meta(m, parts[-1], parent)
        _chmod_special(parent, parts[-1], m.mode & 0o7777)

    # ----------------------------------------------------------------- removal and bookkeeping

    def _touch(self, parts: Parts) -> None:
        """Record that this layer wrote ``parts`` (and so its ancestors)."""
        while parts and parts not in self.touched:
            self.touched.add(parts)
            parts = parts[:-1]

    def _clear(self, parent: int, parts: Parts, *, keep_dir: bool) -> bool:
        """Remove whatever is at ``parts``; True when an existing directory was kept instead."""
        try:
            st = os.lstat(parts[-1], dir_fd=parent)
        except FileNotFoundError:
            return False
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return True
        self._remove(parent, parts, st)
        return False

    def _remove(self, parent: int, parts: Parts, st: os.stat_result) -> None:
        """Delete one entry (a directory with its content) without following symlinks."""
        if stat.S_ISDIR(st.st_mode):
            self.tree.forget(parts)
            _rmtree_at(parent, parts[-1], self.tree.fix_perms)
            if parts in self.touched:
                self._forget_below(parts)
        else:
            os.unlink(parts[-1], dir_fd=parent)
        self.whiteout_nodes.discard(parts)

    def _forget_below(self, parts: Parts) -> None:
        """Drop deferred directory work for a removed subtree."""
        depth = len(parts)
        for key in [key for key in self.dir_meta if key[:depth] == parts]:
            del self.dir_meta[key]
        for key in [key for key in self.tree.saved_modes if key[:depth] == parts]:
            del self.tree.saved_modes[key]
        self.tree.created.difference_update([k for k in self.tree.created if k[:depth] == parts])

    # ----------------------------------------------------------------- whiteouts

    def _whiteout(self, m: tarfile.TarInfo, parts: Parts) -> None:
        leaf, where = parts[-1], parts[:-1]
        if leaf == OPAQUE_MARKER:
            self.counts["whiteouts"] += 1
            self._opaque_marker(m, where)
            return
        if leaf.startswith(WHITEOUT_META_PREFIX):
            _debug("skipping aufs metadata entry %r", m.name)
            return
        target = leaf[len(WHITEOUT_PREFIX):]
        if target in ("", ".", "..") or "/" in target:
            raise UnsafeArchive(m.name, f"whiteout of {target!r} is not a valid name")
        self.counts["whiteouts"] += 1
        if self.whiteouts == "apply":
            self._apply_whiteout(m, where + (target,))
        else:
            self._overlay_whiteout(m, where + (target,))

    def _opaque_marker(self, m: tarfile.TarInfo, where: Parts) -> None:
        if self.whiteout_nodes:
            self._reclaim_whiteouts(where, m.name)
        fd = self.tree.open_dir(where, m.name, create=True)
        self._touch(where)
        if self.whiteouts == "apply":
            self.prune.add(where)
            return
        self._set_opaque(where, fd)
        depth = len(where)
        for node in [n for n in self.whiteout_nodes if n[:depth] == where]:
            node_parent = self.tree.open_dir(node[:-1], None, create=False)
            if node_parent is not None:
                _ignoring(frozenset({errno.ENOENT}), os.unlink, node[-1], dir_fd=node_parent)
            self.whiteout_nodes.discard(node)

    def _apply_whiteout(self, m: tarfile.TarInfo, target: Parts) -> None:
        if target in self.touched:  # this layer wrote it: keep that, hide older content below
            self.prune.add(target)
            return
        parent = self.tree.open_dir(target[:-1], m.name, create=False)
        if parent is None:
            return
        try:
            st = os.lstat(target[-1], dir_fd=parent)
        except FileNotFoundError:
            return
        self._remove(parent, target, st)

    def _overlay_whiteout(self, m: tarfile.TarInfo, target: Parts) -> None:
        where = target[:-1]
        if target in self.touched:  # a directory of this layer hides older content by opacity
            fd = self.tree.open_dir(target, None, create=False)
            if fd is not None:
                self._set_opaque(target, fd)
            return
        hidden = (where[:depth] in self.opaque for depth in range(len(where) + 1))
        covered = (where[:depth] in self.whiteout_nodes for depth in range(1, len(where) + 1))
        if any(hidden) or any(covered) or target in self.whiteout_nodes:
            return
        parent = self.tree.open_dir(where, m.name, create=True)
        assert parent is not None
        self._clear(parent, target, keep_dir=False)
        self._make_whiteout_node(parent, target)
        self.whiteout_nodes.add(target)

    def _make_whiteout_node(self, parent: int, target: Parts) -> None:
        """A 0/0 char device, or without CAP_MKNOD an xattr whiteout (kernel >= 6.7)."""
        try:
            os.mknod(target[-1], stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
            return
        except PermissionError:
            pass
        fd = os.open(target[-1], _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            done = _try_setxattr(fd, "user.overlay.whiteout", b"y")
        finally:
            os.close(fd)
        done = done and _try_setxattr(parent, "user.overlay.whiteouts", b"y")
        if done and target[:-1] not in self.opaque:
            done = _try_setxattr(parent, "user.overlay.opaque", b"x")
        if not done:
            raise ArchiveError(f"cannot write whiteout {'/'.join(target)!r}: mknod is not "
                               "permitted and the filesystem refuses user.overlay xattrs")

    def _set_opaque(self, where: Parts, fd: int | None) -> None:
        """Mark a directory opaque with user.overlay.opaque (and trusted.* as real root)."""
        assert fd is not None
        done = _try_setxattr(fd, "user.overlay.opaque", b"y")
        if self.priv.real_root:
            done = _try_setxattr(fd, "trusted.overlay.opaque", b"y") or done
        if not done:
            raise ArchiveError(f"cannot mark {'/'.join(where) or '/'!r} opaque: the filesystem "
                               "refuses overlay xattrs")
        self.opaque.add(where)

    def _reclaim_whiteouts(self, dir_parts: Parts, member: str) -> None:
        """Overlay: an entry below an earlier whiteout turns it into an opaque directory."""
        for depth in range(1, len(dir_parts) + 1):
            key = dir_parts[:depth]
            if key not in self.whiteout_nodes:
                continue
            parent = self.tree.open_dir(key[:-1], member, create=True)
            assert parent is not None
            os.unlink(key[-1], dir_fd=parent)
            self.whiteout_nodes.discard(key)
            os.mkdir(key[-1], 0o700, dir_fd=parent)
            self.tree.created.add(key)
            self._set_opaque(key, self.tree.open_dir(key, member, create=False))

    # ----------------------------------------------------------------- end of layer

    def _prune_all(self) -> None:
        """Apply opaque markers: delete what this layer did not write below each marked dir."""
        for top in sorted(self.prune, key=len):
            if not any(top[:depth] in self.prune for depth in range(len(top))):
                self._prune(top)

    def _prune(self, top: Parts) -> None:
        stack = [top]
        while stack:
            self.tree.trim()
            parts = stack.pop()
            fd = self.tree.open_dir(parts, None, create=False)
            if fd is None:
                continue
            for name in os.listdir(fd):
                child = parts + (name,)
                st = os.lstat(name, dir_fd=fd)
                if child not in self.touched:
                    self._remove(fd, child, st)
                elif stat.S_ISDIR(st.st_mode):
                    stack.append(child)

    def _apply_dir_meta(self) -> None:
        """Real modes, owners, xattrs and mtimes of directories, deepest first."""
        keys = set(self.dir_meta) | self.tree.created | set(self.tree.saved_modes)
        for parts in sorted(keys, key=lambda key: (-len(key), key)):
            self.tree.trim()
            fd = self.tree.open_dir(parts, None, create=False)
            if fd is None:
                continue
            meta = self.dir_meta.get(parts)
            if meta is None:
                os.fchmod(fd, self.tree.saved_modes.get(parts, 0o755))
                continue
            if self.chown and (meta.uid, meta.gid) != self.ids:
                _ignoring(_CHOWN_IGNORED, os.fchown, fd, meta.uid, meta.gid)
            _set_xattrs(fd, meta.xattrs)
            os.fchmod(fd, meta.mode)
            _set_times(fd, meta.mtime_ns)


def extract_layer(src: BinaryIO | str | os.PathLike, dest: str | os.PathLike, *,
                  whiteouts: Literal["apply", "overlay"] = "apply",
                  same_owner: bool | None = None) -> ExtractStats:
    """Extract a layer tar (plain or gzip) into ``dest`` safely; see the module docstring.

    ``whiteouts="apply"`` stacks the layer onto what ``dest`` already holds (flattening);
    ``"overlay"`` writes a per-layer snapshot for use as an overlayfs lowerdir. ``same_owner``
    restores tar uid/gid (default: when running as root in any user namespace). Raises
    :class:`UnsafeArchive` for refused entries and :class:`ArchiveError` for malformed tars;
    ``dest`` may then be partly written, so extract into a temporary directory::

        >>> extract_layer("layer.tar", "/tmp/rootfs")                       # doctest: +SKIP
        ExtractStats(files=3, dirs=2, symlinks=1, hardlinks=0, whiteouts=0, bytes=1234)
    """
    if whiteouts not in ("apply", "overlay"):
        raise ValueError(f"whiteouts must be 'apply' or 'overlay', not {whiteouts!r}")
    priv = _privilege()
    chown = priv.ns_root if same_owner is None else same_owner
    os.makedirs(dest, exist_ok=True)
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    extractor = _Extractor(root_fd, whiteouts, chown, priv)
    try:
        stream = open_layer_stream(src)
        try:
            extractor.run(stream)
        finally:
            if stream is not src:
                stream.close()
    finally:
        extractor.tree.close()
        os.close(root_fd)
    stats = extractor.stats()
    _debug("extracted layer into %s: %s", dest, stats)
    return stats
