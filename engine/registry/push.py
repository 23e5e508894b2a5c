"""``docker push``: a stored image's blobs and manifest to a registry, as a generator of events.

Per layer (top first, as Docker lists them): ``Preparing``; then, as dockerd decides: a layer the
store remembers in any repository (pushed or pulled before) is first looked up with a HEAD in the
target repository (``Layer already exists``); a layer another repository of the same registry holds
is mounted from it (``Mounted from <repo>``); else it is uploaded (``Pushing`` ticks, ``Pushed``): one
PUT streamed from disk, or, from ``chunk_threshold`` bytes, PATCH chunks with ``Content-Range``. Like
dockerd, up to 5 blobs move at once (:mod:`.workers`); the config blob (HEAD, upload if missing)
moves alongside the layers; the lines still come out in layer order. Then the manifest
(``Content-Type`` = its media type) and ``<tag>: digest: sha256:… size: N``; the store records the
repo digest and where each blob now is.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator

from .. import reference as refmod
from ..digest import sha256_bytes, short_id
from ..errors import RegistryError
from ..spec import ImageConfig
from ..store import Store
from ..values import value
from .client import RegistryClient
from .distributable import distributable
from .events import Header, LayerProgress, Pushed, TransferEvent
from .settings import Settings
from .transfer import BLOB_KEY, blob_sources, client_for, mark_pushed, remember_blob
from .workers import Emit, run_jobs

CHUNK_THRESHOLD = 64 << 20      # smaller blobs: one streamed PUT; larger: PATCH chunks, then the closing PUT
CHUNK_SIZE = 64 << 20
MAX_CONCURRENT_UPLOADS = 5      # dockerd's default --max-concurrent-uploads


@value
class _Blob:
    layer_id: str               # 12 hex of the DiffID; "" for the config (it has no line)
    digest: str
    size: int
    path: str
    check: bool                 # HEAD it first (the store remembers it somewhere)
    source: str | None          # another repository of this registry to mount it from


def push(store: Store, name: str, settings: Settings, *, chunk_threshold: int | None = CHUNK_THRESHOLD,
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
        blobs, seen = [], set()
        for layer in reversed(dist.layers):
            if layer.descriptor.digest not in seen:   # a layer twice in one image goes up once
                seen.add(layer.descriptor.digest)
                blobs.append(_plan(store, client.host, repo, short_id(layer.diff_id), layer.descriptor.digest,
                                   layer.descriptor.size))
        blobs.append(_Blob("", image_id, len(dist.config), str(store.blob_path(image_id)), True, None))
        jobs = [_job(client, repo, b, chunk_threshold, chunk_size) for b in blobs]
        done: list[str] = []
        try:
            for event in run_jobs(jobs, MAX_CONCURRENT_UPLOADS):
                if isinstance(event, LayerProgress) and event.status != "Pushing":
                    done.append(event.id)
                yield event
        finally:   # what reached the registry is remembered, even when another blob failed
            ids = set(done)
            with store.transaction():
                for b in blobs:
                    if b.layer_id in ids:
                        remember_blob(store, client.host, repo, b.digest)
        answered = client.put_manifest(repo, ref.tag or "latest", dist.manifest, dist.media_type)
        digest = sha256_bytes(dist.manifest)
        if answered and answered != digest:
            raise RegistryError(f"registry answered manifest digest {answered}, expected {digest}")
        with store.transaction():
            store.set_repo_digest(f"{ref.repository}@{digest}", ref.repository, image_id, digest)
            mark_pushed(store, ref, client.host, image_id, digest)
    yield Pushed(ref.tag or "latest", digest, len(dist.manifest))


def _plan(store: Store, host: str, repo: str, layer_id: str, digest: str, size: int) -> _Blob:
    """What dockerd would try for this layer, from what the store remembers (its v2 metadata)."""
    try:
        known = bool(json.loads(store.get_kv(BLOB_KEY + digest) or "[]"))
    except ValueError:
        known = False
    sources = blob_sources(store, host, digest, exclude=repo)
    return _Blob(layer_id, digest, size, str(store.blob_path(digest)), known, sources[0] if sources else None)


def _job(client: RegistryClient, repo: str, blob: _Blob, chunk_threshold: int | None, chunk_size: int):
    """One blob's requests (on a worker thread: network and the blob's file only, never the store)."""
    def run(emit: Emit, cancelled: threading.Event) -> None:
        def say(status: str, current: int = 0) -> None:
            if blob.layer_id:
                emit(LayerProgress(blob.layer_id, status, current, blob.size if current else 0))

        if blob.check and client.blob_exists(repo, blob.digest, "pull,push"):
            say("Layer already exists")
            return
        location = None
        if blob.source is not None:
            mounted, location = client.mount(repo, blob.digest, blob.source)
            if mounted:
                say(f"Mounted from {blob.source}")
                return
            # the registry opened an upload instead: use it
        location = location or client.start_upload(repo)
        with open(blob.path, "rb") as f:
            client.upload(repo, location, f, blob.size, blob.digest, chunk_threshold=chunk_threshold,
                          chunk_size=chunk_size, progress=lambda n: say("Pushing", n), cancelled=cancelled)
        say("Pushed")

    return run
