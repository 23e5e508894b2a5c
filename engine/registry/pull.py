"""``docker pull``: an image from a registry into the store, verified before anything is kept.

The manifest is negotiated (OCI and Docker manifests, OCI indexes and Docker manifest lists; from
an index the host platform's entry is taken) and size-bounded; the config is verified against its
digest; every layer blob is hashed while it streams into a staged (uncommitted) blob, and unpacked
on the way into a staged layer (:mod:`.unpack`; up to 3 layers at once, as dockerd); its digest and
size are checked, then its DiffID against the config. Only when everything matched are the staged
blobs committed and layers, image, manifest, tag and repo digest recorded; on any mismatch nothing is
stored. Layers already stored are skipped (``Already exists``).
"""
from __future__ import annotations

import json
from collections.abc import Iterator

from .. import reference as refmod
from ..digest import is_digest, sha256_bytes, short_id
from ..errors import RegistryError
from ..images import register_config
from ..spec import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, INDEX_TYPES, MANIFEST_TYPES, OCI_CONFIG,
                    OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor, ImageConfig, Manifest, SpecError,
                    host_platform)
from ..store import Store
from .client import CHUNK, MANIFEST_LIMIT, RegistryClient
from .events import Header, LayerProgress, Pulled, TagDigest, TransferEvent
from .settings import Settings
from .transfer import Staging, StagedBlob, client_for, remember_blob
from .unpack import fetch_layer
from .workers import run_jobs
from ..values import value

CONFIG_LIMIT = 8 << 20
BLOB_LIMIT = 1 << 40            # refuse layer descriptors claiming more than 1 TiB
MAX_CONCURRENT_DOWNLOADS = 3    # dockerd's default --max-concurrent-downloads
PULLABLE_LAYERS = (OCI_LAYER, OCI_LAYER_GZIP, DOCKER_LAYER, DOCKER_LAYER_GZIP)


@value
class _Resolved:
    top_digest: str             # what the tag points at (an index's digest for multi-platform images)
    manifest: bytes
    manifest_digest: str
    media_type: str
    parsed: Manifest


