"""Host-side preparation of a container's root file system: init layer, copy fallback, probe, cleanup.

Files that belong to one container, all derived from its ``upperdir`` (``<upper>`` below):

* ``<upper>``: the writable layer.  With overlayfs it holds only the container's changes (the kernel
  writes whiteouts and opaque markers there); in copy mode it *is* the whole root file system.
* ``<upper>.init``: Docker's "init layer": the mount points (``/proc``, ``/dev``, ``/sys``) and the
  empty ``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf`` files the sandbox bind-mounts over,
  created only where the image lacks them.  It sits on top of the image layers, so none of it shows up
  in ``diff``.
* ``<upper>.manifest.json`` (copy mode only): what the copy put into ``<upper>``, one entry per path
  (mode, uid, gid, size, mtime_ns, inode, symlink target), so that ``diff`` can compare against it.

Example::

    mode = resolve_mode("auto", "/store/containers/abc/upper")      # "overlay" or "copy"
    lowers = prepare(lowerdirs, upper, work, mode)                  # the lowerdirs to mount, top first
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator, Sequence

from ..errors import ContainerError
from .layerview import LayerStack, is_opaque, is_overlay_xattr, is_whiteout
from .spawner import shim_command

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    import logging
    from typing import Literal

    RootfsMode = Literal["overlay", "copy"]

MANIFEST_VERSION = 1


def _log() -> logging.Logger:
    """This module's logger, for the rare paths that log: :mod:`logging` costs every container start
    about 4 ms to import."""
    import logging

    return logging.getLogger(__name__)


def init_dir(upperdir: str) -> str:
    """Where the init layer of the container with this upperdir lives."""
    return os.path.normpath(upperdir) + ".init"


def manifest_path(upperdir: str) -> str:
    """Where the copy-mode manifest of the container with this upperdir lives."""
    return os.path.normpath(upperdir) + ".manifest.json"


# ---------------------------------------------------------------------------------------------
# overlay probe

_probe_lock = threading.Lock()
_probe_cache: dict[int, bool] = {}


def overlay_supported(base_dir: str) -> bool:
    """Whether overlayfs can be mounted in a user namespace with its upper layer under ``base_dir``.

    Probed once per file system (by ``st_dev``) with a real mount, including a whiteout, in a
    throw-away helper process; the answer is cached for the life of this process.

    Example::

        >>> overlay_supported("/var/tmp")  # doctest: +SKIP
        True
    """
    os.makedirs(base_dir, exist_ok=True)
    dev = os.stat(base_dir).st_dev
    with _probe_lock:
        if dev not in _probe_cache:
            _probe_cache[dev] = _probe(base_dir)
        return _probe_cache[dev]


def _probe(base_dir: str) -> bool:
    import tempfile  # here and below: once per machine or image, not on every `run`

    tmp = tempfile.mkdtemp(prefix=".overlay-probe-", dir=base_dir)
    try:
        for name in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(tmp, name))
        with open(os.path.join(tmp, "lower", "old"), "w") as f:
            f.write("x")
        result = subprocess.run([*shim_command("probe(sys.argv[1])"), tmp], capture_output=True,
                                text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        _log().info("overlayfs probe under %s could not run: %s", base_dir, e)
        return False
    finally:
        remove_tree(tmp)
    if result.returncode != 0:
        _log().info("overlayfs in a user namespace is not usable under %s (%s); using the copy fallback",
                 base_dir, result.stderr.strip())
        return False
    return True


def resolve_mode(requested: str, upperdir: str) -> RootfsMode:
    """Turn ``auto`` into ``overlay`` or ``copy``; a container keeps the mode it was created with."""
    has_manifest = os.path.exists(manifest_path(upperdir))
    if requested == "auto":
        if has_manifest:
            return "copy"
        if os.path.isdir(upperdir) and os.listdir(upperdir):
            return "overlay"
        return "overlay" if overlay_supported(os.path.dirname(os.path.normpath(upperdir))) else "copy"
    if requested == "overlay" and has_manifest:
        raise ContainerError(f"{upperdir} holds a copy-mode root file system; it cannot be used with overlayfs")
    if requested not in ("overlay", "copy"):
        raise ContainerError(f"unknown rootfs mode {requested!r}")
    return requested  # type: ignore[return-value]


def prepare(lowerdirs: Sequence[str], upperdir: str, workdir: str, mode: RootfsMode) -> tuple[str, ...]:
    """Create the container's directories and init layer (and, in copy mode, the copy).

    Returns the lower directories to mount, top first, with the init layer on top.
    """
    for d in lowerdirs:
        if not os.path.isdir(d):
            raise ContainerError(f"layer directory {d} does not exist")
    os.makedirs(upperdir, mode=0o755, exist_ok=True)
    init = init_dir(upperdir)
    if not os.path.isdir(init):
        make_init_layer(lowerdirs, init)
    lowers = (init, *lowerdirs)
    if mode == "overlay":
        os.makedirs(workdir, mode=0o755, exist_ok=True)
    elif not os.path.exists(manifest_path(upperdir)):
        if os.listdir(upperdir):
            raise ContainerError(f"{upperdir} is not empty and has no copy manifest; "
                                 "it was not made by the copy fallback")
        populate_copy(lowers, upperdir)
        write_manifest(upperdir)
    return lowers


# ---------------------------------------------------------------------------------------------
# init layer

_INIT_DIRS = ("dev", "proc", "sys")
_INIT_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def make_init_layer(lowerdirs: Sequence[str], target: str) -> None:
    """Build the init layer for an image made of ``lowerdirs`` (top first) at ``target``."""
    image = LayerStack(lowerdirs)
    tmp = f"{target}.{os.urandom(6).hex()}"  # made on every `run`: no tempfile import for it
    os.mkdir(tmp, 0o700)
    try:
        os.chmod(tmp, 0o755)
        for name in _INIT_DIRS:
            st = image.lookup(name)
            if st is None or not stat.S_ISDIR(st.st_mode):
                os.mkdir(os.path.join(tmp, name), 0o755)
        etc = image.lookup("etc")
        if etc is None or stat.S_ISDIR(etc.st_mode):
            missing = [rel for rel in _INIT_FILES
                       if not ((st := image.lookup(rel)) and stat.S_ISREG(st.st_mode))]
            want_mtab = image.lookup("etc/mtab") is None
            if missing or want_mtab:
                os.mkdir(os.path.join(tmp, "etc"), 0o755)
                for rel in missing:
                    with open(os.path.join(tmp, rel), "w"):
                        pass
                    os.chmod(os.path.join(tmp, rel), 0o644)
                if want_mtab:
                    os.symlink("/proc/mounts", os.path.join(tmp, "etc", "mtab"))
                if etc is not None:
                    _copy_metadata(os.path.join(tmp, "etc"), etc)
        os.rename(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            remove_tree(tmp)
        raise


def _copy_metadata(path: str, st: os.stat_result, *, fd: int | None = None) -> None:
    """Give ``path`` the mode, owner and times of ``st`` (owner only when we are allowed to)."""
    is_link = stat.S_ISLNK(st.st_mode)
    try:
        if fd is not None:
            os.fchown(fd, st.st_uid, st.st_gid)
        else:
            os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EINVAL):
            raise
    times = (st.st_atime_ns, st.st_mtime_ns)
    if fd is not None:
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
        os.utime(fd, ns=times)
    elif is_link:
        os.utime(path, ns=times, follow_symlinks=False)
    else:
        os.chmod(path, stat.S_IMODE(st.st_mode))
        os.utime(path, ns=times)


# ---------------------------------------------------------------------------------------------
# copy fallback


def populate_copy(lowers: Sequence[str], dest: str) -> None:
    """Materialise the merged view of ``lowers`` (top first) into the empty directory ``dest``."""
    dir_meta: dict[str, os.stat_result] = {}
    for layer in reversed(lowers):
        _apply_layer(layer, dest, "", dir_meta)
    for rel in sorted(dir_meta, key=lambda r: r.count("/"), reverse=True):
        _copy_metadata(os.path.join(dest, rel) if rel else dest, dir_meta[rel])


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        remove_tree(path)
    else:
        os.unlink(path)


def _apply_layer(layer: str, dest: str, rel: str, dir_meta: dict[str, os.stat_result]) -> None:
    src_dir = os.path.join(layer, rel)
    if rel == "":
        dir_meta[""] = os.lstat(layer)
    with os.scandir(src_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        child = f"{rel}/{entry.name}" if rel else entry.name
        src = entry.path
        dst = os.path.join(dest, child)
        st = entry.stat(follow_symlinks=False)
        if is_whiteout(src, st):
            _remove(dst)
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                existing = os.lstat(dst)
            except FileNotFoundError:
                existing = None
            if existing is not None and (not stat.S_ISDIR(existing.st_mode) or is_opaque(src)):
                _remove(dst)
                existing = None
            if existing is None:
                os.mkdir(dst, 0o700)
            dir_meta[child] = st
            _apply_layer(layer, dest, child, dir_meta)
            continue
        _remove(dst)
        _copy_entry(src, dst, st)


def _copy_entry(src: str, dst: str, st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        _copy_file(src, dst, st)
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst, 0o600)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        try:
            os.mknod(dst, mode, st.st_rdev)
        except PermissionError:
            _log().warning("cannot create device node %s without privileges; skipped", dst)
            return
    else:
        _log().warning("skipping %s: unsupported file type", src)
        return
    _copy_xattrs(src, dst)
    _copy_metadata(dst, st)


def _copy_file(src: str, dst: str, st: os.stat_result) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            remaining = st.st_size
            try:
                while remaining > 0:
                    n = os.copy_file_range(fin, fout, min(remaining, 1 << 30))
                    if n == 0:
                        break
                    remaining -= n
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                while chunk := os.read(fin, 1 << 20):
                    os.write(fout, chunk)
            _copy_xattrs(src, dst)
            _copy_metadata(dst, st, fd=fout)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if is_overlay_xattr(name):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
        except OSError as e:
            _log().debug("xattr %s not copied to %s: %s", name, dst, e)


# ---------------------------------------------------------------------------------------------
# manifest

ManifestEntry = tuple[int, int, int, int, int, int, "str | None"]  # mode uid gid size mtime_ns ino target


def manifest_entry(path: str, st: os.stat_result) -> ManifestEntry:
    """What the manifest records for one path."""
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ino, target)


def walk_tree(root: str, rel: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    """(``/rel/path``, host path, lstat) for everything below ``root``, parents first, sorted."""
    with os.scandir(os.path.join(root, rel)) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    for entry in entries:
        child = f"{rel}/{entry.name}" if rel else entry.name
        st = entry.stat(follow_symlinks=False)
        yield "/" + child, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk_tree(root, child)


def write_manifest(upperdir: str) -> None:
    """Record the freshly copied root file system in ``upperdir``'s manifest."""
    entries = {path: manifest_entry(host, st) for path, host, st in walk_tree(upperdir)}
    target = manifest_path(upperdir)
    tmp = f"{target}.tmp"
    with open(tmp, "w") as f:
        json.dump({"version": MANIFEST_VERSION, "entries": entries}, f, separators=(",", ":"))
    os.replace(tmp, target)


def read_manifest(upperdir: str) -> dict[str, ManifestEntry]:
    """The manifest of a copy-mode container, ``/path`` → entry."""
    with open(manifest_path(upperdir)) as f:
        data = json.load(f)
    if data.get("version") != MANIFEST_VERSION:
        raise ContainerError(f"unsupported copy manifest version in {manifest_path(upperdir)}")
    return {path: tuple(entry) for path, entry in data["entries"].items()}  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# cleanup


def remove_tree(path: str) -> None:
    """rm -rf that also copes with overlayfs' mode-000 ``work/work`` directories."""
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)
        return
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                try:
                    os.chmod(p, 0o700)
                except OSError:
                    pass
    # bottom-up, never following links (shutil.rmtree would do, but importing it costs `run --rm` 2 ms)
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                os.unlink(p)
            else:
                os.rmdir(p)
    os.rmdir(path)


def remove(upperdir: str, workdir: str | None = None) -> None:
    """Delete everything a container's root file system left on disk (it must not be running)."""
    for path in (upperdir, workdir, init_dir(upperdir), manifest_path(upperdir)):
        if path:
            remove_tree(path)
