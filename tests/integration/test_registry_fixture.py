"""The docker-registry fixture: a real Distribution registry on loopback, with and without auth."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_open_registry_answers_and_is_empty(docker_registry) -> None:
    registry = docker_registry()
    assert registry.url == f"http://{registry.host}"
    assert registry.host.startswith("127.0.0.1:")
    assert registry.user is None and registry.password is None
    status, headers, _ = registry.get("/v2/")
    assert status == 200
    assert headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    status, _, body = registry.get("/v2/_catalog")
    assert status == 200
    assert json.loads(body) == {"repositories": []}


def test_registry_with_basic_auth(docker_registry) -> None:
    registry = docker_registry(auth=True)
    assert (registry.user, registry.password) == ("student", "s3cret")
    status, headers, _ = registry.get("/v2/", authenticate=False)
    assert status == 401
    assert headers.get("Www-Authenticate", "").startswith("Basic ")
    status, _, _ = registry.get("/v2/")
    assert status == 200
    status, _, body = registry.get("/v2/_catalog")
    assert status == 200
    assert json.loads(body) == {"repositories": []}


def test_config_enables_nothing_outside(docker_registry) -> None:
    registry = docker_registry()
    config = json.loads(registry.config_path.read_text())
    assert set(config) == {"version", "log", "storage", "http"}
    assert config["http"]["addr"] == registry.host


def test_two_registries_side_by_side(docker_registry) -> None:
    first, second = docker_registry(), docker_registry()
    assert first.port != second.port
    assert first.get("/v2/")[0] == second.get("/v2/")[0] == 200
