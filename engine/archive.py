"""Image archives: ``docker save`` / ``docker load`` tarballs and OCI image layouts.

Three things live here, in this order:

* the Docker 20.10 legacy metadata (``<v1 id>/json`` and the v1 layer IDs), reproduced byte for byte
  the way moby's ``image/tarexport/save.go`` marshals it with Go's ``encoding/json``;
* :func:`save` / :func:`save_oci_dir`: a ``docker save`` archive, or an OCI image layout (tar, with a
  Docker 25-style ``manifest.json`` so ``docker load`` reads it too; or a directory);
* :func:`load`: legacy docker archives, Docker 25+ archives and plain OCI layouts, as a (possibly
  compressed) tar stream or a directory. Everything is verified before anything is written to the
  store: config digests, blob digests, layer DiffIDs, tags, entry names.

Example::

    >>> with open("busybox.tar", "wb") as f:                      # doctest: +SKIP
    ...     save(store, ["busybox:latest"], f)
    >>> [img.tags for img in load(other_store, "busybox.tar")]   # doctest: +SKIP
    [('busybox:latest',)]

The tar is read in one pass: regular members are copied into a private directory under the store's
``tmp/`` (named by their position, never by their archive name), small JSON members are then read with
a 16 MiB cap, and links inside the archive are resolved by name, never on disk.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Literal, Protocol

from . import reference as refmod
from .digest import CHUNK, chain_ids, hex_of, is_digest, sha256_bytes
from .errors import ArchiveError, DigestMismatch, InvalidReference
from .images import register_config, resolve
from .layer import decompressed, detect_compression, measure_tar, source_date_epoch
from .spec import (GZIP_LAYER_TYPES, INDEX_TYPES, MANIFEST_TYPES, OCI_CONFIG, OCI_INDEX, OCI_LAYER,
                   OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME_ANNOTATION, IMAGE_NAME_ANNOTATION, Descriptor, ImageConfig, Manifest,
                   Platform, SpecError, canonical_json, host_platform)
from .store import Store

log = logging.getLogger(__name__)

__all__ = ["LoadedImage", "ArchiveDigestMismatch", "save", "save_oci_dir", "load", "v1_layers"]

MAX_JSON = 16 << 20
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
_MAX_LINK_HOPS = 16
_MAX_INDEX_DEPTH = 4


class ArchiveDigestMismatch(ArchiveError, DigestMismatch):
    """An archive entry's content does not match the digest it is named or described by."""


@dataclass(frozen=True)
class LoadedImage:
    """One image ``load`` stored: its ID and the familiar references now pointing at it.

    ``skipped_refs`` holds OCI ``ref.name`` annotations that were only a tag (``latest``), which
    LayerLab does not turn into a name (see :func:`load`).
    """

    image_id: str
    tags: tuple[str, ...]
    skipped_refs: tuple[str, ...] = ()


# --- Go encoding/json, as moby marshals the legacy metadata ----------------------------------------

_GO_ESCAPE_RE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _GO_ESCAPES:
        return _GO_ESCAPES[ch]
    if "\ud800" <= ch <= "\udfff":
        return "\ufffd"
    return f"\\u{ord(ch):04x}"


def go_json(value: Any) -> str:
    """``json.Marshal`` of Go: compact, HTML-safe escapes, objects in the order given."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return '"' + _GO_ESCAPE_RE.sub(_go_escape, value) + '"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


_MISSING = object()


def _go_get(obj: Any, name: str) -> Any:
    """A field as Go's decoder finds it: keys match case-insensitively, the last one wins."""
    if not isinstance(obj, dict):
        return _MISSING
    found: Any = _MISSING
    folded = name.casefold()
    for key, value in obj.items():
        if key.casefold() == folded:
            found = value
    return found


def _go_value(kind: str, v: Any) -> Any:
    """A JSON value decoded into a Go field of ``kind`` and marshalled again (invalid → zero)."""
    if kind == "str":
        return v if isinstance(v, str) else ""
    if kind == "bool":
        return v if isinstance(v, bool) else False
    if kind == "int":
        return v if isinstance(v, int) and not isinstance(v, bool) else 0
    if kind == "intptr":
        return v if isinstance(v, int) and not isinstance(v, bool) else None
    if kind == "strs":
        return [x for x in v if isinstance(x, str)] if isinstance(v, list) else None
    if kind == "strslice":
        if isinstance(v, str):
            return [v]
        return [x for x in v if isinstance(x, str)] if isinstance(v, list) else None
    if kind == "set":
        return {k: {} for k in sorted(v)} if isinstance(v, dict) else None
    if kind == "labels":
        return {k: v[k] if isinstance(v[k], str) else "" for k in sorted(v)} if isinstance(v, dict) else None
    if kind == "health":
        return _go_struct(_HEALTH_FIELDS, v) if isinstance(v, dict) else None
    if kind == "config":
        return _go_struct(_CONFIG_FIELDS, v if isinstance(v, dict) else {})
    if kind == "configptr":
        return _go_struct(_CONFIG_FIELDS, v) if isinstance(v, dict) else None
    if kind == "time":
        return _go_time(v)
    raise ValueError(kind)


_POINTER_KINDS = ("health", "configptr", "intptr")


def _omitted(kind: str, value: Any) -> bool:
    """Go's ``omitempty``: nil pointers; false, 0, "" and empty slices/maps."""
    if kind in _POINTER_KINDS:
        return value is None
    return value is None or value is False or value == 0 or value in ("", [], {})


