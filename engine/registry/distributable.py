"""The form of a stored image that goes to a registry: a manifest over config and compressed layers.

An image that arrived with a manifest (pulled, loaded) keeps it when its blobs are all stored, so
its digest survives a push. Otherwise LayerLab writes what ``docker push`` writes: a Docker v2
schema2 manifest (``application/vnd.docker.distribution.manifest.v2+json``, Go's three-space
indentation) over gzip-compressed layers. Compression is reproducible (:func:`engine.layer.gzip_stream`:
header mtime 0, fixed level) and done once: the gzip blob is recorded as another ``layer_blobs``
row of the layer, and the manifest is recorded for the image, so a re-push finds the same digests.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from ..errors import StoreError
from ..layer import gzip_stream
from ..spec import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, GZIP_LAYER_TYPES, Descriptor, ImageConfig
from ..store import Store
from ..values import value


@value
class DistLayer:
    descriptor: Descriptor      # as in the manifest (compressed digest, size, media type)
    diff_id: str


@value
class Distributable:
    image_id: str
    config: bytes
    config_descriptor: Descriptor
    manifest: bytes
    media_type: str
    digest: str
    layers: tuple[DistLayer, ...]     # bottom first, as in the manifest


def docker_manifest_json(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """A schema2 manifest as docker writes it (Go's MarshalIndent with three spaces, its key order)."""
    def desc(d: Descriptor) -> dict:
        return {"mediaType": d.media_type, "size": d.size, "digest": d.digest}

    doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": desc(config),
           "layers": [desc(d) for d in layers]}
    return json.dumps(doc, indent=3).encode()


def _stored(store: Store, image_id: str, config: bytes) -> Distributable | None:
    from ..images import stored_manifest

    found = stored_manifest(store, image_id, prefer=DOCKER_MANIFEST)
    if found is None:
        return None
    diff_ids = ImageConfig.from_json(config).diff_ids
    layers = tuple(DistLayer(d, diff) for d, diff in zip(found.manifest.layers, diff_ids))
    return Distributable(image_id, config, found.manifest.config, found.data, found.media_type, found.digest,
                         layers)


def compressed_blob(store: Store, diff_id: str, *, on_compress: Callable[[str], None] | None = None) -> Descriptor:
    """The gzip blob of a layer, made (once, reproducibly) when the store has none."""
    for row in store.layer_blobs(diff_id):
        if row.media_type in GZIP_LAYER_TYPES and store.has_blob(row.digest):
            return Descriptor(DOCKER_LAYER_GZIP, row.digest, row.size)
    if not store.has_blob(diff_id):
        raise StoreError(f"layer {diff_id} is missing from the store")
    if on_compress is not None:
        on_compress(diff_id)
    with store.open_blob(diff_id) as src, store.blob_writer(verify=False) as w:
        digest, size = gzip_stream(src, w)  # type: ignore[arg-type]  # gzip_stream hashes what it writes
        w.commit(digest)
    store.add_layer_blob(digest, diff_id, DOCKER_LAYER_GZIP, size)
    return Descriptor(DOCKER_LAYER_GZIP, digest, size)


def distributable(store: Store, image_id: str, *,
                  on_compress: Callable[[str], None] | None = None) -> Distributable:
    """The manifest, config and layer blobs to push for a stored image (compressing layers once)."""
    config = store.read_blob(image_id)
    found = _stored(store, image_id, config)
    if found is not None:
        return found
    diff_ids = ImageConfig.from_json(config).diff_ids
    layers = [compressed_blob(store, d, on_compress=on_compress) for d in diff_ids]
    config_desc = Descriptor(DOCKER_CONFIG, image_id, len(config))
    data = docker_manifest_json(config_desc, layers)
    digest = store.put_blob(data)
    store.add_manifest(image_id, digest, DOCKER_MANIFEST)
    return Distributable(image_id, config, config_desc, data, DOCKER_MANIFEST, digest,
                         tuple(DistLayer(d, diff) for d, diff in zip(layers, diff_ids)))

