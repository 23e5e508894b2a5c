"""OCI distribution-spec conformance: pull, push, content discovery, content management.

Every test runs against LayerLab's registry AND the real Docker registry (Debian's docker-registry,
Distribution 2.8), with raw HTTP (``requests``). Where Distribution 2.8 legitimately differs from the
spec (it predates distribution-spec 1.1, or the behaviour is optional), the test says so with
:func:`spec_or_known_gap`, asserts the spec for LayerLab, and asserts Distribution's documented
behaviour for the Docker registry, so a change in either shows up.
"""
from __future__ import annotations

import http.client
import json

import pytest
import requests

from tests.integration._registry_server import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Client,
                                                LayerLabRegistry, digest_of, error_codes)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["layerlab", "docker"])
def server(request, docker_registry):
    if request.param == "docker":
        reg = docker_registry()
        reg.kind = "docker"
        yield reg
        return
    reg = LayerLabRegistry()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def client(server) -> Client:
    with requests.Session() as session:
        yield Client(server.url, session)


def spec_or_known_gap(server, spec_ok: bool, docker_ok: bool, why: str) -> None:
    """LayerLab must follow the spec; Distribution 2.8 must show its known, documented deviation ``why``."""
    if server.kind == "layerlab":
        assert spec_ok, f"LayerLab must follow the spec here ({why})"
    else:
        assert docker_ok, f"Docker registry no longer behaves as documented: {why}"


# --- pull ------------------------------------------------------------------------------------------

