"""What push and pull share: which host and credentials a reference means, and what the store
remembers about registries.

The store's ``kv`` table keeps, per blob digest, the (registry host, repository) pairs it was
pushed to or pulled from (``registry.blob:<digest>``), so a push to another repository of the same
registry can mount the blob instead of uploading it, as Docker's v2 metadata service does; and,
under ``registry.pushed``, a JSON object ``{"<repository>:<tag>": {"digest", "image_id", "host"}}``
of what was pushed (for the layer graph).
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

from .. import reference as refmod
from ..graph import PUSHED_KEY
from ..store import BlobWriter, Store
from . import credentials
from .client import RegistryClient
from .events import TransferEvent
from .settings import Settings

BLOB_KEY = "registry.blob:"
MAX_SOURCES = 16        # remembered repositories per blob


def client_for(ref: refmod.Reference, settings: Settings) -> RegistryClient:
    """A client for the registry a reference names (Docker Hub → the mirror unless the Internet is allowed)."""
    host = settings.registry_host(ref.domain)
    creds = credentials.get(host, hub=ref.is_docker_hub)
    return RegistryClient(host, settings, creds)


def remember_blob(store: Store, host: str, repo: str, digest: str) -> None:
    key = BLOB_KEY + digest
    with store.transaction():
        try:
            known = json.loads(store.get_kv(key) or "[]")
        except ValueError:
            known = []
        entry = [host, repo]
        known = [e for e in known if e != entry] + [entry]
        store.set_kv(key, json.dumps(known[-MAX_SOURCES:]))


def blob_sources(store: Store, host: str, digest: str, exclude: str) -> list[str]:
    """Other repositories of ``host`` that the store knows hold ``digest`` (most recent first)."""
    try:
        known = json.loads(store.get_kv(BLOB_KEY + digest) or "[]")
    except ValueError:
        return []
    return [r for h, r in reversed(known) if h == host and r != exclude]


def mark_pushed(store: Store, ref: refmod.Reference, host: str, image_id: str, digest: str) -> None:
    with store.transaction():
        try:
            pushed = json.loads(store.get_kv(PUSHED_KEY) or "{}")
        except ValueError:
            pushed = {}
        pushed[f"{ref.repository}:{ref.tag}"] = {"digest": digest, "image_id": image_id, "host": host,
                                                  "time": time.time()}
        store.set_kv(PUSHED_KEY, json.dumps(pushed, sort_keys=True))


class StagedBlob(BlobWriter):
    """A blob being written that can be read back before it is committed (or aborted)."""

    @property
    def path(self) -> str:
        return self._tmp

    def flush(self) -> None:
        self._f.flush()


class Staging:
    """Blobs written during a transfer: committed together at the end, or all removed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.blobs: list[tuple[StagedBlob, str]] = []

    def new(self, digest: str) -> StagedBlob:
        w = StagedBlob(self.store, verify=False)   # the transfer hashes what it writes
        self.blobs.append((w, digest))
        return w

    def commit(self) -> None:
        for w, digest in self.blobs:
            if w.digest is None:
                if self.store.has_blob(digest):
                    w.abort()
                else:
                    w.commit(digest)
        self.blobs.clear()

    def abort(self) -> None:
        for w, _ in self.blobs:
            if w.digest is None:
                w.abort()
        self.blobs.clear()

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()


def events_text(events: Iterator[TransferEvent]) -> str:
    """Everything a transfer prints, as docker would (for tests and notebooks)."""
    from .events import render

    return "\n".join(line for line in (render(e) for e in events) if line is not None)
