"""Image operations on a store: create, resolve, tag, remove, list, history, inspect.

These are plain functions over :class:`engine.store.Store` that return values; the
:class:`engine.api.Engine` facade wraps them and emits events.
"""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from datetime import datetime, timezone

from . import reference as refmod
from .digest import chain_ids, short_id
from .errors import Conflict, ImageNotFound, InvalidReference
from .spec import MANIFEST_TYPES, OCI_LAYER, ImageConfig, Manifest, SpecError
from .store import Store
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from typing import BinaryIO

    from .layer import LayerDigest


# --- time helpers ---------------------------------------------------------------------------

def rfc3339(ts: float) -> str:
    """A UTC timestamp as Go's RFC3339Nano prints it (no trailing zeros)."""
    dt = datetime.fromtimestamp(ts, timezone.utc)
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC3339 timestamp with up to nanoseconds; None when absent or invalid."""
    if not value:
        return None
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    if "." in v:
        head, _, rest = v.partition(".")
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        v = head + "." + rest[:i][:6].ljust(6, "0") + rest[i:]
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def now_or_epoch() -> float:
    """``SOURCE_DATE_EPOCH`` when set (reproducible mode), else the current time."""
    v = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if v.isdigit():
        return float(v)
    import time
    return time.time()


# --- layers and images -------------------------------------------------------------------------

def add_layer_from_stream(store: Store, stream: BinaryIO) -> LayerDigest:
    """Store a (possibly compressed) layer tar uncompressed; return its identity.

    The tar structure is checked before the layer is recorded; member safety is checked again on
    extraction (:mod:`engine.extract`).
    """
    from .layer import decompressed, measure_tar

    src = decompressed(stream)
    digest, size = store.put_blob_stream(src)
    with store.open_blob(digest) as f:
        measured = measure_tar(f)
    store.add_layer(digest, measured.size, measured.tar_size)
    store.add_layer_blob(digest, digest, OCI_LAYER, size)
    return measured


def add_layer_from_dir(store: Store, root: str | os.PathLike[str], *, epoch: int | None = None) -> LayerDigest:
    """Store the tree under ``root`` as a reproducible layer."""
    from .layer import tar_directory

    with store.blob_writer(verify=False) as w:  # the tar writer hashes every byte it writes
        result = tar_directory(root, w, epoch=epoch)  # type: ignore[arg-type]
        w.commit(result.diff_id)
    store.add_layer(result.diff_id, result.size, result.tar_size)
    store.add_layer_blob(result.diff_id, result.diff_id, OCI_LAYER, result.tar_size)
    return result


def add_layer_from_entries(store: Store, entries: Iterable, *, epoch: int | None = None) -> LayerDigest:
    """Store a layer written from :class:`engine.layer.Entry` values."""
    from .layer import write_tar

    with store.blob_writer(verify=False) as w:  # the tar writer hashes every byte it writes
        result = write_tar(entries, w, epoch=epoch)  # type: ignore[arg-type]
        w.commit(result.diff_id)
    store.add_layer(result.diff_id, result.size, result.tar_size)
    store.add_layer_blob(result.diff_id, result.diff_id, OCI_LAYER, result.tar_size)
    return result


def register_config(store: Store, config_bytes: bytes, *, parent: str | None = None,
                    built_locally: bool = False) -> tuple[str, bool]:
    """Store config bytes and record the image; every layer must already be stored.

    Returns the image ID and whether the image is new.
    """
    config = ImageConfig.from_json(config_bytes)
    size = 0
    for diff_id in config.diff_ids:
        size += store.layer(diff_id).size
    image_id = store.put_blob(config_bytes)
    new = store.add_image(image_id, config.diff_ids, parent=parent, built_locally=built_locally,
                          created=config.created, size=size)
    return image_id, new


@value
class StoredManifest:
    """A manifest an image arrived with (pulled or loaded): its digest, media type and exact bytes."""

    digest: str
    media_type: str
    data: bytes
    manifest: Manifest


def stored_manifest(store: Store, image_id: str, *, prefer: str) -> StoredManifest | None:
    """The manifest of ``image_id`` that is still whole in the store (``prefer``'s media type first).

    Whole: its bytes, its config (the image) and every layer blob it names are stored, one per layer.
    """
    layer_count = len(store.image_diff_ids(image_id))
    for digest, media_type in sorted(store.manifests(image_id), key=lambda r: r[1] != prefer):
        if media_type not in MANIFEST_TYPES or not store.has_blob(digest):
            continue
        data = store.read_blob(digest)
        try:
            manifest = Manifest.from_json(data)
        except SpecError:
            continue
        if manifest.config.digest != image_id or len(manifest.layers) != layer_count:
            continue
        if all(store.has_blob(d.digest) for d in manifest.layers):
            return StoredManifest(digest, media_type, data, manifest)
    return None


def load_config(store: Store, image_id: str) -> ImageConfig:
    """The parsed config of a stored image."""
    return ImageConfig.from_json(store.read_blob(image_id))


# --- resolving ---------------------------------------------------------------------------------

def resolve(store: Store, name_or_id: str) -> str:
    """Image ID for a reference or (short) ID, Docker's order: tag/digest first, then ID prefix."""
    text = name_or_id
    if refmod.is_full_id(text):
        iid = text if text.startswith("sha256:") else "sha256:" + text
        if store.has_image(iid):
            return iid
        raise ImageNotFound(name_or_id)
    try:
        ref = refmod.parse(text)
    except InvalidReference:
        ref = None
    if ref is not None:
        if ref.digest:
            row = store.repo_digest(f"{ref.repository}@{ref.digest}")
            if row:
                return row.image_id
        else:
            row_t = store.tag(ref.string)
            if row_t:
                return row_t.image_id
    if refmod.looks_like_id(text):
        hexpart = text.removeprefix("sha256:")
        matches = store.image_ids_with_prefix("sha256:" + hexpart)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict(f"ambiguous image ID {text!r}: {len(matches)} images match")
    if ref is None and not refmod.looks_like_id(text):
        raise InvalidReference("invalid reference format")
    raise ImageNotFound(name_or_id)


def is_id_prefix(image_id: str, text: str) -> bool:
    """Whether ``text`` names ``image_id`` by ID (full or prefix) rather than by name."""
    return refmod.looks_like_id(text) and image_id.removeprefix("sha256:").startswith(text.removeprefix("sha256:"))


def tag_image(store: Store, image_id: str, target: str) -> refmod.Reference:
    """Point ``target`` (``name[:tag]``) at an image; a digest in the target is refused."""
    ref = refmod.parse(target)
    if ref.digest:
        raise InvalidReference("refusing to create a tag with a digest reference")
    store.set_tag(ref.string, ref.repository, image_id)
    return ref


def references(store: Store, image_id: str) -> list[tuple[refmod.Reference, bool]]:
    """All references to an image as (reference, is_digest)."""
    out = [(refmod.parse(t.ref), False) for t in store.tags_for(image_id)]
    out += [(refmod.parse(d.ref), True) for d in store.repo_digests_for(image_id)]
    return out


# --- removal (moby daemon/images/image_delete.go semantics) -------------------------------------

@value
class DeleteRecord:
    """One line of ``docker rmi`` output: ``Untagged: <ref>`` or ``Deleted: <id>``."""

    action: str   # "Untagged" or "Deleted"
    value: str


_CHILD, _RUNNING, _REFERENCE, _STOPPED = 1, 2, 4, 8
_HARD = _CHILD | _RUNNING
_SOFT = _REFERENCE | _STOPPED


@value
class ContainerUse:
    """A container that uses an image (rows from the runtime)."""

    id: str
    image_id: str
    running: bool


class _DeleteConflict(Conflict):
    def __init__(self, image_id: str, message: str, *, hard: bool, used: bool = False) -> None:
        force = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id(image_id)} ({force}) - {message}")
        self.hard, self.used = hard, used


