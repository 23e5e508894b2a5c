"""The registry client's pieces that need no registry: events, settings, credentials, challenges,
the distributable form of a stored image, and where Docker Hub traffic goes by default."""
from __future__ import annotations

import io
import json
import os
import socket
import stat
import tarfile

import pytest

from engine import Engine
from engine.errors import RegistryError
from engine.registry import credentials, settings
from engine.registry.auth import parse_challenge
from engine.registry.distributable import distributable
from engine.registry.events import Header, LayerProgress, Pulled, Pushed, TagDigest, render
from engine.spec import DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Manifest


# --- events ----------------------------------------------------------------------------------

def test_render_docker_lines() -> None:
    assert render(Header("The push refers to repository [127.0.0.1:5000/whoami/static_web]")) == \
        "The push refers to repository [127.0.0.1:5000/whoami/static_web]"
    assert render(LayerProgress("a7e1b3937081", "Preparing")) == "a7e1b3937081: Preparing"
    assert render(LayerProgress("b2de37533b95", "Mounted from whoami/static_web")) == \
        "b2de37533b95: Mounted from whoami/static_web"
    assert render(LayerProgress("a7e1b3937081", "Pushing", 10, 100)) is None
    assert render(LayerProgress("a7e1b3937081", "Downloading", 10, 100)) is None
    digest = "sha256:" + "6f" * 32
    assert render(Pushed("latest", digest, 942)) == f"latest: digest: {digest} size: 942"
    assert render(TagDigest(digest)) == f"Digest: {digest}"
    assert render(Pulled("127.0.0.1:5000/whoami/static_web:latest", digest, "sha256:" + "1" * 64,
                         "Downloaded newer image for 127.0.0.1:5000/whoami/static_web:latest")).splitlines() == [
        f"Digest: {digest}",
        "Status: Downloaded newer image for 127.0.0.1:5000/whoami/static_web:latest",
        "127.0.0.1:5000/whoami/static_web:latest"]


# --- settings --------------------------------------------------------------------------------

