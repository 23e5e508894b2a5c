"""Pulling from a registry that lies: a small HTTP server on loopback serves manifests whose blobs do
not match. Every pull must fail with a clear error and leave the store exactly as it was."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine import Engine
from engine.errors import RegistryError
from engine.layer import gzip_stream
from engine.registry.distributable import docker_manifest_json
from engine.spec import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Descriptor

pytestmark = pytest.mark.integration


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(text: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = len(text)
        tf.addfile(ti, io.BytesIO(text))
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    out = io.BytesIO()
    gzip_stream(io.BytesIO(data), out)
    return out.getvalue()


class FakeRegistry:
    """Serves ``routes[path] = (status, headers, body)`` for GET/HEAD; records every request path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {"/v2/": (200, {}, b"{}")}
        self.requests: list[str] = []
        self.guard = None   # guard(handler) -> bool: False when it answered the request itself (a 401)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self._answer(body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(body=False)

            def do_POST(self) -> None:  # noqa: N802
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                fake.requests.append(self.path)
                if fake.guard is not None and not fake.guard(self):
                    return
                status, headers, data = fake.routes.get(self.path.split("?")[0], (404, {}, b'{"errors":[{"code":"NOT_FOUND","message":"nope"}]}'))
                self.send_response(status)
                headers = {"Content-Length": str(len(data)), **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if body:
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client refused the rest (an oversized answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def image(self, repo: str, tag: str, *, layer: bytes, blob: bytes | None = None, config: bytes | None = None,
              diff_id: str | None = None) -> dict[str, str]:
        """Publish an image: ``blob`` replaces the served layer bytes, ``config`` the served config bytes."""
        compressed = gz(layer)
        real_config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                                  "rootfs": {"type": "layers", "diff_ids": [diff_id or sha(layer)]},
                                  "history": [{"created_by": "test"}]}).encode()
        manifest = docker_manifest_json(Descriptor(DOCKER_CONFIG, sha(real_config), len(real_config)),
                                        [Descriptor(DOCKER_LAYER_GZIP, sha(compressed), len(compressed))])
        self.routes[f"/v2/{repo}/manifests/{tag}"] = (200, {"Content-Type": DOCKER_MANIFEST}, manifest)
        self.routes[f"/v2/{repo}/manifests/{sha(manifest)}"] = (200, {"Content-Type": DOCKER_MANIFEST}, manifest)
        self.routes[f"/v2/{repo}/blobs/{sha(real_config)}"] = (200, {}, config if config is not None else real_config)
        self.routes[f"/v2/{repo}/blobs/{sha(compressed)}"] = (200, {}, blob if blob is not None else compressed)
        return {"manifest": sha(manifest), "layer": sha(compressed), "config": sha(real_config)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    try:
        yield server
    finally:
        server.close()


def snapshot(eng: Engine) -> tuple:
    s = eng.store
    return (s.blob_digests(), s.images(), s.tags(), s.layers(), s.all_layer_blobs(), s.repo_digests(),
            sorted(p.name for p in s.tmp_dir.iterdir()))


def pull(eng: Engine, name: str) -> list:
    return list(eng.pull(name))


def test_honest_fake_registry_pulls(fake: FakeRegistry, tmp_path: Path) -> None:
    """The fake serves a correct image too: the failures below are the tampering, not the fake."""
    eng = Engine(tmp_path / "home")
    ids = fake.image("demo/app", "good", layer=layer_tar(b"hello\n"))
    events = pull(eng, f"{fake.host}/demo/app:good")
    assert events[-1].image_id == ids["config"]
    assert eng.image_id(f"{fake.host}/demo/app:good") == ids["config"]


def test_tampered_layer_blob_stores_nothing(fake: FakeRegistry, tmp_path: Path) -> None:
    eng = Engine(tmp_path / "home")
    layer = layer_tar(b"hello\n" * 100)
    good = gz(layer)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    ids = fake.image("demo/app", "latest", layer=layer, blob=bytes(bad))
    before = snapshot(eng)
    with pytest.raises(RegistryError, match=f"^filesystem layer verification failed for digest {ids['layer']}$"):
        pull(eng, f"{fake.host}/demo/app:latest")
    assert snapshot(eng) == before
    assert any(p.endswith(ids["layer"]) for p in fake.requests)  # it was downloaded, then refused


def test_longer_blob_is_refused(fake: FakeRegistry, tmp_path: Path) -> None:
    eng = Engine(tmp_path / "home")
    layer = layer_tar(b"x")
    ids = fake.image("demo/app", "latest", layer=layer, blob=gz(layer) + b"\0" * 4096)
    before = snapshot(eng)
    with pytest.raises(RegistryError, match="filesystem layer verification failed"):
        pull(eng, f"{fake.host}/demo/app:latest")
    assert snapshot(eng) == before and ids


def test_tampered_config_stores_nothing(fake: FakeRegistry, tmp_path: Path) -> None:
    eng = Engine(tmp_path / "home")
    ids = fake.image("demo/app", "latest", layer=layer_tar(b"hi\n"), config=b'{"evil": true}')
    before = snapshot(eng)
    with pytest.raises(RegistryError, match=f"image config verification failed for digest {ids['config']}"):
        pull(eng, f"{fake.host}/demo/app:latest")
    assert snapshot(eng) == before


def test_diff_id_mismatch_stores_nothing(fake: FakeRegistry, tmp_path: Path) -> None:
    """The blob matches the manifest, but decompressed it is not the layer the config names."""
    eng = Engine(tmp_path / "home")
    fake.image("demo/app", "latest", layer=layer_tar(b"real\n"), diff_id=sha(layer_tar(b"claimed\n")))
    before = snapshot(eng)
    with pytest.raises(RegistryError, match="DiffID"):
        pull(eng, f"{fake.host}/demo/app:latest")
    assert snapshot(eng) == before


def test_manifest_not_matching_the_pulled_digest(fake: FakeRegistry, tmp_path: Path) -> None:
    eng = Engine(tmp_path / "home")
    ids = fake.image("demo/app", "latest", layer=layer_tar(b"a\n"))
    other = "sha256:" + "ab" * 32
    fake.routes[f"/v2/demo/app/manifests/{other}"] = fake.routes["/v2/demo/app/manifests/latest"]
    before = snapshot(eng)
    with pytest.raises(RegistryError, match=f"manifest verification failed for digest {other}"):
        pull(eng, f"{fake.host}/demo/app@{other}")
    assert snapshot(eng) == before and ids


def test_oversized_manifest_is_refused(fake: FakeRegistry, tmp_path: Path) -> None:
    eng = Engine(tmp_path / "home")
    fake.routes["/v2/demo/app/manifests/latest"] = (200, {"Content-Type": DOCKER_MANIFEST}, b" " * (5 << 20))
    with pytest.raises(RegistryError, match="manifest too large"):
        pull(eng, f"{fake.host}/demo/app:latest")
    assert not eng.store.images()


def test_absurd_descriptor_size_is_refused(fake: FakeRegistry, tmp_path: Path) -> None:
    eng = Engine(tmp_path / "home")
    config = b"{}"
    manifest = docker_manifest_json(Descriptor(DOCKER_CONFIG, sha(config), len(config)),
                                    [Descriptor(DOCKER_LAYER_GZIP, "sha256:" + "0" * 64, 1 << 50)])
    fake.routes["/v2/demo/app/manifests/latest"] = (200, {"Content-Type": DOCKER_MANIFEST}, manifest)
    with pytest.raises(RegistryError, match="refusing layer of"):
        pull(eng, f"{fake.host}/demo/app:latest")
    assert not any("/blobs/" in p for p in fake.requests)


def test_redirect_off_loopback_is_not_followed(fake: FakeRegistry, tmp_path: Path) -> None:
    eng = Engine(tmp_path / "home")
    ids = fake.image("demo/app", "latest", layer=layer_tar(b"r\n"))
    fake.routes[f"/v2/demo/app/blobs/{ids['layer']}"] = (307, {"Location": "http://203.0.113.7/blob"}, b"")
    with pytest.raises(RegistryError, match="refusing to contact 203.0.113.7"):
        pull(eng, f"{fake.host}/demo/app:latest")
    fake.routes[f"/v2/demo/app/blobs/{ids['layer']}"] = (307, {"Location": "file:///etc/passwd"}, b"")
    with pytest.raises(RegistryError, match="only http and https"):
        pull(eng, f"{fake.host}/demo/app:latest")
    assert not eng.store.images()


def test_a_layer_that_would_fill_the_disk_stores_nothing(fake: FakeRegistry, tmp_path: Path, monkeypatch) -> None:
    """A decompression bomb is stopped by the free space left, whatever its digest says (the registry
    chose both). Here the reserve is set above what the disk has, so the first look refuses."""
    from engine.registry import unpack

    eng = Engine(tmp_path / "home")
    ids = fake.image("demo/app", "bomb", layer=layer_tar(b"\0" * 100_000))
    st = os.statvfs(eng.store.tmp_dir)
    monkeypatch.setattr(unpack, "DISK_RESERVE", st.f_bavail * st.f_frsize)
    before = snapshot(eng)
    with pytest.raises(RegistryError, match=f"^layer {ids['layer']}: the uncompressed layer would leave less than"):
        pull(eng, f"{fake.host}/demo/app:bomb")
    assert snapshot(eng) == before
    monkeypatch.undo()
    assert pull(eng, f"{fake.host}/demo/app:bomb")[-1].image_id == ids["config"]  # with room, it pulls