def test_base_endpoint(client):
    r = client.request("GET", "/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_pull_manifest_by_tag_and_digest_gives_exact_bytes(client):
    digest, manifest = client.push_image("pull/app", "v1")
    for ref in ("v1", digest):
        r = client.request("GET", f"/v2/pull/app/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200
        assert r.content == manifest
        assert r.headers["Content-Type"] == OCI_MANIFEST
        assert r.headers["Docker-Content-Digest"] == digest


def test_head_manifest_and_blob_have_headers_but_no_body(client):
    digest, manifest = client.push_image("pull/head", "v1")
    r = client.request("HEAD", "/v2/pull/head/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) == len(manifest)
    assert r.headers["Docker-Content-Digest"] == digest
    blob = client.push_blob("pull/head", b"some blob")
    r = client.request("HEAD", f"/v2/pull/head/blobs/{blob}")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) == len(b"some blob")
    assert r.headers["Docker-Content-Digest"] == blob


def test_pull_blob(client):
    data = bytes(range(256)) * 1000
    digest = client.push_blob("pull/blob", data)
    r = client.request("GET", f"/v2/pull/blob/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data and digest_of(r.content) == digest


def test_unknown_manifest_and_blob_are_404_with_error_json(client):
    client.push_image("pull/missing", "v1")
    r = client.request("GET", "/v2/pull/missing/manifests/nope")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = client.request("GET", f"/v2/pull/missing/blobs/{digest_of(b'absent')}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    r = client.request("HEAD", f"/v2/pull/missing/blobs/{digest_of(b'absent')}")
    assert r.status_code == 404 and r.content == b""


def test_blob_is_visible_only_in_the_repository_that_pushed_it(client):
    digest = client.push_blob("pull/owner", b"private layer")
    assert client.request("HEAD", f"/v2/pull/owner/blobs/{digest}").status_code == 200
    assert client.request("HEAD", f"/v2/pull/other/blobs/{digest}").status_code == 404


# --- push ------------------------------------------------------------------------------------------

def test_monolithic_post_then_put(client):
    r = client.request("POST", "/v2/push/mono/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["Location"] and r.headers.get("Docker-Upload-UUID")
    data = b"monolithic"
    r = client.session.put(client.abs(r.headers["Location"]), params={"digest": digest_of(data)}, data=data,
                           headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201
    assert r.headers["Docker-Content-Digest"] == digest_of(data)
    assert client.request("GET", r.headers["Location"]).content == data


def test_single_post_with_digest(server, client):
    """The one-request upload is optional: 201, or 202 and the client carries on with PUT."""
    data = b"single post"
    r = client.request("POST", "/v2/push/single/blobs/uploads/", params={"digest": digest_of(data)}, data=data,
                       headers={"Content-Type": "application/octet-stream"})
    spec_or_known_gap(server, r.status_code == 201, r.status_code == 202,
                      "Distribution 2.8 ignores ?digest= on POST and opens a session (allowed: the spec "
                      "makes the single-POST upload optional)")
    if r.status_code == 202:
        r = client.session.put(client.abs(r.headers["Location"]), params={"digest": digest_of(data)}, data=data)
        assert r.status_code == 201
    assert client.request("GET", f"/v2/push/single/blobs/{digest_of(data)}").content == data


def test_chunked_upload_with_status_and_ranges(client):
    r = client.request("POST", "/v2/push/chunks/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["Location"]
    parts = [b"first-", b"second-", b"third"]
    offset = 0
    for part in parts[:2]:
        r = client.session.patch(client.abs(location), data=part, headers={
            "Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{offset + len(part) - 1}"})
        assert r.status_code == 202, r.text
        offset += len(part)
        assert r.headers["Range"] == f"0-{offset - 1}"
        location = r.headers["Location"]
    r = client.session.get(client.abs(location))
    assert r.status_code == 204 and r.headers["Range"] == f"0-{offset - 1}"
    whole = b"".join(parts)
    r = client.session.put(client.abs(location), params={"digest": digest_of(whole)}, data=parts[2], headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{len(whole) - 1}"})
    assert r.status_code == 201
    assert client.request("GET", f"/v2/push/chunks/blobs/{digest_of(whole)}").content == whole


def test_streamed_patch_without_content_range(client):
    """Docker's own client sends one chunked-encoded PATCH without Content-Range."""
    data = b"x" * 300_000
    r = client.request("POST", "/v2/push/stream/blobs/uploads/")
    r = client.session.patch(client.abs(r.headers["Location"]), data=iter([data[:100_000], data[100_000:]]))
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    r = client.session.put(client.abs(r.headers["Location"]), params={"digest": digest_of(data)})
    assert r.status_code == 201


def test_out_of_order_chunk_is_416(server, client):
    r = client.request("POST", "/v2/push/order/blobs/uploads/")
    location = r.headers["Location"]
    r = client.session.patch(client.abs(location), data=b"abc", headers={"Content-Range": "0-2"})
    assert r.status_code == 202
    location = r.headers["Location"]
    r = client.session.patch(client.abs(location), data=b"xyz", headers={"Content-Range": "5-7"})
    spec_or_known_gap(server, r.status_code == 416, r.status_code == 202,
                      "Distribution 2.8 does not check Content-Range on PATCH (the 416 rule came with "
                      "distribution-spec 1.0 / Distribution 3)")
    if server.kind == "layerlab":
        assert r.headers["Range"] == "0-2"  # the session is unchanged and can go on
        status = client.session.get(client.abs(location))
        assert status.status_code == 204 and status.headers["Range"] == "0-2"


def test_digest_mismatch_is_digest_invalid_and_stores_nothing(client):
    r = client.request("POST", "/v2/push/bad/blobs/uploads/")
    claimed = digest_of(b"what I claim")
    r = client.session.put(client.abs(r.headers["Location"]), params={"digest": claimed}, data=b"what I send")
    assert r.status_code == 400 and "DIGEST_INVALID" in error_codes(r)
    for digest in (claimed, digest_of(b"what I send")):
        assert client.request("HEAD", f"/v2/push/bad/blobs/{digest}").status_code == 404


def test_cross_repository_mount(client):
    digest = client.push_blob("push/source", b"shared layer")
    r = client.request("POST", "/v2/push/target/blobs/uploads/", params={"mount": digest, "from": "push/source"})
    assert r.status_code == 201
    assert r.headers["Docker-Content-Digest"] == digest
    assert client.request("GET", f"/v2/push/target/blobs/{digest}").content == b"shared layer"
    # a blob the source does not have: the registry opens an ordinary upload instead
    r = client.request("POST", "/v2/push/target/blobs/uploads/",
                       params={"mount": digest_of(b"nowhere"), "from": "push/source"})
    assert r.status_code == 202 and r.headers["Location"]


def test_manifest_with_missing_blob_is_manifest_blob_unknown(client):
    config = client.push_blob("push/man", b"{}")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config, "size": 2},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": digest_of(b"never pushed"), "size": 12}]}).encode()
    r = client.push_manifest("push/man", "v1", manifest, OCI_MANIFEST)
    assert r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in error_codes(r)
    assert client.request("GET", "/v2/push/man/manifests/v1").status_code == 404


def test_manifest_content_type_must_match_media_type(client):
    _, manifest = client.push_image("push/ctype", "ok")
    r = client.push_manifest("push/ctype", "wrong", manifest, DOCKER_MANIFEST)
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]
    assert client.request("GET", "/v2/push/ctype/manifests/wrong").status_code == 404


def test_docker_v2_manifest_and_put_by_digest(client):
    digest, manifest = client.push_image("push/docker", "latest", media_type=DOCKER_MANIFEST)
    r = client.request("GET", f"/v2/push/docker/manifests/{digest}", headers={"Accept": DOCKER_MANIFEST})
    assert r.headers["Content-Type"] == DOCKER_MANIFEST and r.content == manifest
    r = client.push_manifest("push/docker", digest, manifest, DOCKER_MANIFEST)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize("index_type,manifest_type", [(OCI_INDEX, OCI_MANIFEST), (DOCKER_LIST, DOCKER_MANIFEST)])
def test_image_index(client, index_type, manifest_type):
    digest, manifest = client.push_image("push/index", "amd64", media_type=manifest_type)
    index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": [
        {"mediaType": manifest_type, "digest": digest, "size": len(manifest),
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    r = client.push_manifest("push/index", "multi", index, index_type)
    assert r.status_code == 201, r.text
    r = client.request("GET", "/v2/push/index/manifests/multi", headers={"Accept": index_type})
    assert r.content == index and r.headers["Content-Type"] == index_type


def test_invalid_names_are_refused(server, client):
    long_name = "a" * 128 + "/" + "b" * 128  # each part fine, 257 characters in all (the limit is 255)
    r = client.request("POST", f"/v2/{long_name}/blobs/uploads/")
    spec_or_known_gap(server, r.status_code == 400 and error_codes(r) == ["NAME_INVALID"],
                      r.status_code == 500 and error_codes(r) == ["UNKNOWN"],
                      "Distribution 2.8 does not map its too-long-name error to NAME_INVALID (500 UNKNOWN)")
    for path in ("/v2/Upper/Case/blobs/uploads/", "/v2/a/../b/blobs/uploads/"):
        conn = http.client.HTTPConnection(server.host, timeout=10)  # raw: requests would normalise `..`
        try:
            conn.request("POST", path)
            response = conn.getresponse()
            status, body = response.status, response.read()
        finally:
            conn.close()
        if server.kind == "layerlab":
            assert status == 400 and json.loads(body)["errors"][0]["code"] == "NAME_INVALID", (path, body)
        else:
            # Distribution's router never matches such a path: 404 for upper case, 301 to the cleaned
            # path for `..`; either way no upload session is opened for an invalid name.
            assert status in (301, 404), (path, status)
    assert client.request("GET", "/v2/_catalog").json()["repositories"] == []


# --- content discovery -----------------------------------------------------------------------------

def test_tags_list_with_pagination(server, client):
    _, manifest = client.push_image("disc/tags", "b")
    for tag in ("d", "a", "c"):
        assert client.push_manifest("disc/tags", tag, manifest, OCI_MANIFEST).status_code == 201
    body = client.request("GET", "/v2/disc/tags/tags/list").json()
    assert body["name"] == "disc/tags"
    spec_or_known_gap(server, body["tags"] == ["a", "b", "c", "d"], sorted(body["tags"]) == ["a", "b", "c", "d"],
                      "Distribution 2.8 sorts tags only when paginating (n=); LayerLab always answers in lexical order")
    r = client.request("GET", "/v2/disc/tags/tags/list", params={"n": 2})
    spec_or_known_gap(server, r.json()["tags"] == ["a", "b"] and 'rel="next"' in r.headers.get("Link", ""),
                      sorted(r.json()["tags"]) == ["a", "b", "c", "d"] and "Link" not in r.headers,
                      "Distribution 2.8 ignores n/last on tags/list (tag pagination arrived in Distribution 3)")
    if server.kind == "layerlab":
        assert "last=b" in r.headers["Link"]
        r = client.request("GET", "/v2/disc/tags/tags/list", params={"n": 2, "last": "b"})
        assert r.json()["tags"] == ["c", "d"] and "Link" not in r.headers
    r = client.request("GET", "/v2/disc/nothing/tags/list")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]


def test_catalog_with_pagination(client):
    for repo in ("disc/zeta", "disc/alpha", "disc/mid"):
        client.push_image(repo, "v1")
    assert client.request("GET", "/v2/_catalog").json() == {"repositories": ["disc/alpha", "disc/mid", "disc/zeta"]}
    r = client.request("GET", "/v2/_catalog", params={"n": 2})
    assert r.json()["repositories"] == ["disc/alpha", "disc/mid"] and 'rel="next"' in r.headers["Link"]
    r = client.request("GET", "/v2/_catalog", params={"n": 2, "last": "disc/mid"})
    assert r.json()["repositories"] == ["disc/zeta"]


# --- content management ----------------------------------------------------------------------------

def test_delete_manifest_by_digest(client):
    digest, _ = client.push_image("mgmt/man", "v1")
    r = client.request("DELETE", f"/v2/mgmt/man/manifests/{digest}")
    assert r.status_code == 202
    assert client.request("GET", f"/v2/mgmt/man/manifests/{digest}").status_code == 404
    assert client.request("GET", "/v2/mgmt/man/manifests/v1").status_code == 404
    r = client.request("DELETE", f"/v2/mgmt/man/manifests/{digest}")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]


def test_delete_tag(server, client):
    digest, manifest = client.push_image("mgmt/tag", "keep")
    client.push_manifest("mgmt/tag", "drop", manifest, OCI_MANIFEST)
    r = client.request("DELETE", "/v2/mgmt/tag/manifests/drop")
    spec_or_known_gap(server, r.status_code == 202, r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"],
                      "deleting a tag is optional in distribution-spec 1.1; Distribution 2.8 only deletes by digest")
    tags = client.request("GET", "/v2/mgmt/tag/tags/list").json()["tags"]
    assert tags == (["keep"] if server.kind == "layerlab" else ["drop", "keep"])
    assert client.request("GET", f"/v2/mgmt/tag/manifests/{digest}", headers={"Accept": OCI_MANIFEST}).status_code == 200


def test_delete_blob(client):
    digest = client.push_blob("mgmt/blob", b"to delete")
    r = client.request("DELETE", f"/v2/mgmt/blob/blobs/{digest}")
    assert r.status_code == 202
    r = client.request("GET", f"/v2/mgmt/blob/blobs/{digest}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    r = client.request("DELETE", f"/v2/mgmt/blob/blobs/{digest}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]


def test_cancel_upload(client):
    r = client.request("POST", "/v2/mgmt/upload/blobs/uploads/")
    location = client.abs(r.headers["Location"])
    location = client.abs(client.session.patch(location, data=b"partial").headers["Location"])
    assert client.session.delete(location).status_code == 204
    r = client.session.get(location)
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]


# --- authentication (htpasswd, HTTP Basic) ---------------------------------------------------------

@pytest.fixture(params=["layerlab", "docker"])
def basic_server(request, docker_registry, tmp_path):
    if request.param == "docker":
        reg = docker_registry(auth=True)
        reg.kind = "docker"
        yield reg
        return
    from tests.fixtures.registry import TEST_PASSWORD, TEST_USER, bcrypt_htpasswd_line

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(bcrypt_htpasswd_line(TEST_USER, TEST_PASSWORD) + "\n")
    reg = LayerLabRegistry(auth_file=str(htpasswd))
    reg.user, reg.password = TEST_USER, TEST_PASSWORD
    try:
        yield reg
    finally:
        reg.stop()


def test_basic_auth_challenge_and_credentials(basic_server):
    url = basic_server.url
    for method, path in (("GET", "/v2/"), ("POST", "/v2/auth/app/blobs/uploads/"), ("GET", "/v2/_catalog")):
        r = requests.request(method, url + path)
        assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
        assert r.headers["WWW-Authenticate"].startswith('Basic realm="')
    assert requests.get(url + "/v2/", auth=(basic_server.user, "wrong")).status_code == 401
    assert requests.get(url + "/v2/", auth=("nobody", basic_server.password)).status_code == 401
    with requests.Session() as session:
        session.auth = (basic_server.user, basic_server.password)
        client = Client(url, session)
        assert client.request("GET", "/v2/").status_code == 200
        digest, manifest = client.push_image("auth/app", "v1")
        r = client.request("GET", "/v2/auth/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert r.content == manifest
