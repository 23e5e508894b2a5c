"""The classroom hub: accounts, Docker Hub's token flow, namespaces, search with stars, seeding."""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re

import pytest
import requests

from engine.cli import Streams, run
from engine.registry.hub import Hub
from engine.registry.storage import RegistryStorage
from tests.integration._registry_server import DOCKER_MANIFEST, Client, LayerLabRegistry, error_codes

pytestmark = pytest.mark.integration

ALICE, ALICE_PW = "alice", "wonderland"
TEACHER, TEACHER_PW = "teacher", "chalkboard"


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory) -> bytes:
    """alice, bob and teacher (admin): made once, bcrypt is slow on purpose."""
    accounts = Hub(RegistryStorage(tmp_path_factory.mktemp("accounts")))
    accounts.add_user(ALICE, ALICE_PW)
    accounts.add_user("bob", "builder")
    accounts.add_user(TEACHER, TEACHER_PW, admin=True)
    return accounts.accounts_path.read_bytes()


@pytest.fixture
def hub(tmp_path, accounts_file):
    (tmp_path / "hub-root" / "hub").mkdir(parents=True)
    (tmp_path / "hub-root" / "hub" / "accounts.json").write_bytes(accounts_file)
    server = LayerLabRegistry(tmp_path / "hub-root", hub=True)
    try:
        yield server
    finally:
        server.stop()


def challenge(response: requests.Response) -> dict[str, str]:
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def get_token(hub, scope: str, user: str | None = None, password: str | None = None) -> requests.Response:
    auth = (user, password) if user else None
    return requests.get(f"{hub.url}/token", params={"service": "layerlab-hub", "scope": scope}, auth=auth)


def client_for(hub, repo: str, user: str | None = None, password: str | None = None) -> Client:
    r = get_token(hub, f"repository:{repo}:pull,push", user, password)
    assert r.status_code == 200, r.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return Client(hub.url, session)


