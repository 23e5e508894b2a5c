"""LayerLab's registry under stress: concurrent pushes, interrupted uploads, blobs tampered with on disk."""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
import requests

from tests.integration._registry_server import OCI_MANIFEST, Client, LayerLabRegistry, digest_of, error_codes

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(tmp_path):
    server = LayerLabRegistry(tmp_path / "root")
    try:
        yield server
    finally:
        server.stop()


def _chunked_push(client: Client, repo: str, data: bytes, pieces: int = 3) -> str:
    r = client.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code in (201, 202), r.text
    location, offset = r.headers["Location"], 0
    step = -(-len(data) // pieces)
    while offset < len(data):
        part = data[offset:offset + step]
        r = client.session.patch(client.abs(location), data=part,
                                 headers={"Content-Range": f"{offset}-{offset + len(part) - 1}"})
        assert r.status_code == 202, r.text
        location, offset = r.headers["Location"], offset + len(part)
    r = client.session.put(client.abs(location), params={"digest": digest_of(data)})
    assert r.status_code == 201, r.text
    return digest_of(data)


@pytest.fixture(params=["registry", "hub"])
def target(request, tmp_path):
    """(server, namespace, session_for(repo)): a plain registry, or a hub where alice pushes alice/…."""
    hub = request.param == "hub"
    if hub:
        from engine.registry.hub import Hub
        from engine.registry.storage import RegistryStorage

        Hub(RegistryStorage(tmp_path / "root")).add_user("alice", "wonderland")
    server = LayerLabRegistry(tmp_path / "root", hub=hub)

    def session_for(repo: str) -> requests.Session:
        session = requests.Session()
        if hub:
            r = requests.get(f"{server.url}/token", params={"scope": f"repository:{repo}:pull,push"},
                             auth=("alice", "wonderland"))
            session.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return session

    try:
        yield server, ("alice" if hub else "class"), session_for
    finally:
        server.stop()


def test_twenty_concurrent_pushes_sharing_layers(target):
    registry, namespace, session_for = target
    base = os.urandom(1 << 20)            # every image shares this layer…
    middle = os.urandom(256 << 10)        # …and half of them this one
    errors: list[BaseException] = []
    expected: dict[tuple[str, str], bytes] = {}
    lock = threading.Lock()

    def push(i: int) -> None:
        try:
            repo = f"{namespace}/shared" if i % 2 else f"{namespace}/app{i}"   # ten push tags of one repository
            with session_for(repo) as session:
                client = Client(registry.url, session)
                layers = [base] + ([middle] if i % 4 < 2 else []) + [f"own layer {i}".encode() * 1000]
                descriptors = [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                "digest": _chunked_push(client, repo, layer), "size": len(layer)}
                               for layer in layers]
                config = f'{{"architecture":"amd64","os":"linux","n":{i}}}'.encode()
                client.push_blob(repo, config)
                manifest = ('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":'
                            '"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":%s}'
                            % (OCI_MANIFEST, digest_of(config), len(config),
                               str(descriptors).replace("'", '"'))).encode()
                r = client.push_manifest(repo, f"v{i}", manifest, OCI_MANIFEST)
                assert r.status_code == 201, r.text
                with lock:
                    expected[(repo, f"v{i}")] = manifest
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(expected) == 20
    for (repo, tag), manifest in expected.items():
        with session_for(repo) as session:
            client = Client(registry.url, session)
            r = client.request("GET", f"/v2/{repo}/manifests/{tag}")
            assert r.status_code == 200 and r.content == manifest
            for layer in r.json()["layers"]:
                blob = client.request("GET", f"/v2/{repo}/blobs/{layer['digest']}")
                assert blob.status_code == 200 and digest_of(blob.content) == layer["digest"]
    with session_for(f"{namespace}/shared") as session:
        tags = Client(registry.url, session).request("GET", f"/v2/{namespace}/shared/tags/list").json()["tags"]
    assert tags == sorted(f"v{i}" for i in range(1, 20, 2))
    stored = os.listdir(registry.root / "blobs" / "sha256")
    assert len(stored) == len(set(stored))
    assert not [n for n in os.listdir(registry.root / "uploads") if not n.startswith(".")]  # all sessions ended


