"""Token (Bearer) auth and ``search``, against the small loopback HTTP server of the hostile-registry
tests (the Debian docker-registry only speaks Basic auth and has no search)."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from engine import Engine
from engine.errors import RegistryError
from tests.integration.test_pull_hostile_registry import FakeRegistry, layer_tar
from tests.integration.test_push_pull_registry import cli

pytestmark = pytest.mark.integration

TOKEN = "tok-123"


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    try:
        yield server
    finally:
        server.close()


def bearer_guard(server: FakeRegistry, tokens: list[dict]):
    good = "Basic " + base64.b64encode(b"student:s3cret").decode()

    def reply(h, status: int, headers: dict[str, str], body: bytes = b"") -> bool:
        h.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **headers}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        return False

    def guard(h) -> bool:
        parts = urlsplit(h.path)
        if parts.path == "/token":
            tokens.append(parse_qs(parts.query))
            if h.headers.get("Authorization") != good:
                return reply(h, 401, {}, b'{"details":"incorrect username or password"}')
            return reply(h, 200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode())
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = f'Bearer realm="http://{server.host}/token",service="fake",scope="repository:demo/app:pull"'
            return reply(h, 401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                         b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        return True

    return guard


def test_bearer_token_flow(fake: FakeRegistry, tmp_path: Path) -> None:
    tokens: list[dict] = []
    fake.guard = bearer_guard(fake, tokens)
    ids = fake.image("demo/app", "latest", layer=layer_tar(b"token\n"))
    name = f"{fake.host}/demo/app:latest"
    eng = Engine(tmp_path / "home")

    with pytest.raises(RegistryError, match="unauthorized"):
        list(eng.pull(name))
    assert not eng.store.images()

    wrong = cli(eng, "login", "-u", "student", "-p", "nope", fake.host)
    assert wrong.code == 1
    assert wrong.err.splitlines() == [
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
        f'Error response from daemon: Get "http://{fake.host}/v2/": unauthorized: incorrect username or password']

    ok = cli(eng, "login", "-u", "student", "--password-stdin", fake.host, stdin=b"s3cret\n")
    assert ok.code == 0 and ok.out == "Login Succeeded\n", ok
    tokens.clear()
    result = cli(eng, "pull", name)
    assert result.code == 0, result
    assert eng.image_id(name) == ids["config"]
    assert len(tokens) == 1                                    # one token for the whole pull (cached per scope)
    assert tokens[0] == {"service": ["fake"], "scope": ["repository:demo/app:pull"]}


SEARCH = {"num_results": 3, "query": "busy", "results": [
    {"name": "busybox", "description": "Busybox base image.", "star_count": 3000, "is_official": True,
     "is_automated": False},
    {"name": "whoami/busy-web", "description": "A static web server on busybox, built in class\nwith the seed "
     "Dockerfile, and a very long description", "star_count": 12, "is_official": False, "is_automated": True},
    {"name": "someone/busy", "description": "", "star_count": 0, "is_official": False, "is_automated": False},
]}


def test_search_table(fake: FakeRegistry, tmp_path: Path, monkeypatch) -> None:
    fake.routes["/v1/search"] = (200, {"Content-Type": "application/json"}, json.dumps(SEARCH).encode())
    monkeypatch.setenv("LAYERLAB_HUB_MIRROR", fake.host)
    eng = Engine(tmp_path / "home")
    result = cli(eng, "search", "busy")
    assert result.code == 0, result
    assert result.out == (
        "NAME              DESCRIPTION                                     STARS     OFFICIAL   AUTOMATED\n"
        "busybox           Busybox base image.                             3000      [OK]       \n"
        "whoami/busy-web   A static web server on busybox, built in cla…   12                   [OK]\n"
        "someone/busy                                                      0                    \n")
    assert parse_qs(urlsplit(fake.requests[-1]).query) == {"q": ["busy"], "n": ["25"]}
    assert "built in class with the seed Dockerfile, and a very long description" in \
        cli(eng, "search", "--no-trunc", "busy").out
    assert [line.split()[0] for line in cli(eng, "search", "-f", "stars=10", "busy").out.splitlines()[1:]] == \
        ["busybox", "whoami/busy-web"]
    assert [line.split()[0] for line in cli(eng, "search", "-f", "is-official=true", "busy").out.splitlines()[1:]] == \
        ["busybox"]
    cli(eng, "search", "--limit", "2", "busy")
    assert parse_qs(urlsplit(fake.requests[-1]).query)["n"] == ["2"]
    bad = cli(eng, "search", "--limit", "200", "busy")
    assert (bad.code, bad.err) == (1, "Error response from daemon: Limit 200 is outside the range of [1, 100]\n")
    bad = cli(eng, "search", "-f", "color=red", "busy")
    assert (bad.code, bad.err) == (1, "Error response from daemon: Invalid filter 'color'\n")


def test_pushing_a_root_repository_to_the_hub_shows_the_servers_denial(fake: FakeRegistry, tmp_path: Path,
                                                                         monkeypatch) -> None:
    """``docker push busybox`` goes to the Hub (here its mirror), which refuses: its DENIED message is shown."""
    fake.routes["/v2/library/busybox/blobs/uploads/"] = (
        403, {"Content-Type": "application/json"},
        b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}')
    monkeypatch.setenv("LAYERLAB_HUB_MIRROR", fake.host)
    eng = Engine(tmp_path / "home")
    eng.bootstrap()
    result = cli(eng, "push", "busybox")
    assert result.code == 1
    assert result.lines[0] == "The push refers to repository [docker.io/library/busybox]"
    assert result.lines[1].endswith(": Preparing")
    assert result.err == "denied: requested access to the resource is denied\n"
    assert "/v2/library/busybox/blobs/uploads/" in fake.requests
