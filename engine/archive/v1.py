"""Docker 20.10's legacy layer directories: v1 layer IDs and ``<v1 id>/json``.

Reproduced byte for byte the way moby's ``image/tarexport/save.go`` computes and marshals them.
"""
from __future__ import annotations

import json
from typing import Any

from ..digest import chain_ids, hex_of, sha256_bytes
from ..errors import ArchiveError
from .gojson import go_get, go_json, go_struct, go_value
from ..values import value

# image.V1Image after id and parent (which save.go sets itself)
_V1_FIELDS = (
    ("comment", "str", True), ("created", "time", False), ("container", "str", True),
    ("container_config", "config", False), ("docker_version", "str", True), ("author", "str", True),
    ("config", "configptr", True), ("architecture", "str", True), ("variant", "str", True),
    ("os", "str", True), ("Size", "int", True),
)
UNIX_EPOCH_TIME = "1970-01-01T00:00:00Z"


def _v1_body(config: dict[str, Any] | None, os_name: str) -> dict[str, Any]:
    """V1Image fields after id/parent; ``config`` None is the placeholder of a lower layer."""
    if config is None:
        body = go_struct(_V1_FIELDS, {"created": UNIX_EPOCH_TIME})
        if os_name:
            body["os"] = os_name
        return body
    return go_struct(_V1_FIELDS, config)


@value
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
    os_name = go_value("str", go_get(config, "os"))
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
