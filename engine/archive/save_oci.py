"""The members of an OCI image layout, optionally with Docker 25's ``manifest.json``.

Each image is saved with the manifest it arrived with when that and all its blobs are still stored;
otherwise an OCI manifest is generated over the stored layer blobs.
"""
from __future__ import annotations

from typing import Any

from .. import reference as refmod
from ..digest import sha256_bytes
from ..errors import ArchiveError
from ..images import stored_manifest
from ..spec import (GZIP_LAYER_TYPES, IMAGE_NAME_ANNOTATION, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP,
                    OCI_MANIFEST, REF_NAME_ANNOTATION, Descriptor, ImageConfig, Manifest, Platform, canonical_json)
from ..store import Store
from .gojson import go_json_file
from .layout import OCI_LAYOUT, blob_name
from .selection import Selected, manifest_item, parents
from ..values import value
from .write import Entry, blob_entry, in_archive_order, stored_size


@value
class _OciImage:
    image_id: str
    media_type: str
    manifest: bytes
    digest: str
    layers: tuple[Descriptor, ...]
    platform: Platform | None


def _stored_manifest(store: Store, image_id: str) -> _OciImage | None:
    """A manifest the image arrived with, when it and all its blobs are still stored."""
    found = stored_manifest(store, image_id, prefer=OCI_MANIFEST)
    if found is None:
        return None
    return _OciImage(image_id, found.media_type, found.data, found.digest, found.manifest.layers, None)


def _generated_manifest(store: Store, image_id: str, config: bytes) -> _OciImage:
    """An OCI manifest over the stored layer blobs (uncompressed when available)."""
    layers = []
    for diff_id in ImageConfig.from_json(config).diff_ids:
        if store.has_blob(diff_id):
            layers.append(Descriptor(OCI_LAYER, diff_id, stored_size(store, diff_id)))
            continue
        rows = [r for r in store.layer_blobs(diff_id) if store.has_blob(r.digest)]
        if not rows:
            raise ArchiveError(f"layer {diff_id} is missing from the store")
        media_type = OCI_LAYER_GZIP if rows[0].media_type in GZIP_LAYER_TYPES else rows[0].media_type
        layers.append(Descriptor(media_type, rows[0].digest, rows[0].size))
    manifest = Manifest(Descriptor(OCI_CONFIG, image_id, len(config)), tuple(layers), OCI_MANIFEST)
    data = manifest.to_json()
    return _OciImage(image_id, OCI_MANIFEST, data, sha256_bytes(data), manifest.layers, None)


def _platform_of(config: bytes) -> Platform | None:
    parsed = ImageConfig.from_json(config)
    return Platform(parsed.architecture, parsed.os or "linux", parsed.variant) if parsed.architecture else None


def _oci_image(store: Store, image_id: str) -> _OciImage:
    config = store.read_blob(image_id)
    found = _stored_manifest(store, image_id) or _generated_manifest(store, image_id, config)
    return _OciImage(found.image_id, found.media_type, found.manifest, found.digest, found.layers,
                     _platform_of(config))


def _index_descriptor(img: _OciImage, ref: refmod.Reference | None) -> dict[str, Any]:
    annotations = {IMAGE_NAME_ANNOTATION: ref.string, REF_NAME_ANNOTATION: ref.tag or "latest"} if ref else {}
    return Descriptor(img.media_type, img.digest, len(img.manifest), tuple(sorted(annotations.items())),
                      img.platform).to_dict()


def oci_entries(store: Store, selected: list[Selected], *, docker_manifest: bool) -> list[Entry]:
    """Members of an OCI image layout; with ``docker_manifest`` also Docker 25's ``manifest.json``."""
    entries: dict[str, Entry] = {"blobs/": Entry("blobs/", is_dir=True),
                                 "blobs/sha256/": Entry("blobs/sha256/", is_dir=True)}
    index: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    parent_links = parents(store, selected)
    for sel in selected:
        img = _oci_image(store, sel.image_id)
        entries[blob_name(img.digest)] = Entry(blob_name(img.digest), data=img.manifest)
        for digest in (sel.image_id, *(d.digest for d in img.layers)):
            entries[blob_name(digest)] = blob_entry(store, blob_name(digest), digest)
        index.extend(_index_descriptor(img, ref) for ref in (sel.refs or (None,)))
        items.append(manifest_item(sel, parent_links, blob_name(sel.image_id),
                                   [blob_name(d.digest) for d in img.layers]))
    entries["oci-layout"] = Entry("oci-layout", data=OCI_LAYOUT)
    entries["index.json"] = Entry("index.json", data=canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}))
    if docker_manifest:
        entries["manifest.json"] = Entry("manifest.json", data=go_json_file(items))
    return in_archive_order(entries.values())