def _abandoned_post(host: str, port: int, path: str, declared: int, sent: bytes) -> None:
    """Send a request whose body stops early, then vanish (a push killed midway)."""
    with socket.create_connection((host, port)) as sock:
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {declared}\r\n\r\n").encode()
        sock.sendall(head + sent)


def _wait_for_partial_session(uploads, size: int) -> bool:
    """Until the server has written the bytes that came (it streams bodies to the session's file)."""
    import time

    for _ in range(400):
        for entry in uploads.iterdir():
            data = entry / "data"
            if not entry.name.startswith(".") and data.exists() and data.stat().st_size == size:
                return True
        time.sleep(0.05)
    return False


def test_upload_killed_midway_is_never_served(registry):
    data = os.urandom(2 << 20)
    digest = digest_of(data)
    host, port = registry.host.split(":")
    _abandoned_post(host, int(port), f"/v2/killed/app/blobs/uploads/?digest={digest}", len(data), data[:1 << 20])
    with requests.Session() as session:
        client = Client(registry.url, session)
        assert _wait_for_partial_session(registry.root / "uploads", 1 << 20)
        assert client.request("HEAD", f"/v2/killed/app/blobs/{digest}").status_code == 404
        assert not (registry.root / "blobs" / "sha256" / digest.split(":")[1]).exists()
        # a chunked session cut off in the middle of a PATCH keeps only what arrived; finishing it
        # with the digest of the whole blob is refused
        r = client.request("POST", "/v2/killed/app/blobs/uploads/")
        location = client.abs(r.headers["Location"])
        r = client.session.patch(location, data=data[:1000])
        assert r.status_code == 202
        r = client.session.put(client.abs(r.headers["Location"]), params={"digest": digest})
        assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
        assert client.request("HEAD", f"/v2/killed/app/blobs/{digest}").status_code == 404
        # and the complete upload works afterwards
        assert client.push_blob("killed/app", data) == digest
        assert client.request("GET", f"/v2/killed/app/blobs/{digest}").content == data


def test_tampered_blob_is_not_served(registry):
    data = b"precious layer content" * 100
    with requests.Session() as session:
        client = Client(registry.url, session)
        digest = client.push_blob("tamper/app", data)
        assert client.request("GET", f"/v2/tamper/app/blobs/{digest}").content == data  # verified once
        path = registry.root / "blobs" / "sha256" / digest.split(":")[1]
        st = path.stat()
        with open(path, "r+b") as f:  # same size, one byte changed, mtime put back
            f.seek(5)
            f.write(b"X")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        r = client.request("GET", f"/v2/tamper/app/blobs/{digest}")
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
        assert client.request("HEAD", f"/v2/tamper/app/blobs/{digest}").status_code == 404
        assert list((registry.root / "corrupt").iterdir())  # kept for inspection, out of the way
        # the client sees the blob missing and pushes it again
        assert client.push_blob("tamper/app", data) == digest
        assert client.request("GET", f"/v2/tamper/app/blobs/{digest}").content == data


def test_tampered_manifest_is_not_served(registry):
    with requests.Session() as session:
        client = Client(registry.url, session)
        digest, manifest = client.push_image("tamper/man", "v1")
        path = registry.root / "blobs" / "sha256" / digest.split(":")[1]
        path.write_bytes(manifest.replace(b'"schemaVersion"', b'"schemaversion"'))
        r = client.request("GET", "/v2/tamper/man/manifests/v1")
        assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]