def _remove_ref(store: Store, ref: refmod.Reference, is_digest: bool) -> None:
    if is_digest:
        store.remove_repo_digest(ref.string)
    else:
        store.remove_tag(ref.string)


def _check_conflict(store: Store, image_id: str, mask: int, uses: list[ContainerUse]) -> _DeleteConflict | None:
    if mask & _CHILD and store.children(image_id):
        return _DeleteConflict(image_id, "image has dependent child images", hard=True)
    if mask & _RUNNING:
        for c in uses:
            if c.image_id == image_id and c.running:
                return _DeleteConflict(image_id, f"image is being used by running container {short_id(c.id)}",
                                       hard=True, used=True)
    if mask & _REFERENCE and references(store, image_id):
        return _DeleteConflict(image_id, "image is referenced in one or more repositories", hard=False)
    if mask & _STOPPED:
        for c in uses:
            if c.image_id == image_id and not c.running:
                return _DeleteConflict(image_id, f"image is being used by stopped container {short_id(c.id)}",
                                       hard=False, used=True)
    return None


def _is_single_reference(refs: list[tuple[refmod.Reference, bool]]) -> bool:
    if not refs:
        return True
    single = None
    canonical: set[str] = set()
    for ref, is_digest in refs:
        if is_digest:
            canonical.add(ref.repository)
        elif single is None:
            single = ref
        else:
            return False
    if single is None:
        single = refs[0][0]
    return not canonical or (single.repository in canonical and len(canonical) == 1)


