"""``load``: images from a ``docker save`` archive or an OCI layout, verified, then stored.

Layers are measured (DiffIDs checked against the configs) before anything is written; blobs are
then stored, and layers, images, manifests and tags recorded in one store transaction.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..digest import sha256_bytes
from ..errors import ArchiveError
from ..images import register_config
from ..layer import decompressed, detect_compression, measure_tar
from ..spec import OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST, ImageConfig
from ..store import Store
from .plans import ImagePlan, LayerPlan, plans
from .source import LayoutDir, Source, stage_tar
from ..values import value

log = logging.getLogger(__package__)  # "engine.archive", as before the package split


@value
class LoadedImage:
    """One image ``load`` stored: its ID and the familiar references now pointing at it.

    ``skipped_refs`` holds OCI ``ref.name`` annotations that were only a tag (``latest``), which
    LayerLab does not turn into a name (see :func:`load`).
    """

    image_id: str
    tags: tuple[str, ...]
    skipped_refs: tuple[str, ...] = ()


@value
class _Measured:
    diff_id: str
    tar_size: int
    size: int
    compressed: bool


def _measure(store: Store, src: Source, member: str, expected: str) -> _Measured:
    compressed = detect_compression(src.head(member)) is not None
    if not compressed and store.has_layer(expected) and src.digest(member) == expected:
        row = store.layer(expected)  # already stored and byte-identical: nothing to re-read
        return _Measured(expected, row.tar_size, row.size, False)
    try:
        with src.open(member) as f:
            m = measure_tar(decompressed(f) if compressed else f)
    except (ArchiveError, OSError, EOFError) as e:
        raise ArchiveError(f"layer {member!r}: {e}") from None
    return _Measured(m.diff_id, m.tar_size, m.size, compressed)


def _verify_layers(store: Store, src: Source, image_plans: list[ImagePlan]) -> dict[str, _Measured]:
    measured: dict[str, _Measured] = {}
    for plan in image_plans:
        for i, layer in enumerate(plan.layers):
            if layer.member not in measured:
                measured[layer.member] = _measure(store, src, layer.member, layer.diff_id)
            actual = measured[layer.member].diff_id
            if actual != layer.diff_id:
                raise ArchiveError(f"layer {layer.member!r}: DiffID {actual} does not match "
                                   f"rootfs.diff_ids[{i}] {layer.diff_id} of image {plan.image_id}")
    return measured


def _store_layer_blobs(store: Store, src: Source, layer: LayerPlan, m: _Measured) -> None:
    if not store.has_blob(layer.diff_id):
        with src.open(layer.member) as f:
            store.put_blob_stream(decompressed(f) if m.compressed else f, expected=layer.diff_id)
    keep = layer.descriptor is not None and layer.descriptor.digest != layer.diff_id
    if keep and not store.has_blob(layer.descriptor.digest):  # type: ignore[union-attr]
        with src.open(layer.member) as f:
            store.put_blob_stream(f, expected=layer.descriptor.digest)  # type: ignore[union-attr]


def _record_layer(store: Store, src: Source, layer: LayerPlan, m: _Measured) -> None:
    store.add_layer(layer.diff_id, m.size, m.tar_size)
    store.add_layer_blob(layer.diff_id, layer.diff_id, OCI_LAYER, m.tar_size)
    d = layer.descriptor
    if d is not None and d.digest != layer.diff_id:
        store.add_layer_blob(d.digest, layer.diff_id, d.media_type or OCI_LAYER_GZIP, src.size(layer.member))


def _parents_first(image_plans: list[ImagePlan]) -> list[ImagePlan]:
    by_id = {p.image_id: p for p in image_plans}
    done: set[str] = set()
    out: list[ImagePlan] = []

    def visit(plan: ImagePlan, seen: frozenset[str]) -> None:
        if plan.image_id in done or plan.image_id in seen:
            return
        if plan.parent in by_id:
            visit(by_id[plan.parent], seen | {plan.image_id})
        done.add(plan.image_id)
        out.append(plan)

    for plan in image_plans:
        visit(plan, frozenset())
    return out


def _valid_parent(store: Store, plan: ImagePlan, config: ImageConfig) -> str | None:
    """The archive's Parent link, kept when that image is stored and its layers are a prefix."""
    if not plan.parent or not store.has_image(plan.parent):
        return None
    parent_layers = store.image_diff_ids(plan.parent)
    return plan.parent if list(config.diff_ids[: len(parent_layers)]) == parent_layers else None


