"""``docker diff``: what a container changed in its root file system, for both rootfs modes.

The answer is the same whichever mode ran the container (overlayfs or the copy fallback), and follows
Docker's ``archive.ChangesDirs`` rules (the ones its naive/vfs drivers use):

* a path that is new is ``A``; everything below a new directory is ``A`` too;
* a path that is gone is ``D`` (only the topmost one: the children of a deleted directory are not
  listed).  A directory that was deleted and re-created (an overlay *opaque* directory) lists each
  vanished child as ``D``, so a layer writer can use explicit whiteouts;
* a changed non-directory is ``C``; a directory is ``C`` when its mode or owner changed or when
  anything below it changed (its mtime is ignored, as Docker does);
* parents come before children; siblings are sorted by name (byte order), which is the order of
  Docker's directory walk.  The root itself is never listed.

Deliberate difference: with overlayfs a non-directory that was merely copied up (opened for writing
without a change) is reported ``C`` (as Docker's overlay2 driver does); the copy fallback compares
metadata (mode, owner, size, mtime, inode, link target) and may not report it.  Files the sandbox
bind-mounts (``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``) and the mount points of the init
layer never appear, as in Docker.

Example::

    >>> diff(("/store/layers/busybox",), "/store/containers/abc/upper")  # doctest: +SKIP
    [Change(kind='C', path='/etc'), Change(kind='A', path='/etc/motd')]
"""
from __future__ import annotations

import os
import stat
from collections import namedtuple
from collections.abc import Sequence

from .layerview import LayerStack, is_opaque, is_whiteout
from .rootfs import ManifestEntry, init_dir, manifest_path, read_manifest

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms of a build)
if TYPE_CHECKING:
    from typing import Literal, Protocol

    class _HasLayers(Protocol):
        lowerdirs: Sequence[str]
        upperdir: str


class Change(namedtuple("Change", ("kind", "path"))):
    """One line of ``docker diff``: ``kind`` ``A``, ``C`` or ``D`` and an absolute ``path``."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


def _sorted_names(names: set[str]) -> list[str]:
    return sorted(names, key=os.fsencode)


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def diff(source: _HasLayers | tuple[Sequence[str], str],
         mode: Literal["auto", "overlay", "copy"] = "auto") -> list[Change]:
    """Changes of a container: ``source`` is a ``SandboxSpec`` or ``(lowerdirs top first, upperdir)``.

    ``auto`` picks ``copy`` when the upperdir has a copy manifest, else ``overlay``.
    """
    if isinstance(source, tuple):
        lowerdirs, upperdir = source
    else:
        lowerdirs, upperdir = source.lowerdirs, source.upperdir
    if mode == "auto":
        mode = "copy" if os.path.exists(manifest_path(upperdir)) else "overlay"
    if mode == "copy":
        return copy_changes(upperdir, read_manifest(upperdir))
    init = init_dir(upperdir)
    lowers = ([init] if os.path.isdir(init) else []) + list(lowerdirs)
    return overlay_changes(upperdir, LayerStack(lowers))


def _all_added(root: str, rel: str) -> list[Change]:
    out: list[Change] = []
    base = os.path.join(root, rel)
    for name in _sorted_names(set(os.listdir(base))):
        child = _join(rel, name)
        path = os.path.join(root, child)
        st = os.lstat(path)
        if is_whiteout(path, st):
            continue
        out.append(Change("A", "/" + child))
        if stat.S_ISDIR(st.st_mode):
            out.extend(_all_added(root, child))
    return out


def _owner_mode_differ(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid)


def overlay_changes(upperdir: str, lowers: LayerStack) -> list[Change]:
    """Changes recorded in an overlayfs upper directory over ``lowers``."""

    def walk(rel: str, hidden: bool) -> list[Change]:
        # rel is a directory both in the upper layer and in the lowers; ``hidden``: an opaque
        # directory at or above rel hides what the lowers hold here (it was deleted and re-created)
        upper_path = os.path.join(upperdir, rel)
        names = set(os.listdir(upper_path))
        hidden = hidden or (bool(rel) and is_opaque(upper_path))
        vanished = set(lowers.listdir(rel)) - names if hidden else set()
        out: list[Change] = []
        for name in _sorted_names(names | vanished):
            child = _join(rel, name)
            if name in vanished:
                out.append(Change("D", "/" + child))
                continue
            path = os.path.join(upperdir, child)
            st = os.lstat(path)
            old = lowers.lookup(child)
            if is_whiteout(path, st):
                if old is not None:
                    out.append(Change("D", "/" + child))
            elif old is None:
                out.append(Change("A", "/" + child))
                if stat.S_ISDIR(st.st_mode):
                    out.extend(_all_added(upperdir, child))
            elif stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(old.st_mode):
                below = walk(child, hidden)
                if below or _owner_mode_differ(st, old):
                    out.append(Change("C", "/" + child))
                    out.extend(below)
            else:
                out.append(Change("C", "/" + child))
                if stat.S_ISDIR(st.st_mode):
                    out.extend(_all_added(upperdir, child))
        return out

    return walk("", False)


def copy_changes(rootfs: str, manifest: dict[str, ManifestEntry]) -> list[Change]:
    """Changes of a copy-mode root file system against the manifest written when it was copied."""
    children: dict[str, set[str]] = {}
    for path in manifest:
        parent, _, name = path.rpartition("/")
        children.setdefault(parent, set()).add(name)

    def walk(rel: str) -> list[Change]:
        key = "/" + rel if rel else ""
        try:
            now = set(os.listdir(os.path.join(rootfs, rel)))
        except (FileNotFoundError, NotADirectoryError):
            now = set()
        out: list[Change] = []
        for name in _sorted_names(now | children.get(key, set())):
            child = _join(rel, name)
            path = os.path.join(rootfs, child)
            old = manifest.get("/" + child)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if old is not None:
                    out.append(Change("D", "/" + child))
                continue
            if old is None:
                out.append(Change("A", "/" + child))
                if stat.S_ISDIR(st.st_mode):
                    out.extend(_all_added(rootfs, child))
                continue
            old_mode, old_uid, old_gid, old_size, old_mtime, old_ino, old_target = old
            new_is_dir = stat.S_ISDIR(st.st_mode)
            if new_is_dir and stat.S_ISDIR(old_mode):
                below = walk(child)
                if below or (st.st_mode, st.st_uid, st.st_gid) != (old_mode, old_uid, old_gid):
                    out.append(Change("C", "/" + child))
                    out.extend(below)
                continue
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            if (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ino, target) != \
                    (old_mode, old_uid, old_gid, old_size, old_mtime, old_ino, old_target):
                out.append(Change("C", "/" + child))
                if new_is_dir:
                    out.extend(_all_added(rootfs, child))
        return out

    return walk("")
