"""A container's writable layer as an image layer (``commit``), and its whole file system (``export``).

Both read the container's directories without mounting anything: the writable layer (overlayfs
``upper`` or the copy-mode root) and the image's snapshots, through :class:`.layerview.LayerStack`.
Ownership is mapped back to the container's ids (a rootless container's files belong to the student
on the host but to root in the image), so a commit is the same whoever runs LayerLab.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from ..errors import ContainerError
from ..layer import Entry, LayerDigest, Owner, entry_from_stat, write_tar
from ..store import Store
from .containers import Container, ContainerDirs
from .layerview import LayerStack

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms of a build)
if TYPE_CHECKING:
    from typing import BinaryIO


def owner_map() -> Owner:
    """Host ids → container ids: identity for real root, the student → root otherwise."""
    if os.geteuid() == 0:
        return lambda uid, gid: (uid, gid)
    me, my_gid = os.geteuid(), os.getegid()
    return lambda uid, gid: (0 if uid == me else 65534, 0 if gid == my_gid else 65534)


def entry_for(path: str, rel: str, owner: Owner) -> Entry | None:
    """A layer entry describing the host file ``path`` as ``rel``; None for sockets."""
    st = os.lstat(path)
    uid, gid = owner(st.st_uid, st.st_gid)
    return entry_from_stat(path, rel, st, uid, gid, xattrs=True)


def change_entries(container: Container, store: Store, owner: Owner | None = None) -> Iterator[Entry]:
    """The entries of a container's writable layer, from its ``diff`` (parents first)."""
    from .diff import diff

    owner = owner or owner_map()
    dirs = ContainerDirs(store, container.id)
    upper = str(dirs.upper)
    if not dirs.upper.exists():  # never started, nothing written: an empty layer
        return
    for change in diff((container.lowerdirs, upper)):
        rel = change.path.lstrip("/")
        if change.kind == "D":
            yield Entry(rel, "whiteout")
            continue
        entry = entry_for(os.path.join(upper, rel), rel, owner)
        if entry is not None:
            yield entry


def write_container_layer(container: Container, store: Store, out: BinaryIO, *, epoch: int | None = None) -> LayerDigest:
    """Write the container's changes as a layer tar to ``out``."""
    return write_tar(change_entries(container, store), out, epoch=epoch)


def merged_entries(layers: Sequence[str], owner: Owner, *, root: str = "") -> Iterator[Entry]:
    """Every entry of the merged view of overlay-format ``layers`` (top first), parents first."""
    view = LayerStack(layers)
    locate = view.locate  # never follows a symbolic link on the host

    def walk(rel: str) -> Iterator[Entry]:
        for name in view.listdir(rel):
            child = f"{rel}/{name}" if rel else name
            path = locate(child)
            if path is None:
                continue
            entry = entry_for(path, child, owner)
            if entry is None:
                continue
            yield entry
            if entry.kind == "dir":
                yield from walk(child)

    start = root.strip("/")
    if start:
        path = locate(start)
        if path is None:
            raise ContainerError(f"Could not find the file /{start} in container", exit_code=1)
        entry = entry_for(path, start, owner)
        if entry is not None:
            yield entry
            if entry.kind == "dir":
                yield from walk(start)
    else:
        yield from walk("")


def container_layers(container: Container, store: Store) -> list[str]:
    """The overlay-format directories of a container, top first (its writable layer included)."""
    dirs = ContainerDirs(store, container.id)
    from .rootfs import init_dir, manifest_path

    if os.path.exists(manifest_path(str(dirs.upper))):  # copy mode: upper is the whole root
        return [str(dirs.upper)]
    layers = [str(dirs.upper)] if dirs.upper.exists() else []
    if os.path.isdir(init_dir(str(dirs.upper))):
        layers.append(init_dir(str(dirs.upper)))
    from .snapshots import ensure_lowerdirs

    return layers + list(ensure_lowerdirs(store, container.image_id, container.lowerdirs))


def export(container: Container, store: Store, out: BinaryIO) -> LayerDigest:
    """``docker export``: the container's whole file system as one tar."""
    return write_tar(merged_entries(container_layers(container, store), owner_map()), out)