def test_registry_killed_during_an_upload_never_serves_the_partial_blob(tmp_home, tmp_path):
    """SIGKILL the registry process mid-upload, start it again: the blob is unknown, a re-push works."""
    import signal

    from engine import Engine
    from tests.fixtures.registry import free_loopback_port

    eng = Engine()
    root = tmp_path / "killed-root"
    try:
        st = eng.registry_start(port=free_loopback_port(), root=str(root))
        data = os.urandom(3 << 20)
        digest = digest_of(data)
        host, port = st.url.split("//")[1].split(":")
        _abandoned_post(host, int(port), f"/v2/crash/app/blobs/uploads/?digest={digest}", len(data), data[:1 << 20])
        assert _wait_for_partial_session(root / "uploads", 1 << 20)
        os.kill(st.pid, signal.SIGKILL)
        eng.registry_stop()  # notices the process is gone, cleans the pid file
        st = eng.registry_start(port=int(port), root=str(root))
        with requests.Session() as session:
            client = Client(st.url, session)
            assert client.request("HEAD", f"/v2/crash/app/blobs/{digest}").status_code == 404
            assert client.push_blob("crash/app", data) == digest
            assert client.request("GET", f"/v2/crash/app/blobs/{digest}").content == data
    finally:
        eng.registry_stop()
        eng.close()


@pytest.mark.slow
def test_a_200_mb_layer_is_streamed_not_buffered(tmp_home, tmp_path):
    """Push and pull 200 MB through a registry process; its peak memory stays far below the blob size."""
    import hashlib

    from engine import Engine
    from tests.fixtures.registry import free_loopback_port

    block = os.urandom(1 << 20)
    total = 200
    digest = "sha256:" + hashlib.sha256(block * total).hexdigest()

    def body():
        for _ in range(total):
            yield block

    eng = Engine()
    try:
        st = eng.registry_start(port=free_loopback_port(), root=str(tmp_path / "big"))
        with requests.Session() as session:
            client = Client(st.url, session)
            r = client.request("POST", "/v2/big/layer/blobs/uploads/")
            r = session.patch(client.abs(r.headers["Location"]), data=body())   # chunked transfer encoding
            assert r.status_code == 202 and r.headers["Range"] == f"0-{total * len(block) - 1}"
            r = session.put(client.abs(r.headers["Location"]), params={"digest": digest})
            assert r.status_code == 201
            h = hashlib.sha256()
            with session.get(f"{st.url}/v2/big/layer/blobs/{digest}", stream=True) as r:
                for chunk in r.iter_content(1 << 20):
                    h.update(chunk)
            assert "sha256:" + h.hexdigest() == digest
        status = (Path(f"/proc/{st.pid}/status")).read_text()
        peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
        assert peak_kb < 100 * 1024, f"the registry process peaked at {peak_kb} kB"
    finally:
        eng.registry_stop()
        eng.close()


def test_a_refused_request_keeps_the_connection_usable(registry):
    """A refusal of a small body is sent after reading it, so the kept-alive connection works on."""
    import http.client

    host, port = registry.host.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/v2/keep/alive/blobs/uploads/")
        r = conn.getresponse()
        location = r.getheader("Location")
        r.read()
        conn.request("PATCH", location, body=b"abc", headers={"Content-Range": "0-2"})
        r = conn.getresponse()
        r.read()
        conn.request("PATCH", location, body=b"x" * 1000, headers={"Content-Range": "10-1009"})
        r = conn.getresponse()
        assert r.status == 416 and r.getheader("Connection") is None
        r.read()
        conn.request("GET", location)  # same socket: the server did not hang up
        r = conn.getresponse()
        assert r.status == 204 and r.getheader("Range") == "0-2"
        r.read()
        conn.request("POST", "/v2/Bad/blobs/uploads/?digest=" + digest_of(b"x"), body=b"x")
        r = conn.getresponse()
        assert r.status == 400 and error_codes_of(r.read()) == ["NAME_INVALID"]
        conn.request("GET", "/v2/")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_a_refused_large_chunked_body_is_answered_at_once_with_connection_close(registry):
    def endless():
        yield b"x" * 65536
        yield b"y" * 65536  # the server answers before wanting the rest

    r = requests.patch(f"{registry.url}/v2/keep/alive/blobs/uploads/00000000-0000-0000-0000-000000000000",
                       data=endless())
    assert r.status_code == 404 and r.headers["Connection"] == "close"
    assert error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]


def error_codes_of(body: bytes) -> list[str]:
    import json

    return [e["code"] for e in json.loads(body)["errors"]]