def _go_struct(fields: tuple[tuple[str, str, bool], ...], obj: Any) -> dict[str, Any]:
    """A Go struct decoded from ``obj`` and marshalled again, fields in struct order."""
    out: dict[str, Any] = {}
    for name, kind, omitempty in fields:
        raw = _go_get(obj, name)
        value = _go_value(kind, None if raw is _MISSING else raw)
        if not (omitempty and _omitted(kind, value)):
            out[name] = value
    return out


# api/types/container.HealthConfig and container.Config of Docker 20.10, in struct order
_HEALTH_FIELDS = (("Test", "strs", True), ("Interval", "int", True), ("Timeout", "int", True),
                  ("StartPeriod", "int", True), ("Retries", "int", True))
_CONFIG_FIELDS = (
    ("Hostname", "str", False), ("Domainname", "str", False), ("User", "str", False),
    ("AttachStdin", "bool", False), ("AttachStdout", "bool", False), ("AttachStderr", "bool", False),
    ("ExposedPorts", "set", True), ("Tty", "bool", False), ("OpenStdin", "bool", False),
    ("StdinOnce", "bool", False), ("Env", "strs", False), ("Cmd", "strslice", False),
    ("Healthcheck", "health", True), ("ArgsEscaped", "bool", True), ("Image", "str", False),
    ("Volumes", "set", False), ("WorkingDir", "str", False), ("Entrypoint", "strslice", False),
    ("NetworkDisabled", "bool", True), ("MacAddress", "str", True), ("OnBuild", "strs", False),
    ("Labels", "labels", False), ("StopSignal", "str", True), ("StopTimeout", "intptr", True),
    ("Shell", "strslice", True),
)
# image.V1Image after id and parent (which save.go sets itself)
_V1_FIELDS = (
    ("comment", "str", True), ("created", "time", False), ("container", "str", True),
    ("container_config", "config", False), ("docker_version", "str", True), ("author", "str", True),
    ("config", "configptr", True), ("architecture", "str", True), ("variant", "str", True),
    ("os", "str", True), ("Size", "int", True),
)
_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
UNIX_EPOCH_TIME = "1970-01-01T00:00:00Z"


def _go_time(value: Any) -> str:
    """An RFC 3339 time re-marshalled by Go (RFC3339Nano: no trailing zeros, ``Z`` for UTC)."""
    if not isinstance(value, str):
        return GO_ZERO_TIME
    m = _TIME_RE.match(value)
    if not m:
        return value
    date, clock, frac, zone = m.groups()
    frac = (frac or "")[:9].rstrip("0")
    zone = "Z" if zone in ("Z", "z", "+00:00", "-00:00") else zone
    return f"{date}T{clock}{'.' + frac if frac else ''}{zone}"


def _v1_body(config: dict[str, Any] | None, os_name: str) -> dict[str, Any]:
    """V1Image fields after id/parent; ``config`` None is the placeholder of a lower layer."""
    if config is None:
        body = _go_struct(_V1_FIELDS, {"created": UNIX_EPOCH_TIME})
        if os_name:
            body["os"] = os_name
        return body
    return _go_struct(_V1_FIELDS, config)


@dataclass(frozen=True)
class V1Layer:
    """One ``<id>/`` directory of a docker-archive: legacy v1 ID and its ``json`` file."""

    v1_id: str          # 64 hex
    json: bytes
    diff_id: str