def test_settings_default_keeps_hub_on_loopback(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("LAYERLAB_HUB_MIRROR", raising=False)
    s = settings.load(tmp_path)
    assert s.registry_host("docker.io") == "127.0.0.1:5000"
    assert s.index_host() == "127.0.0.1:5000"
    assert s.registry_host("quay.example") == "quay.example"
    assert not s.may_contact("registry-1.docker.io")
    on = settings.update(tmp_path, allow_internet=True)
    assert on.registry_host("docker.io") == "registry-1.docker.io"
    assert settings.load(tmp_path).allow_internet is True
    assert json.loads((tmp_path / "settings.json").read_text())["allow_internet"] is True


def test_settings_mirror_env_and_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("LAYERLAB_HUB_MIRROR", raising=False)
    settings.update(tmp_path, hub_mirror="127.0.0.1:6000", insecure_registries=["reg.lan:5000"])
    s = settings.load(tmp_path)
    assert s.registry_host("docker.io") == "127.0.0.1:6000"
    assert s.scheme("reg.lan:5000") == "http"
    monkeypatch.setenv("LAYERLAB_HUB_MIRROR", "127.0.0.2:7000")
    assert settings.load(tmp_path).registry_host("docker.io") == "127.0.0.2:7000"
    settings.update(tmp_path, allow_internet=False)  # the env's mirror is not written to the file
    assert json.loads((tmp_path / "settings.json").read_text())["hub_mirror"] == "127.0.0.1:6000"


@pytest.mark.parametrize(("host", "scheme"), [
    ("localhost:5000", "http"), ("127.0.0.1:5000", "http"), ("127.9.8.7", "http"), ("[::1]:5000", "http"),
    ("registry.example.com", "https"), ("10.0.0.1:5000", "https"), ("128.0.0.1:5000", "https"),
])
def test_plain_http_only_where_docker_allows_it(host: str, scheme: str) -> None:
    assert settings.Settings().scheme(host) == scheme


# --- credentials -----------------------------------------------------------------------------

def test_credentials_in_docker_format(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    (tmp_path / "dc").mkdir()
    (tmp_path / "dc" / "config.json").write_text(json.dumps({"credsStore": "", "psFormat": "x"}))
    path = credentials.store("127.0.0.1:5001", credentials.Credentials("student", "s3cret"))
    data = json.loads(path.read_text())
    assert data["psFormat"] == "x"                       # other settings survive
    assert data["auths"]["127.0.0.1:5001"] == {"auth": "c3R1ZGVudDpzM2NyZXQ="}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert credentials.get("127.0.0.1:5001") == credentials.Credentials("student", "s3cret")
    assert credentials.get("127.0.0.1:5002") is None
    assert credentials.server_key(None) == credentials.server_key("docker.io") == "https://index.docker.io/v1/"
    assert credentials.server_key("http://127.0.0.1:5001/v2/") == "127.0.0.1:5001"
    assert credentials.erase("127.0.0.1:5001") is True
    assert credentials.erase("127.0.0.1:5001") is False
    credentials.store("http://127.0.0.1:5001", credentials.Credentials("old", "style"))
    assert credentials.get("127.0.0.1:5001") == credentials.Credentials("old", "style")
    assert credentials.erase(credentials.logout_keys("127.0.0.1:5001")) is True
    assert credentials.get("127.0.0.1:5001") is None
    assert [p.name for p in (tmp_path / "dc").iterdir()] == ["config.json"]  # no temp files left


def test_logout_texts(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    eng = Engine(tmp_path / "home")
    assert eng.logout("127.0.0.1:5001") == "Not logged in to 127.0.0.1:5001"
    credentials.store("127.0.0.1:5001", credentials.Credentials("u", "p"))
    assert eng.logout("127.0.0.1:5001") == "Removing login credentials for 127.0.0.1:5001"
    assert credentials.get("127.0.0.1:5001") is None


# --- challenges ------------------------------------------------------------------------------

def test_parse_challenges() -> None:
    ch = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                         'scope="repository:whoami/web:pull,push"')
    assert ch is not None and ch.scheme == "bearer"
    assert ch.get("realm") == "https://auth.example/token"
    assert ch.get("service") == "registry.example"
    assert ch.get("scope") == "repository:whoami/web:pull,push"
    basic = parse_challenge('Basic realm="layerlab-test"')
    assert basic is not None and basic.scheme == "basic" and basic.get("realm") == "layerlab-test"
    assert parse_challenge("") is None


# --- the distributable form ----------------------------------------------------------------------

def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_distributable_compresses_once_and_reproducibly(tmp_path) -> None:
    eng = Engine(tmp_path / "home")
    image = eng.import_image(io.BytesIO(_tar({"hello.txt": b"hello\n" * 1000})), "demo:1").image_id
    first = distributable(eng.store, image)
    assert first.media_type == DOCKER_MANIFEST
    manifest = Manifest.from_json(first.manifest)
    assert manifest.media_type == DOCKER_MANIFEST
    assert [d.media_type for d in manifest.layers] == [DOCKER_LAYER_GZIP]
    layer = manifest.layers[0]
    gz = eng.store.read_blob(layer.digest)
    assert gz[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # mtime 0, no name
    rows = eng.store.layer_blobs(first.layers[0].diff_id)
    assert {(r.digest, r.media_type) for r in rows} >= {(layer.digest, DOCKER_LAYER_GZIP)}
    assert first.manifest.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": ')  # docker's layout
    assert (first.digest, DOCKER_MANIFEST) in eng.store.manifests(image)
    again = distributable(eng.store, image)
    assert (again.digest, again.manifest) == (first.digest, first.manifest)
    # a second store compresses the same layer to the same bytes
    other = Engine(tmp_path / "home2")
    image2 = other.import_image(io.BytesIO(_tar({"hello.txt": b"hello\n" * 1000})), "demo:1").image_id
    assert distributable(other.store, image2).layers[0].descriptor == layer


# --- Docker Hub stays on loopback --------------------------------------------------------------

def test_pulling_busybox_by_default_only_contacts_the_mirror(tmp_path, monkeypatch) -> None:
    """With default settings, ``pull busybox`` connects to 127.0.0.1:5000 and nowhere else."""
    monkeypatch.delenv("LAYERLAB_HUB_MIRROR", raising=False)
    attempted: list[tuple] = []
    real_connect = socket.socket.connect

    def recording_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempted.append(address[:2])
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    eng = Engine(tmp_path / "home")
    try:
        for _ in eng.pull("busybox"):
            pass
    except RegistryError:
        pass  # nothing (or something else) listens on the mirror's port: the attempt is what counts
    assert attempted, "no connection was attempted"
    assert set(attempted) == {("127.0.0.1", 5000)}


def test_login_flag_errors(tmp_path, monkeypatch) -> None:
    from engine.cli import Streams, run

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    eng = Engine(tmp_path / "home")

    def cli(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run(list(argv), Streams(stdout=out, stderr=err, stdin=io.BytesIO(stdin)), eng)
        return code, out.getvalue(), err.getvalue()

    assert cli("login", "-p", "x", "--password-stdin", "-u", "u", "127.0.0.1:1") == \
        (1, "", "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
                "--password and --password-stdin are mutually exclusive\n")
    assert cli("login", "--password-stdin", "127.0.0.1:1", stdin=b"pw\n") == \
        (1, "", "Must provide --username with --password-stdin\n")
    assert cli("login", "127.0.0.1:1") == (1, "", "Error: Cannot perform an interactive login from a non TTY device\n")
    code, _, err = cli("pull", "--nope", "busybox")
    assert code == 125 and err.startswith("unknown flag: --nope")
    code, _, err = cli("search", "--limit", "x", "busybox")
    assert code == 125 and err.startswith('invalid argument "x" for "--limit" flag')
    assert not (tmp_path / "dc" / "config.json").exists()


def test_engine_registry_settings(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("LAYERLAB_HUB_MIRROR", raising=False)
    eng = Engine(tmp_path / "home")
    assert eng.registry_settings().hub_mirror == "127.0.0.1:5000"
    eng.set_registry_settings(hub_mirror="127.0.0.1:5055", insecure_registries=["class.lan:5000"])
    s = Engine(tmp_path / "home").registry_settings()
    assert (s.hub_mirror, s.insecure_registries, s.allow_internet) == ("127.0.0.1:5055", ("class.lan:5000",), False)
    with pytest.raises(TypeError):
        eng.set_registry_settings(no_such_setting=1)


def test_other_registries_need_allow_internet(tmp_path, monkeypatch) -> None:
    attempted: list = []
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: attempted.append(address))
    eng = Engine(tmp_path / "home")
    with pytest.raises(RegistryError, match="refusing to contact quay.example:443|refusing to contact quay.example"):
        list(eng.pull("quay.example/team/app:1"))
    with pytest.raises(RegistryError, match="refusing to contact"):
        list(eng.pull("10.1.2.3:5000/team/app:1"))
    assert attempted == []
