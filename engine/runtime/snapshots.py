"""Per-layer snapshots: each layer extracted once, in overlayfs format, shared by every container.

``$LAYERLAB_HOME/snapshots/<chain hex>/`` holds the files of one layer (not merged with the layers
below): whiteouts are 0/0 character devices (or ``user.overlay.whiteout`` files) and opaque
directories carry ``user.overlay.opaque``, so the directories of an image's layers, top first, are
its overlayfs ``lowerdir`` list. Snapshots are keyed by ChainID, extracted into a temporary directory
and renamed into place, so a crash or a concurrent extraction never leaves a half-made snapshot.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..digest import chain_ids, hex_of
from ..errors import NotFound
from ..store import Store


def snapshot_root(store: Store) -> Path:
    path = store.home / "snapshots"
    path.mkdir(exist_ok=True)
    return path


def _blob_for(store: Store, diff_id: str) -> str:
    for blob in store.layer_blobs(diff_id):
        if store.has_blob(blob.digest):
            return blob.digest
    raise NotFound(f"layer {diff_id} has no blob in the store")


def snapshot_dirs(store: Store, diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """Where the snapshots of a stack of layers are (bottom first in, top first out), made or not."""
    root = snapshot_root(store)
    return [str(root / hex_of(chain)) for chain in reversed(chain_ids(diff_ids))]


def ensure_lowerdirs(store: Store, image_id: str, lowerdirs: tuple[str, ...]) -> tuple[str, ...]:
    """A container's snapshot directories, made now if it was created without them."""
    if not all(os.path.isdir(d) for d in lowerdirs):
        from ..images import load_config

        ensure_snapshots(store, load_config(store, image_id).diff_ids)
    return lowerdirs


def ensure_snapshots(store: Store, diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """Snapshot directories for a stack of layers (bottom first in, top first out)."""
    root = snapshot_root(store)
    out: list[str] = []
    for diff_id, chain in zip(diff_ids, chain_ids(diff_ids)):
        target = root / hex_of(chain)
        if not target.is_dir():
            from ..extract import extract_layer

            tmp = str(root / f".tmp-{os.urandom(6).hex()}")
            os.mkdir(tmp, 0o700)
            try:
                extract_layer(store.blob_path(_blob_for(store, diff_id)), tmp, whiteouts="overlay")
                os.chmod(tmp, 0o755)
                try:
                    os.rename(tmp, target)
                except OSError:  # another process made it first
                    if not target.is_dir():
                        raise
            finally:
                if os.path.exists(tmp):
                    _remove_tree(tmp)
        out.append(str(target))
    out.reverse()
    return out


def _remove_tree(path: str) -> None:
    from .rootfs import remove_tree

    remove_tree(path)


def prune_snapshots(store: Store, keep: set[str]) -> list[str]:
    """Delete snapshots whose ChainID hex is not in ``keep``; return what was removed."""
    root = snapshot_root(store)
    removed = []
    for entry in root.iterdir():
        if entry.name.startswith(".tmp-") or entry.name not in keep:
            _remove_tree(str(entry))
            removed.append(entry.name)
    return removed


def snapshot_names(store: Store) -> list[str]:
    return sorted(p.name for p in snapshot_root(store).iterdir() if not p.name.startswith(".tmp-"))


__all__ = ["ensure_snapshots", "prune_snapshots", "snapshot_root", "snapshot_names"]