def delete_image(store: Store, text: str, *, force: bool = False, prune: bool = True,
                 uses: list[ContainerUse] | None = None) -> list[DeleteRecord]:
    """``docker rmi`` for one argument; returns the Untagged/Deleted records in Docker's order."""
    uses = uses or []
    image_id = resolve(store, text)
    records: list[DeleteRecord] = []
    removed_repository_ref = False
    with store.transaction():
        refs = references(store, image_id)
        if not is_id_prefix(image_id, text):
            if not force and _is_single_reference(refs):  # moby: another tag keeps the image named
                for c in uses:
                    if c.image_id == image_id:
                        raise Conflict(f'conflict: unable to remove repository reference "{text}" (must force) - '
                                       f"container {short_id(c.id)} is using its referenced image {short_id(image_id)}")
            parsed = refmod.parse(text)
            _remove_ref(store, parsed, bool(parsed.digest))
            records.append(DeleteRecord("Untagged", parsed.familiar))
            refs = references(store, image_id)
            if not parsed.digest:
                if not any(not d and r.repository == parsed.repository for r, d in refs):
                    remaining = []
                    for r, d in refs:
                        if d and r.repository == parsed.repository:
                            _remove_ref(store, r, True)
                            records.append(DeleteRecord("Untagged", r.familiar))
                        else:
                            remaining.append((r, d))
                    refs = remaining
            if refs:
                return records
            removed_repository_ref = True
        else:
            if _is_single_reference(refs):
                mask = _HARD | (0 if force else (_SOFT & ~_REFERENCE))
                conflict = _check_conflict(store, image_id, mask, uses)
                if conflict:
                    raise conflict
                for r, d in refs:
                    _remove_ref(store, r, d)
                    records.append(DeleteRecord("Untagged", r.familiar))
        _delete_helper(store, image_id, records, force=force, prune=prune, quiet=removed_repository_ref, uses=uses)
    return records


def _is_dangling(store: Store, image_id: str) -> bool:
    return not references(store, image_id) and not store.children(image_id)


def _delete_helper(store: Store, image_id: str, records: list[DeleteRecord], *, force: bool, prune: bool,
                   quiet: bool, uses: list[ContainerUse]) -> None:
    while True:
        mask = _HARD | (0 if force else _SOFT)
        conflict = _check_conflict(store, image_id, mask, uses)
        if conflict:
            if quiet and (not _is_dangling(store, image_id) or conflict.used):
                return
            raise conflict
        parent = store.image(image_id).parent
        for r, d in references(store, image_id):
            _remove_ref(store, r, d)
            records.append(DeleteRecord("Untagged", r.familiar))
        released = _delete_image_record(store, image_id)
        records.append(DeleteRecord("Deleted", image_id))
        records.extend(DeleteRecord("Deleted", c) for c in released)
        if not prune or not parent or not store.has_image(parent):
            return
        image_id, force, quiet = parent, False, True