def _media_type(data: bytes, header: str) -> str:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError("invalid manifest: not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError("invalid manifest: not a JSON object")
    mt = doc.get("mediaType") or header
    if not mt and isinstance(doc.get("manifests"), list):
        mt = OCI_INDEX
    if not mt and "config" in doc:
        mt = OCI_MANIFEST
    return str(mt)


def _pick_platform(data: bytes) -> Descriptor:
    doc = json.loads(data)
    want = host_platform()
    candidates = []
    for entry in doc.get("manifests") or []:
        try:
            d = Descriptor.from_dict(entry)
        except SpecError:
            continue
        if d.platform is None or d.media_type not in MANIFEST_TYPES:
            continue
        if d.platform.os == want.os and d.platform.architecture == want.architecture:
            exact = (d.platform.variant or None) == (want.variant or None)
            candidates.append((not exact, d))
    if not candidates:
        p = f"{want.os}/{want.architecture}" + (f"/{want.variant}" if want.variant else "")
        raise RegistryError(f"no matching manifest for {p} in the manifest list entries")
    return sorted(candidates, key=lambda c: c[0])[0][1]


def _check_descriptor(d: Descriptor, limit: int, what: str) -> None:
    if not is_digest(d.digest):
        raise RegistryError(f"invalid {what} digest {d.digest!r}")
    if d.size < 0 or d.size > limit:
        raise RegistryError(f"refusing {what} of {d.size} bytes (limit {limit})")


def resolve_manifest(client: RegistryClient, repo: str, ref: refmod.Reference) -> _Resolved:
    data, header = client.get_manifest(repo, ref.digest or ref.tag or "latest")
    top = sha256_bytes(data)
    if ref.digest and top != ref.digest:
        raise RegistryError(f"manifest verification failed for digest {ref.digest}")
    mt = _media_type(data, header)
    if mt in INDEX_TYPES:
        entry = _pick_platform(data)
        _check_descriptor(entry, MANIFEST_LIMIT, "manifest")
        data, header = client.get_manifest(repo, entry.digest)
        if sha256_bytes(data) != entry.digest or len(data) != entry.size:
            raise RegistryError(f"manifest verification failed for digest {entry.digest}")
        mt = _media_type(data, header)
    if mt not in MANIFEST_TYPES:
        raise RegistryError(f"unsupported manifest media type {mt!r}")
    try:
        parsed = Manifest.from_json(data)
    except SpecError as e:
        raise RegistryError(str(e)) from None
    if parsed.config.media_type not in (OCI_CONFIG, DOCKER_CONFIG):
        raise RegistryError(f"unsupported config media type {parsed.config.media_type!r}")
    _check_descriptor(parsed.config, CONFIG_LIMIT, "config")
    for d in parsed.layers:
        _check_descriptor(d, BLOB_LIMIT, "layer")
        if d.media_type not in PULLABLE_LAYERS:
            raise RegistryError(f"unsupported layer media type {d.media_type!r}")
    return _Resolved(top, data, sha256_bytes(data), mt, parsed)


def _fetch_config(client: RegistryClient, repo: str, d: Descriptor) -> bytes:
    resp = client.open_blob(repo, d.digest)
    with resp:
        parts, n = [], 0
        for chunk in resp.iter_content(CHUNK):
            n += len(chunk)
            if n > d.size:
                break
            parts.append(chunk)
    data = b"".join(parts)
    if n != d.size or sha256_bytes(data) != d.digest:
        raise RegistryError(f"image config verification failed for digest {d.digest}")
    return data


def pull_one(store: Store, client: RegistryClient, ref: refmod.Reference, *, last: bool = True
             ) -> Iterator[TransferEvent]:
    """Pull one tag or digest; ends with :class:`Pulled` (``last``) or :class:`TagDigest`. Returns changed."""
    repo = ref.path
    try:
        res = resolve_manifest(client, repo, ref)
    except RegistryError as e:
        if e.status == 404:
            raise RegistryError(f"manifest for {ref.familiar} not found: {e}", status=404, code=e.code) from None
        if e.status in (401, 403) and e.code in ("DENIED", "UNAUTHORIZED", "NAME_UNKNOWN"):
            raise RegistryError(f"pull access denied for {ref.familiar_repository}, repository does not exist or "
                                f"may require 'docker login': {e}", status=e.status, code=e.code) from None
        raise
    yield Header(f"{ref.digest or ref.tag}: Pulling from {repo}")
    image_id = res.parsed.config.digest
    fetched: dict = {}
    config = b""
    new_image = not store.has_image(image_id)
    if new_image:
        config = _fetch_config(client, repo, res.parsed.config)
        try:
            diff_ids = ImageConfig.from_json(config).diff_ids
        except SpecError as e:
            raise RegistryError(str(e)) from None
        if len(diff_ids) != len(res.parsed.layers):
            raise RegistryError(f"image config has {len(diff_ids)} layers, manifest {len(res.parsed.layers)}")
        fetched = yield from _fetch_layers(store, client, repo, res, diff_ids)
    with store.transaction():   # everything verified and its blobs stored: record it all at once
        for diff_id, (d, m) in fetched.items():
            store.add_layer(diff_id, m.size, m.tar_size)
            store.add_layer_blob(diff_id, diff_id, OCI_LAYER, m.tar_size)
            if d.digest != diff_id:
                store.add_layer_blob(d.digest, diff_id, d.media_type, d.size)
        if new_image:
            register_config(store, config)
        store.put_blob(res.manifest)
        store.add_manifest(image_id, res.manifest_digest, res.media_type)
        changed = new_image
        if ref.tag and not ref.digest:
            changed = store.set_tag(ref.string, ref.repository, image_id) != image_id or changed
        store.set_repo_digest(f"{ref.repository}@{res.top_digest}", ref.repository, image_id, res.top_digest)
    for d, _ in fetched.values():
        yield LayerProgress(short_id(d.digest), "Pull complete")
    for d in res.parsed.layers:
        remember_blob(store, client.host, repo, d.digest)
    if last:
        word = "Downloaded newer image for" if changed else "Image is up to date for"
        yield Pulled(ref.string, res.top_digest, image_id, f"{word} {ref.familiar}")
    else:
        yield TagDigest(res.top_digest)
    return changed


def _fetch_layers(store: Store, client: RegistryClient, repo: str, res: _Resolved, diff_ids: tuple[str, ...]):
    """Download, verify and store (uncommitted until all match) the missing layers, up to 3 at once as
    dockerd does; return them by DiffID."""
    layers = list(zip(res.parsed.layers, diff_ids))
    present = [store.has_layer(diff) and store.has_blob(diff) for _, diff in layers]
    for (d, _), have in zip(layers, present):
        yield LayerProgress(short_id(d.digest), "Already exists" if have else "Pulling fs layer")
    with Staging(store) as staging:
        todo: list[tuple[Descriptor, str, StagedBlob, StagedBlob | None]] = []
        for (d, diff_id), have in zip(layers, present):
            if not have and all(t[0].digest != d.digest for t in todo):
                todo.append((d, diff_id, staging.new(d.digest), staging.new(diff_id) if d.digest != diff_id else None))
        jobs = [_download_job(client, repo, *t) for t in todo]
        results = yield from run_jobs(jobs, MAX_CONCURRENT_DOWNLOADS)
        measured: dict = {}
        for (d, diff_id, _, _), m in zip(todo, results):
            if diff_id not in measured:
                yield LayerProgress(short_id(d.digest), "Extracting")
                measured[diff_id] = (d, m)
        staging.commit()
    return measured


def _download_job(client: RegistryClient, repo: str, d: Descriptor, diff_id: str, blob: StagedBlob,
                  layer: StagedBlob | None):
    def run(emit, cancelled):
        return fetch_layer(client, repo, d, diff_id, blob, layer, short_id(d.digest), emit, cancelled)
    return run


def pull(store: Store, name: str, settings: Settings, *, all_tags: bool = False) -> Iterator[TransferEvent]:
    """``docker pull [-a] NAME``; the last event is :class:`Pulled`."""
    ref = refmod.parse(name, default_tag=not all_tags)
    if all_tags and (ref.tag or ref.digest):
        raise RegistryError("tag can't be used with --all-tags/-a")
    with client_for(ref, settings) as client:
        if not all_tags:
            yield from pull_one(store, client, ref)
            return
        tags = sorted(client.tags(ref.path))
        if not tags:
            raise RegistryError(f"no tags found for {ref.familiar_repository}")
        changed = False
        for tag in tags:
            changed = (yield from pull_one(store, client, ref.with_tag(tag), last=False)) or changed
        word = "Downloaded newer image for" if changed else "Image is up to date for"
        yield Pulled(ref.repository, "", "", f"{word} {ref.familiar_repository}")