def _commit(store: Store, src: Source, image_plans: list[ImagePlan], measured: dict[str, _Measured]) -> None:
    for plan in image_plans:
        store.put_blob(plan.config, expected=plan.image_id)
        if plan.manifest is not None:
            store.put_blob(plan.manifest)
        for layer in plan.layers:
            _store_layer_blobs(store, src, layer, measured[layer.member])
    with store.transaction():
        for plan in _parents_first(image_plans):
            for layer in plan.layers:
                _record_layer(store, src, layer, measured[layer.member])
            config = ImageConfig.from_json(plan.config)
            image_id, _ = register_config(store, plan.config, parent=_valid_parent(store, plan, config))
            if plan.manifest is not None:
                store.add_manifest(image_id, sha256_bytes(plan.manifest), plan.manifest_media_type or OCI_MANIFEST)
            for ref in plan.tags:
                store.set_tag(ref.string, ref.repository, image_id)


def _results(image_plans: list[ImagePlan]) -> list[LoadedImage]:
    """One result per image, in archive order, tags merged."""
    order: list[str] = []
    tags: dict[str, list[str]] = {}
    skipped: dict[str, list[str]] = {}
    for plan in image_plans:
        if plan.image_id not in tags:
            order.append(plan.image_id)
            tags[plan.image_id], skipped[plan.image_id] = [], []
        tags[plan.image_id] += [r.familiar for r in plan.tags if r.familiar not in tags[plan.image_id]]
        skipped[plan.image_id] += [s for s in plan.skipped_refs if s not in skipped[plan.image_id]]
    return [LoadedImage(i, tuple(tags[i]), tuple(skipped[i])) for i in order]


def _load_source(store: Store, src: Source) -> list[LoadedImage]:
    image_plans = plans(src)
    if not image_plans:
        raise ArchiveError("the archive holds no images")
    measured = _verify_layers(store, src, image_plans)
    _commit(store, src, image_plans, measured)
    results = _results(image_plans)
    for r in results:
        for s in r.skipped_refs:
            log.warning("image %s: OCI ref name %r is only a tag; image left untagged", r.image_id, s)
    return results


def load(store: Store, src: BinaryIO | str | os.PathLike[str]) -> list[LoadedImage]:
    """Load images from a ``docker save`` archive or an OCI layout, like ``docker load``.

    ``src`` is a binary stream or a path to a tar (plain, gzip, bzip2 or xz) or to a directory
    holding an OCI layout. Accepted: Docker's legacy archive, Docker 25+ archives (OCI layout with
    ``manifest.json``) and plain OCI layouts (nested indexes resolve to the host platform). Image
    IDs are the archive's config digests; layer DiffIDs and blob digests are verified before the
    store is changed. Tags move to the loaded images: ``RepoTags``, else the OCI annotation
    ``io.containerd.image.name``, else ``org.opencontainers.image.ref.name`` when it is a full
    ``name:tag`` (a bare tag such as ``latest`` is reported in ``skipped_refs``). Compressed layer
    blobs of OCI manifests are kept next to the uncompressed layer, with the manifest, so digests
    survive a later push or save.

    >>> [(i.image_id[:19], i.tags) for i in load(store, "busybox.tar")]   # doctest: +SKIP
    [('sha256:6a179f17c43d', ('busybox:latest',))]
    """
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if path.is_dir():
            return _load_source(store, LayoutDir(path))
        try:
            f = open(path, "rb")
        except OSError as e:
            raise ArchiveError(f"cannot open archive {str(path)!r}: {e.strerror or e}") from None
        with f:
            return load(store, f)
    workdir = Path(tempfile.mkdtemp(prefix="load-", dir=store.tmp_dir))
    try:
        return _load_source(store, stage_tar(src, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