def _delete_image_record(store: Store, image_id: str) -> list[str]:
    """Delete an image row, then layers no other image uses; return released ChainIDs, top first."""
    diff_ids = store.image_diff_ids(image_id)
    chains = chain_ids(diff_ids)
    store.delete_image_row(image_id)
    needed = image_used_chain_ids(store)
    released = [c for c in reversed(chains) if c not in needed]
    # a chain below a needed chain is needed too; released chains are therefore a top run
    for d in set(diff_ids):
        if not store.images_using_layer(d):
            store.delete_layer(d)
    store.delete_blob(image_id)
    return released


# --- listing -------------------------------------------------------------------------------

@value
class ImageSummary:
    """One image as ``docker images`` sees it (before it is split into table rows)."""

    id: str
    repo_tags: tuple[str, ...]        # familiar "repo:tag"
    repo_digests: tuple[str, ...]     # familiar "repo@sha256:..."
    created: float                    # unix seconds
    size: int
    parent: str | None
    added: float


def _created_ts(created: str | None) -> float:
    dt = parse_time(created)
    return dt.timestamp() if dt else 0.0


def _match_reference(pattern: str, ref: refmod.Reference) -> bool:
    """Docker's ``reference`` filter: glob over the familiar name, with the tag when given."""
    pat_name, _, pat_tag = pattern.partition(":") if "/" not in pattern.rpartition(":")[2] else (pattern, "", "")
    if "@" in pattern:
        return fnmatch.fnmatchcase(ref.familiar, pattern)
    name_ok = fnmatch.fnmatchcase(ref.familiar_repository, pat_name) or \
        fnmatch.fnmatchcase(ref.repository, pat_name)
    if not name_ok:
        return False
    return not pat_tag or fnmatch.fnmatchcase(ref.tag or "", pat_tag)


def list_images(store: Store, *, all: bool = False, reference: str | None = None) -> list[ImageSummary]:
    """``docker images`` as data, newest first (ties: most recently added first)."""
    tags: dict[str, list[str]] = {}
    for t in store.tags():
        tags.setdefault(t.image_id, []).append(t.ref)
    digests: dict[str, list[str]] = {}
    for d in store.repo_digests():
        digests.setdefault(d.image_id, []).append(d.ref)
    rows = store.images()
    parents = {row.parent for row in rows if row.parent}
    out: list[ImageSummary] = []
    for row in rows:
        rt = [refmod.parse(r) for r in tags.get(row.id, [])]
        rd = [refmod.parse(r) for r in digests.get(row.id, [])]
        if reference:
            rt = [r for r in rt if _match_reference(reference, r)]
            rd = [r for r in rd if _match_reference(reference, r)]
            if not rt and not rd:
                continue
        elif not rt and not rd and not all and row.id in parents:
            continue
        out.append(ImageSummary(row.id, tuple(r.familiar for r in rt), tuple(r.familiar for r in rd),
                                _created_ts(row.created), row.size, row.parent, row.added))
    out.sort(key=lambda s: (s.created, s.added), reverse=True)
    return out


@value
class ImageRowView:
    """One row of the ``docker images`` table."""

    repository: str
    tag: str
    digest: str
    id: str
    created: float
    size: int


def image_rows(summaries: list[ImageSummary], *, digests: bool = False) -> list[ImageRowView]:
    """Expand summaries into table rows exactly as docker-cli does (a row per repo:tag)."""
    rows: list[ImageRowView] = []
    for s in summaries:
        if not s.repo_tags and not s.repo_digests:
            rows.append(ImageRowView("<none>", "<none>", "<none>", s.id, s.created, s.size))
            continue
        repo_tags: dict[str, list[str]] = {}
        for t in s.repo_tags:
            name, _, tag = t.rpartition(":")
            repo_tags.setdefault(name, []).append(tag)
        repo_digests: dict[str, list[str]] = {}
        for d in s.repo_digests:
            name, _, dg = d.partition("@")
            repo_digests.setdefault(name, []).append(dg)
        for repo in sorted(repo_tags):
            ds = repo_digests.pop(repo, []) if digests else (repo_digests.pop(repo, None) and [])
            for tag in repo_tags[repo]:
                if not ds:
                    rows.append(ImageRowView(repo, tag, "<none>", s.id, s.created, s.size))
                for dg in ds or ():
                    rows.append(ImageRowView(repo, tag, dg, s.id, s.created, s.size))
        for repo in sorted(repo_digests):
            if digests:
                rows.extend(ImageRowView(repo, "<none>", dg, s.id, s.created, s.size) for dg in repo_digests[repo])
            else:
                rows.append(ImageRowView(repo, "<none>", "", s.id, s.created, s.size))
    return rows


