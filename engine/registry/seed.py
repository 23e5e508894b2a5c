"""Seed a hub with the bootstrapped images as official repositories: ``library/busybox``, ``library/hello-world``.

Each image is written straight into registry storage as ``docker push`` would send it: the config
blob, gzip-compressed layers (reproducible: :func:`engine.layer.gzip_stream`) and a Docker v2
schema2 manifest with Go's three-space indentation, tagged ``latest``. (A minimal stand-in for the
registry client's ``distributable`` module, which lives on another branch.)
"""
from __future__ import annotations

import json
import uuid

from ..images import resolve
from ..layer import gzip_stream
from ..spec import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, GZIP_LAYER_TYPES, ImageConfig
from ..store import Store
from .storage import RegistryStorage

OFFICIAL = {
    "busybox": "Busybox base image.",
    "hello-world": "Hello World! (an example of minimal Dockerization)",
}


def _layer(store: Store, storage: RegistryStorage, repo: str, diff_id: str) -> dict:
    if not store.has_blob(diff_id):  # only a compressed form is stored (a pulled image)
        for row in store.layer_blobs(diff_id):
            if row.media_type in GZIP_LAYER_TYPES and store.has_blob(row.digest):
                storage.put_blob_file(repo, _copy(store, storage, row.digest), row.digest)
                return {"mediaType": DOCKER_LAYER_GZIP, "size": row.size, "digest": row.digest}
        raise FileNotFoundError(f"layer {diff_id} is not in the store")
    tmp = storage.uploads / f".seed-{uuid.uuid4().hex}"
    with store.open_blob(diff_id) as src, open(tmp, "wb") as out:
        digest, size = gzip_stream(src, out)
    storage.put_blob_file(repo, tmp, digest)
    return {"mediaType": DOCKER_LAYER_GZIP, "size": size, "digest": digest}


def _copy(store: Store, storage: RegistryStorage, digest: str):
    tmp = storage.uploads / f".seed-{uuid.uuid4().hex}"
    with store.open_blob(digest) as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    return tmp


def push_image(store: Store, storage: RegistryStorage, image: str, repo: str, tag: str = "latest") -> tuple[str, int]:
    """Write stored ``image`` as ``repo:tag``; returns (manifest digest, manifest size)."""
    image_id = resolve(store, image)
    config = store.read_blob(image_id)
    storage.put_blob(repo, config)
    layers = [_layer(store, storage, repo, d) for d in ImageConfig.from_json(config).diff_ids]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                           "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": image_id},
                           "layers": layers}, indent=3).encode()
    return storage.put_manifest(repo, manifest, DOCKER_MANIFEST, tag), len(manifest)


def seed(store: Store, storage: RegistryStorage) -> list[str]:
    """Publish busybox:latest and hello-world:latest as library/…; one line per image, like docker push's last."""
    from .hub import Hub

    hub = Hub(storage)
    lines = []
    for name, description in OFFICIAL.items():
        repo = f"library/{name}"
        digest, size = push_image(store, storage, f"{name}:latest", repo)
        if not hub.description(repo):
            hub.describe(repo, description)
        lines.append(f"{repo}:latest: digest: {digest} size: {size}")
    return lines
