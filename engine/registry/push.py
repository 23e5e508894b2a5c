"""``docker push``: a stored image's blobs and manifest to a registry, as a generator of events.

Per layer (top first, as Docker lists them): ``Preparing``; then ``Layer already exists`` when a
HEAD finds the blob in the target repository, ``Mounted from <repo>`` when another repository of
the same registry (one the store remembers the blob in) lends it, else ``Pushing`` ticks and
``Pushed``. Small blobs go in one PUT, large ones in ``PATCH`` chunks with ``Content-Range``,
streamed from disk. Then the config blob, the manifest (``Content-Type`` = its media type), and
``<tag>: digest: sha256:… size: N``; the store records the repo digest.
"""
from __future__ import annotations

from collections.abc import Iterator

from .. import reference as refmod
from ..digest import sha256_bytes, short_id
from ..errors import RegistryError
from ..spec import ImageConfig
from ..store import Store
from .client import RegistryClient
from .distributable import distributable
from .events import Header, LayerProgress, Pushed, TransferEvent
from .settings import Settings
from .transfer import blob_sources, client_for, mark_pushed, remember_blob

CHUNK_THRESHOLD = 8 << 20       # blobs this large or larger are uploaded in PATCH chunks
CHUNK_SIZE = 32 << 20


def push(store: Store, name: str, settings: Settings, *, chunk_threshold: int = CHUNK_THRESHOLD,
         chunk_size: int = CHUNK_SIZE) -> Iterator[TransferEvent]:
    """Push ``name`` (``[host/]repo[:tag]``); the last event is :class:`Pushed`."""
    ref = refmod.parse(name)
    if ref.digest:
        raise RegistryError("cannot push a digest reference")
    yield Header(f"The push refers to repository [{ref.repository}]")
    row = store.tag(ref.string)
    if row is None:
        if any(t.repo == ref.repository for t in store.tags()):
            raise RegistryError(f"tag does not exist: {ref.familiar}")
        raise RegistryError(f"An image does not exist locally with the tag: {ref.familiar_repository}")
    image_id = row.image_id
    diff_ids = ImageConfig.from_json(store.read_blob(image_id)).diff_ids
    for diff_id in reversed(diff_ids):
        yield LayerProgress(short_id(diff_id), "Preparing")
    dist = distributable(store, image_id)
    with client_for(ref, settings) as client:
        repo = ref.path
        for layer in reversed(dist.layers):
            yield from _push_layer(store, client, repo, layer.descriptor.digest, layer.descriptor.size,
                                   short_id(layer.diff_id), chunk_threshold, chunk_size)
        if not client.blob_exists(repo, image_id, "pull,push"):
            location = client.start_upload(repo)
            with store.open_blob(image_id) as f:
                for _ in client.upload(repo, location, f, len(dist.config), image_id,
                                       chunk_threshold=chunk_threshold, chunk_size=chunk_size):
                    pass
        answered = client.put_manifest(repo, ref.tag or "latest", dist.manifest, dist.media_type)
        digest = sha256_bytes(dist.manifest)
        if answered and answered != digest:
            raise RegistryError(f"registry answered manifest digest {answered}, expected {digest}")
        for layer in dist.layers:
            remember_blob(store, client.host, repo, layer.descriptor.digest)
        store.set_repo_digest(f"{ref.repository}@{digest}", ref.repository, image_id, digest)
        mark_pushed(store, ref, client.host, image_id, digest)
    yield Pushed(ref.tag or "latest", digest, len(dist.manifest))


def _push_layer(store: Store, client: RegistryClient, repo: str, digest: str, size: int, layer_id: str,
                chunk_threshold: int, chunk_size: int) -> Iterator[TransferEvent]:
    if client.blob_exists(repo, digest, "pull,push"):
        remember_blob(store, client.host, repo, digest)
        yield LayerProgress(layer_id, "Layer already exists")
        return
    location = None
    for source in blob_sources(store, client.host, digest, exclude=repo):
        mounted, location = client.mount(repo, digest, source)
        if mounted:
            remember_blob(store, client.host, repo, digest)
            yield LayerProgress(layer_id, f"Mounted from {source}")
            return
        break   # the registry opened an upload instead: use it
    location = location or client.start_upload(repo)
    with store.open_blob(digest) as f:
        for done in client.upload(repo, location, f, size, digest, chunk_threshold=chunk_threshold,
                                  chunk_size=chunk_size):
            yield LayerProgress(layer_id, "Pushing", done, size)
    remember_blob(store, client.host, repo, digest)
    yield LayerProgress(layer_id, "Pushed")