def v1_layers(config_bytes: bytes) -> list[V1Layer]:
    """The legacy layer directories ``docker save`` (moby 20.10) writes for an image config."""
    try:
        config = json.loads(config_bytes)
        diff_ids = [str(d) for d in config["rootfs"]["diff_ids"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ArchiveError(f"invalid image config: {e}") from None
    os_name = _go_value("str", _go_get(config, "os"))
    out: list[V1Layer] = []
    parent = ""
    chains = chain_ids(diff_ids)
    for i, (chain, diff_id) in enumerate(zip(chains, diff_ids)):
        top = i == len(chains) - 1
        for_id = dict(_v1_body(config if top else None, os_name if top else ""))
        for_id["layer_id"] = chain
        if parent:
            for_id["parent"] = parent
        v1_id = sha256_bytes(go_json(dict(sorted(for_id.items()))).encode())
        doc: dict[str, Any] = {"id": hex_of(v1_id)}
        if parent:
            doc["parent"] = hex_of(parent)
        doc.update(_v1_body(config if top else None, os_name))
        out.append(V1Layer(hex_of(v1_id), go_json(doc).encode(), diff_id))
        parent = v1_id
    return out


# --- choosing what to save ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Selected:
    image_id: str
    refs: tuple[refmod.Reference, ...]


def _expand_name(store: Store, name: str) -> list[tuple[str, refmod.Reference | None]]:
    """Images (and the tag naming them) for one argument, as ``docker save`` resolves it."""
    if refmod.is_full_id(name):
        return [(resolve(store, name), None)]
    try:
        ref = refmod.parse(name, default_tag=False)
    except InvalidReference:
        ref = None
    if ref is not None and not ref.tag and not ref.digest:
        tags = [t for t in store.tags() if t.repo == ref.repository]
        if tags:  # a bare repository name saves every tag of it
            return [(t.image_id, refmod.parse(t.ref)) for t in tags]
    image_id = resolve(store, name)
    if ref is not None and ref.tag and not ref.digest:
        row = store.tag(ref.string)
        if row is not None and row.image_id == image_id:
            return [(image_id, ref)]
    return [(image_id, None)]


def _select(store: Store, names: Iterable[str]) -> list[_Selected]:
    order: list[str] = []
    refs: dict[str, list[refmod.Reference]] = {}
    for name in names:
        for image_id, ref in _expand_name(store, name):
            if image_id not in refs:
                order.append(image_id)
                refs[image_id] = []
            if ref is not None and ref not in refs[image_id]:
                refs[image_id].append(ref)
    if not order:
        raise ArchiveError("no images to save")
    return [_Selected(i, tuple(refs[i])) for i in order]


# --- what goes into an archive --------------------------------------------------------------------

@dataclass(frozen=True)
class _Out:
    """One archive member: a directory, inline bytes, a store blob, or a symlink."""

    name: str
    data: bytes | None = None
    blob: str | None = None            # store digest to stream
    blob_size: int = 0
    decompress: bool = False           # stream the blob through a decompressor
    linkname: str | None = None
    is_dir: bool = False

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.blob_size


def _sort_key(entry: _Out) -> list[str]:
    return entry.name.split("/")


def _layer_source(store: Store, diff_id: str) -> _Out:
    """The uncompressed tar of a stored layer (a gzip blob is inflated on the fly if needed)."""
    if store.has_blob(diff_id):
        return _Out("", blob=diff_id, blob_size=store.blob_path(diff_id).stat().st_size)
    for row in store.layer_blobs(diff_id):
        if store.has_blob(row.digest) and store.has_layer(diff_id):
            return _Out("", blob=row.digest, blob_size=store.layer(diff_id).tar_size, decompress=True)
    raise ArchiveError(f"layer {diff_id} is missing from the store")


def _parents(store: Store, selected: list[_Selected]) -> dict[str, str]:
    """Parent links between saved images (moby's validatedParentLinks)."""
    ids = {s.image_id for s in selected}
    out: dict[str, str] = {}
    for s in selected:
        parent = store.image(s.image_id).parent
        if parent and parent in ids and parent != s.image_id:
            out[s.image_id] = parent
    return out


def _docker_entries(store: Store, selected: list[_Selected]) -> list[_Out]:
    """Members of a Docker 20.10 ``docker save`` archive."""
    entries: dict[str, _Out] = {}
    items: list[dict[str, Any]] = []
    repos: dict[str, dict[str, str]] = {}
    diff_paths: dict[str, str] = {}
    parents = _parents(store, selected)
    for sel in selected:
        raw = store.read_blob(sel.image_id)
        layers = v1_layers(raw)
        if not layers:
            raise ArchiveError(f"empty export - not implemented: image {sel.image_id} has no layers "
                               "(save it in the OCI format instead)")
        for layer in layers:
            if f"{layer.v1_id}/" in entries:
                continue
            entries[f"{layer.v1_id}/"] = _Out(f"{layer.v1_id}/", is_dir=True)
            entries[f"{layer.v1_id}/VERSION"] = _Out(f"{layer.v1_id}/VERSION", data=b"1.0")
            entries[f"{layer.v1_id}/json"] = _Out(f"{layer.v1_id}/json", data=layer.json)
            tar_name = f"{layer.v1_id}/layer.tar"
            if layer.diff_id in diff_paths:
                target = posixpath.relpath(diff_paths[layer.diff_id], layer.v1_id)
                entries[tar_name] = _Out(tar_name, linkname=target)
            else:
                src = _layer_source(store, layer.diff_id)
                entries[tar_name] = _Out(tar_name, blob=src.blob, blob_size=src.blob_size,
                                         decompress=src.decompress)
                diff_paths[layer.diff_id] = tar_name
        config_name = hex_of(sel.image_id) + ".json"
        entries[config_name] = _Out(config_name, data=raw)
        item: dict[str, Any] = {"Config": config_name, "RepoTags": [r.familiar for r in sel.refs] or None,
                                "Layers": [f"{layer.v1_id}/layer.tar" for layer in layers]}
        if sel.image_id in parents:
            item["Parent"] = parents[sel.image_id]
        items.append(item)
        for r in sel.refs:
            repos.setdefault(r.familiar_repository, {})[r.tag or "latest"] = layers[-1].v1_id
    entries["manifest.json"] = _Out("manifest.json", data=(go_json(items) + "\n").encode())
    if repos:
        ordered = {k: dict(sorted(v.items())) for k, v in sorted(repos.items())}
        entries["repositories"] = _Out("repositories", data=(go_json(ordered) + "\n").encode())
    return sorted(entries.values(), key=_sort_key)


@dataclass(frozen=True)
class _OciImage:
    image_id: str
    media_type: str
    manifest: bytes
    digest: str
    layers: tuple[Descriptor, ...]
    platform: Platform | None


def _stored_manifest(store: Store, image_id: str) -> _OciImage | None:
    """A manifest the image arrived with, when it and all its blobs are still stored."""
    rows = sorted(store.manifests(image_id), key=lambda r: r[1] != OCI_MANIFEST)
    for digest, media_type in rows:
        if media_type not in MANIFEST_TYPES or not store.has_blob(digest):
            continue
        data = store.read_blob(digest)
        try:
            manifest = Manifest.from_json(data)
        except SpecError:
            continue
        if manifest.config.digest == image_id and all(store.has_blob(d.digest) for d in manifest.layers):
            return _OciImage(image_id, media_type, data, digest, manifest.layers, None)
    return None


def _generated_manifest(store: Store, image_id: str, config: bytes) -> _OciImage:
    """An OCI manifest over the stored layer blobs (uncompressed when available)."""
    layers = []
    for diff_id in ImageConfig.from_json(config).diff_ids:
        if store.has_blob(diff_id):
            layers.append(Descriptor(OCI_LAYER, diff_id, store.blob_path(diff_id).stat().st_size))
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


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{hex_of(digest)}"


def _oci_entries(store: Store, selected: list[_Selected], *, docker_manifest: bool) -> list[_Out]:
    """Members of an OCI image layout; with ``docker_manifest`` also Docker 25's ``manifest.json``."""
    entries: dict[str, _Out] = {"blobs/": _Out("blobs/", is_dir=True),
                                "blobs/sha256/": _Out("blobs/sha256/", is_dir=True)}
    index: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    parents = _parents(store, selected)
    for sel in selected:
        img = _oci_image(store, sel.image_id)
        entries[_blob_name(img.digest)] = _Out(_blob_name(img.digest), data=img.manifest)
        for digest in (sel.image_id, *(d.digest for d in img.layers)):
            name = _blob_name(digest)
            entries[name] = _Out(name, blob=digest, blob_size=store.blob_path(digest).stat().st_size)
        index.extend(_index_descriptor(img, ref) for ref in (sel.refs or (None,)))
        item: dict[str, Any] = {"Config": _blob_name(sel.image_id),
                                "RepoTags": [r.familiar for r in sel.refs] or None,
                                "Layers": [_blob_name(d.digest) for d in img.layers]}
        if sel.image_id in parents:
            item["Parent"] = parents[sel.image_id]
        items.append(item)
    entries["oci-layout"] = _Out("oci-layout", data=OCI_LAYOUT)
    entries["index.json"] = _Out("index.json", data=canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}))
    if docker_manifest:
        entries["manifest.json"] = _Out("manifest.json", data=(go_json(items) + "\n").encode())
    return sorted(entries.values(), key=_sort_key)


