"""Push as dockerd does it, against the real registry: several blobs at once with the lines still in
layer order, and existence checks only for layers the store remembers somewhere."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import Engine
from engine.digest import short_id
from engine.registry.events import LayerProgress, Pushed
from engine.registry.transfer import events_text
from tests.integration.test_push_pull_registry import DIGEST_LINE, build, cli, diff_ids, registry_manifest

pytestmark = pytest.mark.integration


def test_lines_come_top_layer_first_and_every_upload_reports_its_bytes(docker_registry, tmp_path: Path) -> None:
    registry = docker_registry()
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    name = f"{registry.host}/whoami/ordered:latest"
    cli(eng, "tag", "static_web", name)
    ids = [short_id(d) for d in reversed(diff_ids(eng, name))]
    events = list(eng.push(name))
    lines = [e for e in events if isinstance(e, LayerProgress) and e.status != "Pushing"]
    assert [(e.id, e.status) for e in lines] == [(i, "Preparing") for i in ids] + [(i, "Pushed") for i in ids]
    manifest, digest = registry_manifest(registry, "whoami/ordered", "latest")
    assert isinstance(events[-1], Pushed) and events[-1].digest == digest
    sizes = {short_id(d): layer["size"] for d, layer in zip(diff_ids(eng, name), json.loads(manifest)["layers"])}
    for i in ids:   # the last tick of each upload is the whole blob, as the registry recorded it
        ticks = [e for e in events if isinstance(e, LayerProgress) and e.id == i and e.status == "Pushing"]
        assert ticks and ticks[-1].current == ticks[-1].total == sizes[i]


def test_a_store_that_never_pushed_a_layer_uploads_it_without_asking(docker_registry, tmp_path: Path) -> None:
    """dockerd HEADs a layer only when its metadata remembers the layer somewhere; a daemon that never
    pushed or pulled it uploads again (the registry accepts the same blob), then knows it."""
    registry = docker_registry()
    name = f"{registry.host}/class/busybox:latest"
    first, second = Engine(tmp_path / "first"), Engine(tmp_path / "second")
    for eng in (first, second):
        eng.bootstrap()
        assert cli(eng, "tag", "busybox:latest", name).code == 0
    layer = short_id(diff_ids(first, name)[0])

    assert events_text(first.push(name)).splitlines()[1:3] == [f"{layer}: Preparing", f"{layer}: Pushed"]
    assert events_text(second.push(name)).splitlines()[1:3] == [f"{layer}: Preparing", f"{layer}: Pushed"]
    again = events_text(second.push(name)).splitlines()
    assert again[1:3] == [f"{layer}: Preparing", f"{layer}: Layer already exists"]
    assert DIGEST_LINE.match(again[-1])
    other = f"{registry.host}/class/copy:latest"
    cli(second, "tag", "busybox:latest", other)
    assert events_text(second.push(other)).splitlines()[2] == f"{layer}: Mounted from class/busybox"


def test_a_failing_push_stores_no_repo_digest(docker_registry, tmp_path: Path) -> None:
    """Every blob refused (no credentials): the error is the registry's, and nothing is recorded."""
    registry = docker_registry(auth=True)
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    name = f"{registry.host}/whoami/static_web:latest"
    cli(eng, "tag", "static_web", name)
    result = cli(eng, "push", name)
    assert (result.code, result.err) == (1, "no basic auth credentials\n")
    assert not eng.store.repo_digests()
    assert eng.store.get_kv("registry.pushed") is None
