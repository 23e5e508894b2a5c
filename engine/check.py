"""``layerlab system check``: verify every blob digest and every reference in a store."""
from __future__ import annotations

import hashlib
import json

from .digest import CHUNK
from .spec import ImageConfig, SpecError
from .store import Store
from .values import value


@value
class Problem:
    kind: str      # "corrupt-blob", "missing-blob", "dangling-tag", ...
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@value
class CheckReport:
    blobs: int
    images: int
    layers: int
    tags: int
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _hash_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return "sha256:" + h.hexdigest()


def check_store(store: Store, extra_checks=()) -> CheckReport:
    """Verify blobs against their names, then every metadata reference. Reads every blob once."""
    problems: list[Problem] = []
    present: set[str] = set()
    for p in sorted(store.blob_dir.iterdir()):
        name = "sha256:" + p.name
        if len(p.name) != 64 or not p.is_file():
            problems.append(Problem("stray-file", str(p), "not a blob"))
            continue
        present.add(name)
        actual = _hash_file(p)
        if actual != name:
            problems.append(Problem("corrupt-blob", name, f"content hashes to {actual}"))

    layers = {row.diff_id: row for row in store.layers()}
    blobs_by_layer: dict[str, list[str]] = {}
    for b in store.all_layer_blobs():
        blobs_by_layer.setdefault(b.diff_id, []).append(b.digest)
        if b.digest not in present:
            problems.append(Problem("missing-blob", b.digest, f"blob of layer {b.diff_id} is missing"))
        if b.diff_id not in layers:
            problems.append(Problem("dangling-layer-blob", b.digest, f"layer {b.diff_id} is not recorded"))
    for diff_id in layers:
        if not blobs_by_layer.get(diff_id):
            problems.append(Problem("missing-blob", diff_id, "layer has no stored blob"))

    images = store.images()
    image_ids = {row.id for row in images}
    for row in images:
        if row.id not in present:
            problems.append(Problem("missing-blob", row.id, "config of image is missing"))
            continue
        try:
            config = ImageConfig.from_json(store.read_blob(row.id))
        except (SpecError, json.JSONDecodeError) as e:
            problems.append(Problem("bad-config", row.id, str(e)))
            continue
        recorded = store.image_diff_ids(row.id)
        if list(config.diff_ids) != recorded:
            problems.append(Problem("bad-image", row.id, "recorded layers differ from the config's diff_ids"))
        for d in config.diff_ids:
            if d not in layers:
                problems.append(Problem("missing-layer", row.id, f"layer {d} is not in the store"))
        if row.parent and row.parent not in image_ids:
            problems.append(Problem("dangling-parent", row.id, f"parent {row.parent} does not exist"))
    for image_id, digest in store.all_manifests():
        if digest not in present:
            problems.append(Problem("missing-blob", digest, f"manifest of {image_id} is missing"))
    tags = store.tags()
    for t in tags:
        if t.image_id not in image_ids:
            problems.append(Problem("dangling-tag", t.ref, f"points at missing image {t.image_id}"))
    for d in store.repo_digests():
        if d.image_id not in image_ids:
            problems.append(Problem("dangling-digest", d.ref, f"points at missing image {d.image_id}"))
    for check in extra_checks:
        problems.extend(check(store))

    notes = []
    orphans = sorted(present - _referenced(store))
    if orphans:
        notes.append(f"{len(orphans)} unreferenced blob(s) (left by an interrupted write; removed by `layerlab image prune`)")
    return CheckReport(len(present), len(images), len(layers), len(tags), tuple(problems), tuple(notes))


def _referenced(store: Store) -> set[str]:
    """Every blob an image, a layer or a manifest refers to."""
    return {r.id for r in store.images()} | {b.digest for b in store.all_layer_blobs()} | \
        {d for _, d in store.all_manifests()}


def orphan_blobs(store: Store) -> list[str]:
    """Blobs no image, layer or manifest refers to."""
    return sorted(set(store.blob_digests()) - _referenced(store))