# --- history and inspect ---------------------------------------------------------------------

@value
class HistoryRow:
    """One row of ``docker history``, newest first."""

    id: str            # image ID, or "<missing>"
    created: float
    created_by: str
    size: int
    comment: str
    tags: tuple[str, ...]


def history(store: Store, image_id: str) -> list[HistoryRow]:
    """``docker history`` as data, newest first."""
    config = load_config(store, image_id)
    entries = []
    for h, diff_id in config.layer_history():
        size = store.layer(diff_id).size if diff_id and store.has_layer(diff_id) else 0
        entries.append((h, size))
    entries.reverse()
    rows: list[HistoryRow] = []
    current: str | None = image_id
    for h, size in entries:
        hid = "<missing>"
        tags: tuple[str, ...] = ()
        if current is not None:
            hid = current
            tags = tuple(refmod.parse(t.ref).familiar for t in store.tags_for(current))
            parent = store.image(current).parent
            current = parent if parent and store.has_image(parent) else None
        rows.append(HistoryRow(hid, _created_ts(h.created), h.created_by, size, h.comment, tags))
    return rows


_DOCKER_CONFIG_DEFAULTS = (
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False), ("OpenStdin", False),
    ("StdinOnce", False), ("Env", None), ("Cmd", None), ("Healthcheck", None), ("ArgsEscaped", None),
    ("Image", ""), ("Volumes", None), ("WorkingDir", ""), ("Entrypoint", None), ("OnBuild", None),
    ("Labels", None), ("StopSignal", None), ("Shell", None),
)
_OMIT_EMPTY = {"ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal", "Shell"}


def docker_container_config(raw: dict | None) -> dict:
    """An image's ``config`` object in the shape ``docker inspect`` prints (Go struct order)."""
    raw = raw or {}
    out: dict = {}
    for key, default in _DOCKER_CONFIG_DEFAULTS:
        value = raw.get(key, default)
        if key in _OMIT_EMPTY and not value:
            continue
        out[key] = value
    return out


def inspect_image(store: Store, image_id: str) -> dict:
    """``docker image inspect`` for one image, as a dict shaped like Docker's."""
    import json

    raw = json.loads(store.read_blob(image_id))
    config = load_config(store, image_id)
    row = store.image(image_id)
    repo_tags = [refmod.parse(t.ref).familiar for t in store.tags_for(image_id)]
    repo_digests = [refmod.parse(d.ref).familiar for d in store.repo_digests_for(image_id)]
    history_comment = config.history[-1].comment if config.history else ""
    return {
        "Id": image_id,
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": row.parent or "",
        "Comment": raw.get("comment", history_comment if len(config.history) == 1 else ""),
        "Created": raw.get("created", ""),
        "Container": raw.get("container", ""),
        "ContainerConfig": docker_container_config(raw.get("container_config")),
        "DockerVersion": raw.get("docker_version", ""),
        "Author": raw.get("author", ""),
        "Config": docker_container_config(raw.get("config")),
        "Architecture": raw.get("architecture", ""),
        **({"Variant": raw["variant"]} if raw.get("variant") else {}),
        "Os": raw.get("os", ""),
        "Size": row.size,
        "VirtualSize": row.size,
        "GraphDriver": {"Data": None, "Name": "layerlab"},
        "RootFS": {"Type": "layers", "Layers": list(config.diff_ids)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def image_used_chain_ids(store: Store) -> set[str]:
    """ChainIDs of every layer some stored image needs."""
    out: set[str] = set()
    for row in store.images():
        out.update(chain_ids(store.image_diff_ids(row.id)))
    return out