def test_token_flow_like_docker_hub(hub):
    r = requests.get(f"{hub.url}/v2/")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    params = challenge(r)
    assert params["realm"] == f"{hub.url}/token" and params["service"] == "layerlab-hub"
    r = requests.post(f"{hub.url}/v2/alice/web/blobs/uploads/")
    assert r.status_code == 401 and challenge(r)["scope"] == "repository:alice/web:pull,push"

    r = get_token(hub, "repository:alice/web:pull,push", ALICE, ALICE_PW)
    body = r.json()
    assert r.status_code == 200 and body["token"] == body["access_token"] and body["expires_in"] > 0
    r = requests.get(f"{hub.url}/v2/", headers={"Authorization": f"Bearer {body['token']}"})
    assert r.status_code == 200

    forged = body["token"][:-2] + ("AA" if not body["token"].endswith("AA") else "BB")
    r = requests.get(f"{hub.url}/v2/", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_wrong_password_gets_no_token(hub):
    r = get_token(hub, "repository:alice/web:pull,push", ALICE, "not-the-password")
    assert r.status_code == 401
    assert "token" not in r.json() and "incorrect username or password" in r.text
    r = get_token(hub, "repository:alice/web:pull", "nobody", "x")
    assert r.status_code == 401


def test_anonymous_may_pull_but_not_push(hub):
    owner = client_for(hub, "alice/web", ALICE, ALICE_PW)
    digest, manifest = owner.push_image("alice/web", "v1")
    anonymous = client_for(hub, "alice/web")
    r = anonymous.request("GET", "/v2/alice/web/manifests/v1", headers={"Accept": "*/*"})
    assert r.status_code == 200 and r.content == manifest
    r = anonymous.request("POST", "/v2/alice/web/blobs/uploads/")
    assert r.status_code == 401 and challenge(r)["error"] == "insufficient_scope"


def test_namespaces_and_the_root_repository_rule(hub):
    alice = client_for(hub, "library/web", ALICE, ALICE_PW)
    r = alice.request("POST", "/v2/library/web/blobs/uploads/")
    assert r.status_code == 403 and error_codes(r) == ["DENIED"]
    message = r.json()["errors"][0]["message"]
    assert message.startswith("requested access to the resource is denied")
    assert 'impossible to push a "root" repository' in message and "alice/web" in message

    bare = client_for(hub, "web", ALICE, ALICE_PW)
    r = bare.request("POST", "/v2/web/blobs/uploads/")
    assert r.status_code == 403 and '"root" repository' in r.json()["errors"][0]["message"]

    other = client_for(hub, "bob/web", ALICE, ALICE_PW)
    r = other.request("POST", "/v2/bob/web/blobs/uploads/")
    assert r.status_code == 403 and "namespace of 'bob'" in r.json()["errors"][0]["message"]

    own = client_for(hub, "alice/web", ALICE, ALICE_PW)
    own.push_image("alice/web", "v1")

    teacher = client_for(hub, "library/web", TEACHER, TEACHER_PW)
    teacher.push_image("library/web", "latest")
    r = requests.get(f"{hub.url}/v1/search", params={"q": "web"})
    assert {x["name"] for x in r.json()["results"]} == {"web", "alice/web"}


def test_search_stars_and_descriptions(hub):
    client_for(hub, "alice/webserver", ALICE, ALICE_PW).push_image("alice/webserver", "v1")
    client_for(hub, "library/nginxish", TEACHER, TEACHER_PW).push_image("library/nginxish", "latest")
    client_for(hub, "bob/tools", "bob", "builder").push_image("bob/tools", "v1")

    r = requests.post(f"{hub.url}/v1/repositories/alice/webserver/star", auth=("bob", "builder"))
    assert r.status_code == 200 and r.json() == {"star_count": 1}
    r = requests.post(f"{hub.url}/v1/repositories/alice/webserver/star", auth=("bob", "builder"))
    assert r.json() == {"star_count": 1}  # one star per user
    assert requests.post(f"{hub.url}/v1/repositories/alice/webserver/star",
                         auth=("bob", "wrong")).status_code == 401
    out = Streams(stdout=io.StringIO(), stderr=io.StringIO())
    assert run(["hub", "star", "--root", str(hub.root), "--user", TEACHER, "alice/webserver"], out) == 0
    assert out.stdout.getvalue() == "alice/webserver: 2 stars\n"

    r = requests.put(f"{hub.url}/v1/repositories/alice/webserver/description", auth=("bob", "builder"),
                     json={"description": "not mine"})
    assert r.status_code == 403
    r = requests.put(f"{hub.url}/v1/repositories/alice/webserver/description", auth=(ALICE, ALICE_PW),
                     json={"description": "A tiny web server for the course"})
    assert r.status_code == 200
    assert run(["hub", "describe", "--root", str(hub.root), "library/nginxish", "An official web server"], out) == 0

    r = requests.get(f"{hub.url}/v1/search", params={"q": "web", "n": 25})
    body = r.json()
    assert body["query"] == "web" and body["num_results"] == 2
    assert body["results"] == [
        {"name": "alice/webserver", "description": "A tiny web server for the course", "star_count": 2,
         "is_official": False, "is_automated": False, "is_trusted": False},
        {"name": "nginxish", "description": "An official web server", "star_count": 0,
         "is_official": True, "is_automated": False, "is_trusted": False},
    ]
    assert requests.get(f"{hub.url}/v1/search", params={"q": "web", "n": 1}).json()["results"][0]["name"] == \
        "alice/webserver"
    assert requests.get(f"{hub.url}/v1/search", params={"q": "zzz"}).json()["num_results"] == 0


def test_adduser_cli_and_login(hub):
    stdin = io.BytesIO(b"s3cret-pw\n")
    out = Streams(stdout=io.StringIO(), stderr=io.StringIO(), stdin=stdin)
    assert run(["hub", "adduser", "--root", str(hub.root), "--password-stdin", "carol"], out) == 0
    assert out.stdout.getvalue() == "Account carol ready\n"
    assert get_token(hub, "repository:carol/x:pull,push", "carol", "s3cret-pw").status_code == 200
    assert get_token(hub, "repository:carol/x:pull,push", "carol", "s3cret-pw\n").status_code == 401
    bad = Streams(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.BytesIO(b"pw\n"))
    assert run(["hub", "adduser", "--root", str(hub.root), "--password-stdin", "Bad Name"], bad) == 1
    assert "invalid user name" in bad.stderr.getvalue()


def test_seeded_official_images_are_pullable_and_match_the_store(hub, tmp_home):
    from engine import Engine
    from engine.bootstrap import busybox_available

    if not busybox_available():
        pytest.skip("no busybox on this host to bootstrap from")
    eng = Engine()
    try:
        lines = eng.hub_seed(root=str(hub.root))
        busybox_id = eng.image_id("busybox:latest")
        diff_ids = eng.store.image_diff_ids(busybox_id)
    finally:
        eng.close()
    assert [line.split(":")[0] for line in lines] == ["library/busybox", "library/hello-world"]
    anonymous = client_for(hub, "library/busybox")
    r = anonymous.request("GET", "/v2/library/busybox/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 200 and r.headers["Content-Type"] == DOCKER_MANIFEST
    manifest = r.json()
    assert manifest["config"]["digest"] == busybox_id
    for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
        blob = anonymous.request("GET", f"/v2/library/busybox/blobs/{layer['digest']}").content
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
        assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == diff_id
    results = requests.get(f"{hub.url}/v1/search", params={"q": "busybox"}).json()["results"]
    assert results[0]["name"] == "busybox" and results[0]["is_official"] is True
    assert results[0]["description"] == "Busybox base image."


def test_hub_refuses_bad_scope_strings_quietly(hub):
    r = get_token(hub, "garbage", ALICE, ALICE_PW)
    assert r.status_code == 200
    token = r.json()["token"]
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["access"] == [] and payload["sub"] == ALICE


def test_oauth2_password_grant(hub):
    form = {"grant_type": "password", "username": ALICE, "password": ALICE_PW, "service": "layerlab-hub",
            "scope": "repository:alice/web:pull,push"}
    r = requests.post(f"{hub.url}/token", data=form)
    assert r.status_code == 200
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    Client(hub.url, session).push_image("alice/web", "oauth")
    assert requests.post(f"{hub.url}/token", data={**form, "password": "bad"}).status_code == 401
    assert requests.post(f"{hub.url}/token", data={"grant_type": "refresh_token"}).status_code == 400


def test_a_token_with_too_little_scope_gets_a_new_challenge(hub):
    """A pull token used for a push the account may do: 401 + challenge (fetch a better token), not DENIED."""
    r = get_token(hub, "repository:alice/web:pull", ALICE, ALICE_PW)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    r = session.post(f"{hub.url}/v2/alice/web/blobs/uploads/")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    assert challenge(r)["scope"] == "repository:alice/web:pull,push" and challenge(r)["error"] == "insufficient_scope"
    r = get_token(hub, "repository:library/web:pull", ALICE, ALICE_PW)
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    r = session.post(f"{hub.url}/v2/library/web/blobs/uploads/")
    assert r.status_code == 403 and error_codes(r) == ["DENIED"]
