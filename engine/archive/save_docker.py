"""The members of a Docker 20.10 ``docker save`` archive.

``manifest.json``, ``repositories``, ``<image id hex>.json`` and one ``<v1 id>/`` directory per
layer (``VERSION``, ``json``, ``layer.tar``); a layer shared by several images is stored once and
linked from the others by a relative symlink, as moby does.
"""
from __future__ import annotations

import posixpath
from typing import Any

from ..digest import hex_of
from ..errors import ArchiveError
from ..store import Store
from .gojson import go_json_file
from .selection import Selected, manifest_item, parents
from .v1 import v1_layers
from .write import Entry, blob_entry, in_archive_order


def _layer_entry(store: Store, name: str, diff_id: str) -> Entry:
    """The uncompressed tar of a stored layer (a gzip blob is inflated on the fly if needed)."""
    if store.has_blob(diff_id):
        return blob_entry(store, name, diff_id)
    for row in store.layer_blobs(diff_id):
        if store.has_blob(row.digest) and store.has_layer(diff_id):
            return Entry(name, blob=row.digest, blob_size=store.layer(diff_id).tar_size, decompress=True)
    raise ArchiveError(f"layer {diff_id} is missing from the store")


def docker_entries(store: Store, selected: list[Selected]) -> list[Entry]:
    """Members of a Docker 20.10 ``docker save`` archive."""
    entries: dict[str, Entry] = {}
    items: list[dict[str, Any]] = []
    repos: dict[str, dict[str, str]] = {}
    diff_paths: dict[str, str] = {}
    parent_links = parents(store, selected)

    def put(entry: Entry) -> None:
        entries[entry.name] = entry

    for sel in selected:
        raw = store.read_blob(sel.image_id)
        layers = v1_layers(raw)
        if not layers:
            raise ArchiveError(f"empty export - not implemented: image {sel.image_id} has no layers "
                               "(save it in the OCI format instead)")
        for layer in layers:
            if f"{layer.v1_id}/" in entries:
                continue
            put(Entry(f"{layer.v1_id}/", is_dir=True))
            put(Entry(f"{layer.v1_id}/VERSION", data=b"1.0"))
            put(Entry(f"{layer.v1_id}/json", data=layer.json))
            tar_name = f"{layer.v1_id}/layer.tar"
            if layer.diff_id in diff_paths:
                put(Entry(tar_name, linkname=posixpath.relpath(diff_paths[layer.diff_id], layer.v1_id)))
            else:
                put(_layer_entry(store, tar_name, layer.diff_id))
                diff_paths[layer.diff_id] = tar_name
        config_name = hex_of(sel.image_id) + ".json"
        put(Entry(config_name, data=raw))
        items.append(manifest_item(sel, parent_links, config_name,
                                   [f"{layer.v1_id}/layer.tar" for layer in layers]))
        for r in sel.refs:
            repos.setdefault(r.familiar_repository, {})[r.tag or "latest"] = layers[-1].v1_id
    put(Entry("manifest.json", data=go_json_file(items)))
    if repos:
        ordered = {k: dict(sorted(v.items())) for k, v in sorted(repos.items())}
        put(Entry("repositories", data=go_json_file(ordered)))
    return in_archive_order(entries.values())
