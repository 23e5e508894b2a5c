"""What an archive asks to load, worked out and checked before the store is touched.

A legacy or Docker 25+ archive is read through its ``manifest.json`` (with the OCI manifests of a
Docker 25+ archive kept), a plain OCI layout through ``index.json`` (nested indexes resolve to the
host platform). Config digests, blob digests and sizes, tags and entry names are verified here;
layer DiffIDs are verified when the layers are measured.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any, Callable, TypeVar

from .. import reference as refmod
from ..digest import hex_of, sha256_bytes
from ..errors import ArchiveError, InvalidReference
from ..spec import (IMAGE_NAME_ANNOTATION, INDEX_TYPES, MANIFEST_TYPES, OCI_MANIFEST, REF_NAME_ANNOTATION,
                    Descriptor, ImageConfig, Manifest, SpecError, host_platform)
from .layout import blob_digest
from .source import (ArchiveDigestMismatch, Source, check_blob, clean, parse_json, read_bytes, read_json,
                     verify_digest)
from ..values import value

_MAX_INDEX_DEPTH = 4
_T = TypeVar("_T")


@value
class LayerPlan:
    member: str
    diff_id: str
    descriptor: Descriptor | None = None   # from an OCI manifest: keep this blob too


@value
class ImagePlan:
    image_id: str
    config: bytes
    layers: tuple[LayerPlan, ...]
    tags: tuple[refmod.Reference, ...]
    skipped_refs: tuple[str, ...] = ()
    parent: str | None = None
    manifest: bytes | None = None
    manifest_media_type: str | None = None


@value
class _OciManifest:
    descriptor: Descriptor     # the top-level index entry (carries the tag annotations)
    data: bytes
    digest: str
    media_type: str
    manifest: Manifest


def _parsed(parse: Callable[[Any], _T], value: Any, what: str) -> _T:
    """``parse(value)``, a spec error reported as an ArchiveError about ``what``."""
    try:
        return parse(value)
    except SpecError as e:
        raise ArchiveError(f"{what}: {e}") from None


def _parse_config(data: bytes, name: str) -> ImageConfig:
    return _parsed(ImageConfig.from_json, data, f"archive entry {name!r}")


def _check_layer_count(what: str, layers: int, config: ImageConfig) -> None:
    if layers != len(config.diff_ids):
        raise ArchiveError(f"{what}: {layers} layers but the config lists {len(config.diff_ids)} diff_ids")


def _descriptor(obj: Any, what: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise ArchiveError(f"{what}: descriptor is not an object")
    return _parsed(Descriptor.from_dict, obj, what)


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


def _follow(src: Source, top: Descriptor, desc: Descriptor, depth: int = 0) -> _OciManifest:
    """Follow an index entry to an image manifest (nested indexes: the host platform)."""
    name = check_blob(src, desc, "index.json")
    data = read_bytes(src, name, "manifest")
    obj = parse_json(data, name, "manifest")
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
    manifest = _parsed(Manifest.from_json, data, f"archive entry {name!r}")
    return _OciManifest(top, data, desc.digest, media_type or OCI_MANIFEST, manifest)


def _oci_manifests(src: Source) -> list[_OciManifest]:
    if src.exists("oci-layout"):
        layout = read_json(src, "oci-layout", "oci-layout")
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
        if not isinstance(version, str) or not version.startswith("1."):
            raise ArchiveError(f"archive entry 'oci-layout': unsupported imageLayoutVersion {version!r}")
    index = read_json(src, "index.json", "image index")
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


def _manifest_layers(found: _OciManifest, src: Source, config: ImageConfig, what: str) -> tuple[LayerPlan, ...]:
    _check_layer_count(what, len(found.manifest.layers), config)
    return tuple(LayerPlan(check_blob(src, d, what), diff_id, d)
                 for d, diff_id in zip(found.manifest.layers, config.diff_ids))


def _oci_plans(src: Source) -> list[ImagePlan]:
    plans = []
    for found in _oci_manifests(src):
        config_name = check_blob(src, found.manifest.config, f"manifest {found.digest}")
        config_bytes = read_bytes(src, config_name, "image config")
        config = _parse_config(config_bytes, config_name)
        tags, skipped = _oci_tags(found.descriptor)
        plans.append(ImagePlan(found.manifest.config.digest, config_bytes,
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


def _docker_plan(src: Source, item: Any, n: int, oci: dict[str, _OciManifest]) -> ImagePlan:
    what = f"manifest.json[{n}]"
    if not isinstance(item, dict) or not isinstance(item.get("Config"), str) \
            or not isinstance(item.get("Layers"), list):
        raise ArchiveError(f"{what}: Config and Layers expected")
    config_name = clean(item["Config"], f"{what} Config")
    config_bytes = read_bytes(src, config_name, "image config")
    image_id = sha256_bytes(config_bytes)
    _check_config_name(config_name, image_id)
    config = _parse_config(config_bytes, config_name)
    tags = _repo_tags(item.get("RepoTags"))
    parent = item.get("Parent") if isinstance(item.get("Parent"), str) else None
    found = oci.get(image_id)
    if found is not None and len(found.manifest.layers) == len(config.diff_ids):
        return ImagePlan(image_id, config_bytes, _manifest_layers(found, src, config, what), tags, (),
                         parent, found.data, found.media_type)
    if not all(isinstance(x, str) for x in item["Layers"]):
        raise ArchiveError(f"{what}: Layers must be archive paths")
    names = [clean(x, f"{what} Layers entry") for x in item["Layers"]]
    _check_layer_count(what, len(names), config)
    for name in names:
        named = blob_digest(name)
        if named is not None:
            verify_digest(src, name, named)
    return ImagePlan(image_id, config_bytes, tuple(LayerPlan(m, d) for m, d in zip(names, config.diff_ids)),
                     tags, (), parent)


def _docker_plans(src: Source) -> list[ImagePlan]:
    items = read_json(src, "manifest.json", "manifest")
    if not isinstance(items, list):
        raise ArchiveError("archive entry 'manifest.json': a list of images expected")
    oci: dict[str, _OciManifest] = {}
    if src.exists("index.json"):  # Docker 25+: keep the OCI manifests it wrote
        for found in _oci_manifests(src):
            oci.setdefault(found.manifest.config.digest, found)
    return [_docker_plan(src, item, n, oci) for n, item in enumerate(items)]


def plans(src: Source) -> list[ImagePlan]:
    """One plan per image the archive lists, in archive order, everything but DiffIDs verified."""
    if src.exists("manifest.json"):
        return _docker_plans(src)
    if src.exists("index.json"):
        return _oci_plans(src)
    if src.exists("repositories"):
        raise ArchiveError("legacy archives without manifest.json (Docker < 1.10) are not supported")
    raise ArchiveError("not an image archive: no manifest.json or index.json")