# --- writing ------------------------------------------------------------------------------------

def _archive_mtime() -> int:
    return source_date_epoch() or 0


def _tarinfo(entry: _Out, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(entry.name)
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = mtime
    if entry.is_dir:
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    elif entry.linkname is not None:
        ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, entry.linkname
    else:
        ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o644, entry.size
    return ti


_TYPE_BITS = {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK, tarfile.REGTYPE: stat.S_IFREG}


def _header(ti: tarfile.TarInfo) -> bytes:
    """Header blocks for ``ti`` as Go's archive/tar writes them (file-type bits in the mode, zero devices)."""
    buf = bytearray(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
    block = len(buf) - tarfile.BLOCKSIZE          # the ustar header is the last block
    buf[block + 100:block + 108] = b"%07o\0" % (_TYPE_BITS[ti.type] | ti.mode)
    buf[block + 329:block + 345] = b"0000000\0" * 2    # devmajor, devminor: Go writes zeros, not NULs
    buf[block + 148:block + 156] = b" " * 8
    buf[block + 148:block + 155] = b"%06o\0" % sum(buf[block:])
    return bytes(buf)


def _copy_exact(src: BinaryIO, out: BinaryIO, size: int, what: str) -> None:
    remaining = size
    while remaining:
        chunk = src.read(min(CHUNK, remaining))
        if not chunk:
            raise ArchiveError(f"{what} is shorter than recorded ({size} bytes)")
        out.write(chunk)
        remaining -= len(chunk)


def _write_content(store: Store, entry: _Out, out: BinaryIO) -> None:
    if entry.data is not None:
        out.write(entry.data)
        return
    assert entry.blob is not None
    with store.open_blob(entry.blob) as f:
        src = decompressed(f) if entry.decompress else f
        _copy_exact(src, out, entry.blob_size, f"blob {entry.blob}")


def _write_tar(store: Store, entries: list[_Out], out: BinaryIO) -> None:
    """A reproducible tar: given order, fixed mtime, root owner, Go's two-block end marker."""
    mtime = _archive_mtime()
    for entry in entries:
        ti = _tarinfo(entry, mtime)
        out.write(_header(ti))
        if ti.isreg():
            _write_content(store, entry, out)
            pad = (-entry.size) % tarfile.BLOCKSIZE
            if pad:
                out.write(bytes(pad))
    out.write(bytes(2 * tarfile.BLOCKSIZE))
    out.flush()


def save(store: Store, names: list[str], out: BinaryIO, *, format: Literal["docker", "oci"] = "docker") -> None:
    """Write images as a tar to ``out``, like ``docker save``.

    ``format="docker"`` writes Docker 20.10's archive (``manifest.json``, ``repositories``,
    ``<v1 id>/{VERSION,json,layer.tar}``, ``<image id hex>.json``); ``format="oci"`` writes an OCI
    image layout plus Docker 25's ``manifest.json``. Names given as tags keep their ``RepoTags``;
    a bare repository name saves all its tags; IDs are saved untagged. The tar is reproducible:
    entries sorted, mtime ``SOURCE_DATE_EPOCH`` (or 0), owner root.

    >>> with open("img.tar", "wb") as f:                 # doctest: +SKIP
    ...     save(store, ["busybox:latest"], f, format="oci")
    """
    selected = _select(store, names)
    if format == "docker":
        entries = _docker_entries(store, selected)
    elif format == "oci":
        entries = _oci_entries(store, selected, docker_manifest=True)
    else:
        raise ArchiveError(f"unknown archive format {format!r} (docker or oci)")
    _write_tar(store, entries, out)


def _write_dir(store: Store, entries: list[_Out], root: Path) -> None:
    for entry in entries:
        path = root / entry.name
        if entry.is_dir:
            path.mkdir(mode=0o755, exist_ok=True)
            continue
        with open(path, "xb") as f:
            _write_content(store, entry, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, 0o644)


def save_oci_dir(store: Store, names: list[str], directory: str | os.PathLike[str]) -> None:
    """Write images as an OCI image layout directory (``oci:DIR:TAG`` for skopeo, umoci).

    The layout is built in a temp directory next to ``directory`` and renamed into place; an
    existing non-empty ``directory`` is refused.

    >>> save_oci_dir(store, ["busybox:latest"], "/tmp/busybox-oci")   # doctest: +SKIP
    """
    target = Path(directory)
    _check_target(target)
    selected = _select(store, names)
    entries = _oci_entries(store, selected, docker_manifest=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_dir(store, entries, tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, target)
    except OSError as e:
        raise ArchiveError(f"cannot write OCI layout {target}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ArchiveError(f"cannot write OCI layout to {target}: it exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ArchiveError(f"cannot write OCI layout to {target}: directory exists and is not empty")


# --- reading archives -----------------------------------------------------------------------------

def _clean(name: str, what: str = "archive entry", *, allow_root: bool = False) -> str:
    """A relative archive path without ``.`` parts; absolute paths and ``..`` are refused."""
    if not isinstance(name, str) or "\x00" in name:
        raise ArchiveError(f"{what} {name!r}: invalid name")
    if name.startswith("/"):
        raise ArchiveError(f"{what} {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{what} {name!r}: path escapes the archive")
    if not parts and not allow_root:
        raise ArchiveError(f"{what} {name!r}: invalid name")
    return "/".join(parts)


class _Source(Protocol):
    def exists(self, name: str) -> bool: ...
    def open(self, name: str) -> BinaryIO: ...
    def size(self, name: str) -> int: ...
    def digest(self, name: str) -> str: ...
    def head(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class _Member:
    path: Path
    size: int
    digest: str
    head: bytes


@dataclass
class _StagedTar:
    """Regular members of a tar copied to a private directory; links kept as names."""

    members: dict[str, _Member] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def _resolve(self, name: str) -> _Member:
        current = name
        for _ in range(_MAX_LINK_HOPS):
            if current in self.members:
                return self.members[current]
            if current not in self.links:
                raise ArchiveError(f"archive entry {name!r} not found")
            current = self.links[current]
        raise ArchiveError(f"archive entry {name!r}: too many levels of links")

    def exists(self, name: str) -> bool:
        try:
            self._resolve(name)
            return True
        except ArchiveError:
            return False

    def open(self, name: str) -> BinaryIO:
        return open(self._resolve(name).path, "rb")

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def digest(self, name: str) -> str:
        return self._resolve(name).digest

    def head(self, name: str) -> bytes:
        return self._resolve(name).head


def _stage_member(tf: tarfile.TarFile, ti: tarfile.TarInfo, path: Path) -> _Member:
    src = tf.extractfile(ti)
    assert src is not None
    h = hashlib.sha256()
    head = b""
    size = 0
    with open(path, "xb") as f:
        while chunk := src.read(CHUNK):
            if len(head) < 8:
                head += chunk[: 8 - len(head)]
            h.update(chunk)
            f.write(chunk)
            size += len(chunk)
    return _Member(path, size, "sha256:" + h.hexdigest(), head)


def _link_target(name: str, ti: tarfile.TarInfo) -> str:
    """Where a link member points, as an archive name; links leaving the archive are refused."""
    if ti.islnk():
        return _clean(ti.linkname, f"hard link {ti.name!r} ->")
    if ti.linkname.startswith("/"):
        raise ArchiveError(f"archive entry {ti.name!r}: symlink to absolute path {ti.linkname!r}")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(name), ti.linkname))
    if target in (".", "..") or target.startswith("../"):
        raise ArchiveError(f"archive entry {ti.name!r}: symlink {ti.linkname!r} points outside the archive")
    return target


def _stage_tar(stream: BinaryIO, workdir: Path) -> _StagedTar:
    """Read a (possibly compressed) tar once, keeping regular members as files in ``workdir``."""
    staged = _StagedTar()
    try:
        with tarfile.open(fileobj=decompressed(stream), mode="r|", errorlevel=2) as tf:
            for i, ti in enumerate(tf):
                name = _clean(ti.name, allow_root=ti.isdir())
                if ti.isdir():
                    continue
                if name in staged.members or name in staged.links:
                    raise ArchiveError(f"archive entry {ti.name!r} appears twice")
                if ti.isreg():
                    staged.members[name] = _stage_member(tf, ti, workdir / str(i))
                elif ti.issym() or ti.islnk():
                    staged.links[name] = _link_target(name, ti)
                else:
                    raise ArchiveError(f"archive entry {ti.name!r}: unsupported entry type")
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise ArchiveError(f"invalid archive: {e}") from None
    return staged


@dataclass
class _LayoutDir:
    """An archive already unpacked as a directory (an OCI layout); symlinks are refused."""

    root: Path
    _digests: dict[str, str] = field(default_factory=dict)

    def _path(self, name: str) -> Path:
        path = self.root
        for part in name.split("/"):
            path = path / part
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                raise ArchiveError(f"layout entry {name!r} not found") from None
            if stat.S_ISLNK(st.st_mode):
                raise ArchiveError(f"layout entry {name!r}: symlinks are not allowed")
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError(f"layout entry {name!r} is not a regular file")
        return path

    def exists(self, name: str) -> bool:
        try:
            self._path(name)
            return True
        except ArchiveError:
            return False

    def open(self, name: str) -> BinaryIO:
        fd = os.open(self._path(name), os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def digest(self, name: str) -> str:
        if name not in self._digests:
            h = hashlib.sha256()
            with self.open(name) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
            self._digests[name] = "sha256:" + h.hexdigest()
        return self._digests[name]

    def head(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read(8)


def _read_bytes(src: _Source, name: str, what: str) -> bytes:
    size = src.size(name)
    if size > MAX_JSON:
        raise ArchiveError(f"archive entry {name!r}: {what} is too large ({size} bytes, limit {MAX_JSON})")
    with src.open(name) as f:
        return f.read(MAX_JSON + 1)[:MAX_JSON]


def _parse_json(data: bytes, name: str, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ArchiveError(f"archive entry {name!r}: invalid {what}: {e}") from None


def _read_json(src: _Source, name: str, what: str) -> Any:
    return _parse_json(_read_bytes(src, name, what), name, what)


def _check_blob(src: _Source, desc: Descriptor, what: str) -> str:
    """The archive name of a described blob, after checking its digest and size."""
    if not is_digest(desc.digest):
        raise ArchiveError(f"{what}: unsupported digest {desc.digest!r}")
    name = _blob_name(desc.digest)
    if not src.exists(name):
        raise ArchiveError(f"{what}: blob {name!r} is missing from the archive")
    actual = src.digest(name)
    if actual != desc.digest:
        raise ArchiveDigestMismatch(desc.digest, actual, f"archive entry {name!r}")
    if src.size(name) != desc.size:
        raise ArchiveError(f"archive entry {name!r}: size {src.size(name)} differs from the descriptor's {desc.size}")
    return name


# --- load plans: everything verified before the store is touched -------------------------------------

@dataclass(frozen=True)
class _LayerPlan:
    member: str
    diff_id: str
    descriptor: Descriptor | None = None   # from an OCI manifest: keep this blob too


@dataclass(frozen=True)
class _ImagePlan:
    image_id: str
    config: bytes
    layers: tuple[_LayerPlan, ...]
    tags: tuple[refmod.Reference, ...]
    skipped_refs: tuple[str, ...] = ()
    parent: str | None = None
    manifest: bytes | None = None
    manifest_media_type: str | None = None


@dataclass(frozen=True)
class _OciManifest:
    descriptor: Descriptor     # the top-level index entry (carries the tag annotations)
    data: bytes
    digest: str
    media_type: str
    manifest: Manifest


def _parse_config(data: bytes, name: str) -> ImageConfig:
    try:
        return ImageConfig.from_json(data)
    except SpecError as e:
        raise ArchiveError(f"archive entry {name!r}: {e}") from None


def _descriptor(obj: Any, what: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise ArchiveError(f"{what}: descriptor is not an object")
    try:
        return Descriptor.from_dict(obj)
    except SpecError as e:
        raise ArchiveError(f"{what}: {e}") from None


def _pick_platform(manifests: list[Descriptor], what: str) -> Descriptor:
    host = host_platform()
    matches = [d for d in manifests if d.platform and d.platform.os == host.os
               and d.platform.architecture == host.architecture]
    matches.sort(key=lambda d: d.platform is not None and d.platform.variant != host.variant)
    if matches:
        return matches[0]
    if len(manifests) == 1 and manifests[0].platform is None:
        return manifests[0]
    raise ArchiveError(f"{what}: no image for platform {host.os}/{host.architecture}")


def _follow(src: _Source, top: Descriptor, desc: Descriptor, depth: int = 0) -> _OciManifest:
    """Follow an index entry to an image manifest (nested indexes: the host platform)."""
    name = _check_blob(src, desc, "index.json")
    data = _read_bytes(src, name, "manifest")
    obj = _parse_json(data, name, "manifest")
    if not isinstance(obj, dict):
        raise ArchiveError(f"archive entry {name!r}: manifest is not an object")
    media_type = desc.media_type or str(obj.get("mediaType") or "")
    if media_type in INDEX_TYPES or (not media_type and "manifests" in obj):
        if depth >= _MAX_INDEX_DEPTH:
            raise ArchiveError(f"archive entry {name!r}: indexes nested too deeply")
        children = [_descriptor(d, name) for d in obj.get("manifests") or []]
        return _follow(src, top, _pick_platform(children, name), depth + 1)
    if media_type not in MANIFEST_TYPES and not (not media_type and "layers" in obj):
        raise ArchiveError(f"archive entry {name!r}: unsupported media type {media_type!r}")
    try:
        manifest = Manifest.from_json(data)
    except SpecError as e:
        raise ArchiveError(f"archive entry {name!r}: {e}") from None
    return _OciManifest(top, data, desc.digest, media_type or OCI_MANIFEST, manifest)


def _oci_manifests(src: _Source) -> list[_OciManifest]:
    if src.exists("oci-layout"):
        layout = _read_json(src, "oci-layout", "oci-layout")
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
        if not isinstance(version, str) or not version.startswith("1."):
            raise ArchiveError(f"archive entry 'oci-layout': unsupported imageLayoutVersion {version!r}")
    index = _read_json(src, "index.json", "image index")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ArchiveError("archive entry 'index.json': not an image index")
    tops = [_descriptor(d, "index.json") for d in index["manifests"]]
    return [_follow(src, d, d) for d in tops]


def _is_full_ref(text: str) -> bool:
    """Whether an OCI ref name names an image (``name:tag``), not only a tag (``latest``)."""
    try:
        ref = refmod.parse(text, default_tag=False)
    except InvalidReference:
        return False
    return not ref.digest and (":" in text.rpartition("/")[2] or "/" in text)


def _oci_tags(desc: Descriptor) -> tuple[list[refmod.Reference], list[str]]:
    """Tags an index entry asks for, and ref names that are only a tag (left untagged)."""
    for key in (IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION):
        value = desc.annotation(key)
        if value and _is_full_ref(value):
            return [refmod.parse(value)], []
    name = desc.annotation(REF_NAME_ANNOTATION)
    return [], [name] if name else []


def _manifest_layers(found: _OciManifest, src: _Source, config: ImageConfig, what: str) -> tuple[_LayerPlan, ...]:
    if len(found.manifest.layers) != len(config.diff_ids):
        raise ArchiveError(f"{what}: {len(found.manifest.layers)} layers but the config lists "
                           f"{len(config.diff_ids)} diff_ids")
    return tuple(_LayerPlan(_check_blob(src, d, what), diff_id, d)
                 for d, diff_id in zip(found.manifest.layers, config.diff_ids))


def _oci_plans(src: _Source) -> list[_ImagePlan]:
    plans = []
    for found in _oci_manifests(src):
        config_name = _check_blob(src, found.manifest.config, f"manifest {found.digest}")
        config_bytes = _read_bytes(src, config_name, "image config")
        config = _parse_config(config_bytes, config_name)
        tags, skipped = _oci_tags(found.descriptor)
        plans.append(_ImagePlan(found.manifest.config.digest, config_bytes,
                                _manifest_layers(found, src, config, f"manifest {found.digest}"),
                                tuple(tags), tuple(skipped), None, found.data, found.media_type))
    return plans


def _repo_tags(value: Any) -> tuple[refmod.Reference, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ArchiveError("manifest.json: RepoTags is not a list")
    out = []
    for text in value:
        try:
            ref = refmod.parse(text, default_tag=False) if isinstance(text, str) else None
        except InvalidReference:
            ref = None
        if ref is None or not ref.tag or ref.digest:
            raise ArchiveError(f"manifest.json: invalid tag {text!r}")
        out.append(ref)
    return tuple(out)


def _check_config_name(name: str, image_id: str) -> None:
    """``<hex>.json`` and ``blobs/sha256/<hex>`` config entries must hold what they are named."""
    base = posixpath.basename(name).removesuffix(".json")
    if re.fullmatch(r"[0-9a-f]{64}", base) and base != hex_of(image_id):
        raise ArchiveDigestMismatch("sha256:" + base, image_id, f"archive entry {name!r}")


def _docker_plan(src: _Source, item: Any, n: int, oci: dict[str, _OciManifest]) -> _ImagePlan:
    what = f"manifest.json[{n}]"
    if not isinstance(item, dict) or not isinstance(item.get("Config"), str) \
            or not isinstance(item.get("Layers"), list):
        raise ArchiveError(f"{what}: Config and Layers expected")
    config_name = _clean(item["Config"], f"{what} Config")
    config_bytes = _read_bytes(src, config_name, "image config")
    image_id = sha256_bytes(config_bytes)
    _check_config_name(config_name, image_id)
    config = _parse_config(config_bytes, config_name)
    tags = _repo_tags(item.get("RepoTags"))
    parent = item.get("Parent") if isinstance(item.get("Parent"), str) else None
    found = oci.get(image_id)
    if found is not None and len(found.manifest.layers) == len(config.diff_ids):
        return _ImagePlan(image_id, config_bytes, _manifest_layers(found, src, config, what), tags, (),
                          parent, found.data, found.media_type)
    if not all(isinstance(x, str) for x in item["Layers"]):
        raise ArchiveError(f"{what}: Layers must be archive paths")
    names = [_clean(x, f"{what} Layers entry") for x in item["Layers"]]
    if len(names) != len(config.diff_ids):
        raise ArchiveError(f"{what}: {len(names)} layers but the config lists {len(config.diff_ids)} diff_ids")
    for name in names:
        if name.startswith("blobs/sha256/") and is_digest("sha256:" + name.rpartition("/")[2]):
            actual = src.digest(name)
            if actual != "sha256:" + name.rpartition("/")[2]:
                raise ArchiveDigestMismatch("sha256:" + name.rpartition("/")[2], actual, f"archive entry {name!r}")
    return _ImagePlan(image_id, config_bytes, tuple(_LayerPlan(m, d) for m, d in zip(names, config.diff_ids)),
                      tags, (), parent)


def _docker_plans(src: _Source) -> list[_ImagePlan]:
    items = _read_json(src, "manifest.json", "manifest")
    if not isinstance(items, list):
        raise ArchiveError("archive entry 'manifest.json': a list of images expected")
    oci: dict[str, _OciManifest] = {}
    if src.exists("index.json"):  # Docker 25+: keep the OCI manifests it wrote
        for found in _oci_manifests(src):
            oci.setdefault(found.manifest.config.digest, found)
    return [_docker_plan(src, item, n, oci) for n, item in enumerate(items)]


def _plans(src: _Source) -> list[_ImagePlan]:
    if src.exists("manifest.json"):
        return _docker_plans(src)
    if src.exists("index.json"):
        return _oci_plans(src)
    if src.exists("repositories"):
        raise ArchiveError("legacy archives without manifest.json (Docker < 1.10) are not supported")
    raise ArchiveError("not an image archive: no manifest.json or index.json")


# --- verifying and storing layers -----------------------------------------------------------------

@dataclass(frozen=True)
class _Measured:
    diff_id: str
    tar_size: int
    size: int
    compressed: bool


def _measure(store: Store, src: _Source, member: str, expected: str) -> _Measured:
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


def _verify_layers(store: Store, src: _Source, plans: list[_ImagePlan]) -> dict[str, _Measured]:
    measured: dict[str, _Measured] = {}
    for plan in plans:
        for i, layer in enumerate(plan.layers):
            if layer.member not in measured:
                measured[layer.member] = _measure(store, src, layer.member, layer.diff_id)
            actual = measured[layer.member].diff_id
            if actual != layer.diff_id:
                raise ArchiveError(f"layer {layer.member!r}: DiffID {actual} does not match "
                                   f"rootfs.diff_ids[{i}] {layer.diff_id} of image {plan.image_id}")
    return measured


def _store_layer_blobs(store: Store, src: _Source, layer: _LayerPlan, m: _Measured) -> None:
    if not store.has_blob(layer.diff_id):
        with src.open(layer.member) as f:
            store.put_blob_stream(decompressed(f) if m.compressed else f, expected=layer.diff_id)
    keep = layer.descriptor is not None and layer.descriptor.digest != layer.diff_id
    if keep and not store.has_blob(layer.descriptor.digest):  # type: ignore[union-attr]
        with src.open(layer.member) as f:
            store.put_blob_stream(f, expected=layer.descriptor.digest)  # type: ignore[union-attr]


def _record_layer(store: Store, src: _Source, layer: _LayerPlan, m: _Measured) -> None:
    store.add_layer(layer.diff_id, m.size, m.tar_size)
    store.add_layer_blob(layer.diff_id, layer.diff_id, OCI_LAYER, m.tar_size)
    d = layer.descriptor
    if d is not None and d.digest != layer.diff_id:
        store.add_layer_blob(d.digest, layer.diff_id, d.media_type or OCI_LAYER_GZIP, src.size(layer.member))


def _parents_first(plans: list[_ImagePlan]) -> list[_ImagePlan]:
    by_id = {p.image_id: p for p in plans}
    done: set[str] = set()
    out: list[_ImagePlan] = []

    def visit(plan: _ImagePlan, seen: frozenset[str]) -> None:
        if plan.image_id in done or plan.image_id in seen:
            return
        if plan.parent in by_id:
            visit(by_id[plan.parent], seen | {plan.image_id})
        done.add(plan.image_id)
        out.append(plan)

    for plan in plans:
        visit(plan, frozenset())
    return out


def _valid_parent(store: Store, plan: _ImagePlan, config: ImageConfig) -> str | None:
    """The archive's Parent link, kept when that image is stored and its layers are a prefix."""
    if not plan.parent or not store.has_image(plan.parent):
        return None
    parent_layers = store.image_diff_ids(plan.parent)
    return plan.parent if list(config.diff_ids[: len(parent_layers)]) == parent_layers else None


def _commit(store: Store, src: _Source, plans: list[_ImagePlan], measured: dict[str, _Measured]) -> None:
    for plan in plans:
        store.put_blob(plan.config, expected=plan.image_id)
        if plan.manifest is not None:
            store.put_blob(plan.manifest)
        for layer in plan.layers:
            _store_layer_blobs(store, src, layer, measured[layer.member])
    with store.transaction():
        for plan in _parents_first(plans):
            for layer in plan.layers:
                _record_layer(store, src, layer, measured[layer.member])
            config = ImageConfig.from_json(plan.config)
            image_id, _ = register_config(store, plan.config, parent=_valid_parent(store, plan, config))
            if plan.manifest is not None:
                store.add_manifest(image_id, sha256_bytes(plan.manifest), plan.manifest_media_type or OCI_MANIFEST)
            for ref in plan.tags:
                store.set_tag(ref.string, ref.repository, image_id)


def _results(plans: list[_ImagePlan]) -> list[LoadedImage]:
    """One result per image, in archive order, tags merged."""
    order: list[str] = []
    tags: dict[str, list[str]] = {}
    skipped: dict[str, list[str]] = {}
    for plan in plans:
        if plan.image_id not in tags:
            order.append(plan.image_id)
            tags[plan.image_id], skipped[plan.image_id] = [], []
        tags[plan.image_id] += [r.familiar for r in plan.tags if r.familiar not in tags[plan.image_id]]
        skipped[plan.image_id] += [s for s in plan.skipped_refs if s not in skipped[plan.image_id]]
    return [LoadedImage(i, tuple(tags[i]), tuple(skipped[i])) for i in order]


def _load_source(store: Store, src: _Source) -> list[LoadedImage]:
    plans = _plans(src)
    if not plans:
        raise ArchiveError("the archive holds no images")
    measured = _verify_layers(store, src, plans)
    _commit(store, src, plans, measured)
    results = _results(plans)
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
            return _load_source(store, _LayoutDir(path))
        try:
            f = open(path, "rb")
        except OSError as e:
            raise ArchiveError(f"cannot open archive {str(path)!r}: {e.strerror or e}") from None
        with f:
            return load(store, f)
    workdir = Path(tempfile.mkdtemp(prefix="load-", dir=store.tmp_dir))
    try:
        return _load_source(store, _stage_tar(src, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

