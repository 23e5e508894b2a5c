"""Real clients against LayerLab's registry: skopeo copies both ways, a real dockerd pushes, pulls and runs."""
from __future__ import annotations

import gzip
import io
import json
import subprocess

import pytest
import requests

from engine import Engine
from engine.bootstrap import busybox_available
from engine.cli import Streams, run
from engine.registry.hub import Hub
from engine.registry.storage import RegistryStorage
from tests.fixtures.tools import require_tool
from tests.integration._registry_server import DOCKER_MANIFEST, OCI_MANIFEST, Client, LayerLabRegistry, digest_of

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(tmp_path):
    server = LayerLabRegistry(tmp_path / "root")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub(tmp_path):
    root = tmp_path / "hub-root"
    Hub(RegistryStorage(root)).add_user("alice", "wonderland")
    server = LayerLabRegistry(root, hub=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def engine(tmp_home):
    if not busybox_available():
        pytest.skip("needs a static busybox (busybox-static)")
    eng = Engine()
    eng.bootstrap()
    yield eng
    eng.close()


def layerlab(eng: Engine, *argv: str) -> None:
    out = Streams(stdout=io.StringIO(), stderr=io.StringIO())
    assert run(list(argv), out, eng) == 0, out.stderr.getvalue()


def skopeo(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([require_tool("skopeo"), *argv], capture_output=True, text=True, timeout=240)
    if check:
        assert result.returncode == 0, f"skopeo {argv}:\n{result.stderr}"
    return result


# --- skopeo ---------------------------------------------------------------------------------------

def test_skopeo_copies_an_oci_layout_through_our_registry(engine, registry, tmp_path):
    layout = tmp_path / "layout"
    layout.mkdir()
    layerlab(engine, "save", "--format", "oci", "-o", str(layout), "busybox:latest")
    index = json.loads((layout / "index.json").read_text())
    source = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
    target = f"docker://{registry.host}/skopeo/busybox:latest"
    skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:latest", target)

    # skopeo gzips the uncompressed layers on the way to a registry: same config, same diff_ids
    r = requests.get(f"{registry.url}/v2/skopeo/busybox/manifests/latest", headers={"Accept": OCI_MANIFEST})
    pushed_digest, pushed = r.headers["Docker-Content-Digest"], r.json()
    assert digest_of(r.content) == pushed_digest
    assert pushed["config"] == source["config"]
    for ours, theirs in zip(source["layers"], pushed["layers"], strict=True):
        blob = requests.get(f"{registry.url}/v2/skopeo/busybox/blobs/{theirs['digest']}").content
        assert digest_of(blob) == theirs["digest"] and digest_of(gzip.decompress(blob)) == ours["digest"]
    raw = skopeo("inspect", "--raw", "--tls-verify=false", target).stdout.encode()
    assert json.loads(raw) == pushed

    back = tmp_path / "back"
    skopeo("copy", "-q", "--src-tls-verify=false", target, f"oci:{back}:latest")
    again = json.loads((back / "index.json").read_text())["manifests"][0]["digest"]
    assert again == pushed_digest  # the registry's exact manifest bytes came back
    config = source["config"]["digest"][7:]
    assert (back / "blobs" / "sha256" / config).read_bytes() == (layout / "blobs" / "sha256" / config).read_bytes()


def test_skopeo_copies_a_docker_archive_through_our_registry(engine, registry, tmp_path):
    archive = tmp_path / "busybox.tar"
    layerlab(engine, "save", "-o", str(archive), "busybox:latest")
    image_id = engine.image_id("busybox:latest")
    target = f"docker://{registry.host}/skopeo/archive:v1"
    skopeo("copy", "-q", "--dest-tls-verify=false", f"docker-archive:{archive}", target)
    manifest = requests.get(f"{registry.url}/v2/skopeo/archive/manifests/v1",
                            headers={"Accept": DOCKER_MANIFEST}).json()
    assert manifest["mediaType"] == DOCKER_MANIFEST  # skopeo converts to Docker v2 with gzip layers
    assert manifest["config"]["digest"] == image_id
    config = requests.get(f"{registry.url}/v2/skopeo/archive/blobs/{image_id}").content
    assert digest_of(config) == image_id

    back = tmp_path / "back.tar"
    skopeo("copy", "-q", "--src-tls-verify=false", target, f"docker-archive:{back}:skopeo/archive:v1")
    fresh = Engine(tmp_path / "fresh-home")
    try:
        loaded = fresh.load(str(back))
        assert [li.image_id for li in loaded] == [image_id]
    finally:
        fresh.close()


def test_skopeo_with_hub_credentials(engine, hub, tmp_path):
    layout = tmp_path / "layout"
    layout.mkdir()
    layerlab(engine, "save", "--format", "oci", "-o", str(layout), "hello-world:latest")
    source = f"oci:{layout}:latest"
    skopeo("copy", "-q", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland", source,
           f"docker://{hub.host}/alice/hello:v1")
    refused = skopeo("copy", "-q", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland", source,
                     f"docker://{hub.host}/library/hello-world:latest", check=False)
    assert refused.returncode != 0
    assert "requested access to the resource is denied: impossible to push a" in refused.stderr
    assert "root" in refused.stderr and "rename your repository to alice/hello-world" in refused.stderr
    wrong = skopeo("copy", "-q", "--dest-tls-verify=false", "--dest-creds", "alice:nope", source,
                   f"docker://{hub.host}/alice/hello:v2", check=False)
    assert wrong.returncode != 0
    # anonymous pull is allowed
    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{hub.host}/alice/hello:v1", f"oci:{tmp_path / 'p'}:x")


# --- dockerd --------------------------------------------------------------------------------------

def test_docker_pushes_pulls_and_runs_through_our_registry(dockerd, registry):
    local = dockerd.load_busybox("llregistry-busybox:latest")
    remote = f"{registry.host}/student/busybox:v1"
    dockerd.run("tag", local, remote)
    pushed = dockerd.run("push", remote).stdout
    assert f"The push refers to repository [{registry.host}/student/busybox]" in pushed
    assert ": Pushed" in pushed
    last = pushed.strip().splitlines()[-1]
    assert last.startswith("v1: digest: sha256:")
    digest, size = last.split()[2], int(last.split()[4])
    r = requests.get(f"{registry.url}/v2/student/busybox/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.headers["Docker-Content-Digest"] == digest and len(r.content) == size

    again = dockerd.run("push", remote).stdout
    assert "Layer already exists" in again and last in again

    dockerd.run("rmi", local, remote)
    assert dockerd.run("image", "inspect", remote, check=False).returncode != 0
    pulled = dockerd.run("pull", remote).stdout
    # the busybox layer may still be in the daemon's store (other tests load busybox into the same
    # session dockerd): then docker says "Already exists" for it instead of pulling it again
    assert f"Digest: {digest}" in pulled and ("Pull complete" in pulled or "Already exists" in pulled)
    assert f"Status: Downloaded newer image for {remote}" in pulled
    output = dockerd.run("run", "--rm", "--network", "none", remote, "echo", "hello from our registry").stdout
    assert output == "hello from our registry\n"
    dockerd.run("rmi", remote)


def test_docker_login_and_namespaces_on_the_hub(dockerd, hub):
    local = dockerd.load_busybox("llhub-busybox:latest")
    wrong = dockerd.run("login", "-u", "alice", "--password-stdin", hub.host, input="nope\n", check=False)
    assert wrong.returncode == 1 and "unauthorized: incorrect username or password" in wrong.stderr
    login = dockerd.run("login", "-u", "alice", "--password-stdin", hub.host, input="wonderland\n")
    assert "Login Succeeded" in login.stdout
    try:
        mine, root_repo = f"{hub.host}/alice/busybox:v1", f"{hub.host}/library/busybox:latest"
        dockerd.run("tag", local, mine)
        dockerd.run("tag", local, root_repo)
        assert dockerd.run("push", mine).stdout.strip().splitlines()[-1].startswith("v1: digest: sha256:")
        refused = dockerd.run("push", root_repo, check=False)
        assert refused.returncode == 1
        assert 'denied: requested access to the resource is denied: impossible to push a "root" repository' \
            in refused.stderr
        assert "alice/busybox" in refused.stderr
    finally:
        dockerd.run("logout", hub.host, check=False)
        dockerd.run("rmi", local, f"{hub.host}/alice/busybox:v1", f"{hub.host}/library/busybox:latest", check=False)



def test_docker_search_on_the_hub(dockerd, hub, tmp_path):
    Hub(RegistryStorage(hub.root)).add_user("teacher", "chalkboard", admin=True)
    r = requests.get(f"{hub.url}/token", params={"scope": "repository:library/busybox:pull,push"},
                     auth=("teacher", "chalkboard"))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    Client(hub.url, session).push_image("library/busybox", "latest")
    hub_files = Hub(RegistryStorage(hub.root))
    hub_files.describe("library/busybox", "Busybox base image.")
    hub_files.star("library/busybox", "alice")
    table = dockerd.run("search", f"{hub.host}/busy").stdout.splitlines()
    assert table[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    assert table[1].split() == ["busybox", "Busybox", "base", "image.", "1", "[OK]"]


def test_docker_push_with_basic_auth_like_the_transcript(dockerd, tmp_path):
    """docker-20.10-transcripts.md, push-auth: no credentials, a wrong password, then a login that works."""
    from tests.fixtures.registry import TEST_PASSWORD, TEST_USER, bcrypt_htpasswd_line

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(bcrypt_htpasswd_line(TEST_USER, TEST_PASSWORD) + "\n")
    server = LayerLabRegistry(tmp_path / "auth-root", auth_file=str(htpasswd))
    local = dockerd.load_busybox("llauth-busybox:latest")
    remote = f"{server.host}/whoami/static_web:latest"
    try:
        dockerd.run("tag", local, remote)
        refused = dockerd.run("push", remote, check=False)
        assert refused.returncode == 1 and refused.stderr.strip().endswith("no basic auth credentials")
        wrong = dockerd.run("login", "-u", TEST_USER, "--password-stdin", server.host, input="wrong\n", check=False)
        assert wrong.returncode == 1
        assert wrong.stderr.strip() == (f"Error response from daemon: login attempt to http://{server.host}/v2/ "
                                        "failed with status: 401 Unauthorized")
        login = dockerd.run("login", "-u", TEST_USER, "--password-stdin", server.host, input=TEST_PASSWORD + "\n")
        assert login.stdout.strip().endswith("Login Succeeded")
        pushed = dockerd.run("push", remote).stdout.strip().splitlines()
        assert pushed[0] == f"The push refers to repository [{server.host}/whoami/static_web]"
        assert pushed[-1].startswith("latest: digest: sha256:")
        assert dockerd.run("logout", server.host).stdout.strip() == f"Removing login credentials for {server.host}"
    finally:
        dockerd.run("rmi", local, remote, check=False)
        server.stop()


def test_docker_pulls_and_runs_the_seeded_official_images(dockerd, engine, hub):
    engine.hub_seed(root=str(hub.root))
    from engine.bootstrap import HELLO_MESSAGE

    for name, argv, expected in (("busybox", ["echo", "seeded"], "seeded\n"), ("hello-world", [], HELLO_MESSAGE)):
        ref = f"{hub.host}/library/{name}:latest"
        pulled = dockerd.run("pull", ref).stdout
        assert f"Status: Downloaded newer image for {ref}" in pulled
        assert dockerd.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == \
            engine.image_id(f"{name}:latest")  # the same image ID as in LayerLab's store
        out = dockerd.run("run", "--rm", "--network", "none", ref, *argv).stdout
        assert out == expected
        dockerd.run("rmi", ref)


# --- LayerLab's own client ------------------------------------------------------------------------

def test_layerlab_login_push_pull_search_on_the_hub(engine, hub, tmp_home, tmp_path):
    """`layerlab login/push/pull/search` against the hub; a seeded image and a pushed one are the same bytes."""
    import os
    import sys
    from pathlib import Path

    seeded = dict(line.split(": digest: ") for line in engine.hub_seed(root=str(hub.root)))
    env = dict(os.environ, LAYERLAB_HOME=str(tmp_home), DOCKER_CONFIG=str(tmp_path / "docker-config"),
               LAYERLAB_HUB_MIRROR=hub.host, PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def layerlab_cli(*argv: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "engine.cli", *argv], env=env, input=input, text=True,
                              capture_output=True, timeout=120)

    assert layerlab_cli("login", "-u", "alice", "--password-stdin", hub.host, input="nope\n").returncode == 1
    assert layerlab_cli("login", "-u", "alice", "--password-stdin", hub.host, input="wonderland\n").returncode == 0
    mine = f"{hub.host}/alice/busybox:v1"
    assert layerlab_cli("tag", "busybox", mine).returncode == 0
    pushed = layerlab_cli("push", mine)
    assert pushed.returncode == 0, pushed.stderr
    digest = pushed.stdout.strip().splitlines()[-1].split()[2]
    assert digest == seeded["library/busybox:latest"].split()[0]  # `hub seed` writes what `push` writes
    assert layerlab_cli("tag", "busybox", f"{hub.host}/library/mybox").returncode == 0
    refused = layerlab_cli("push", f"{hub.host}/library/mybox")
    assert refused.returncode == 1
    assert refused.stderr.startswith('denied: requested access to the resource is denied: impossible to push a '
                                     '"root" repository (library/mybox)')
    assert layerlab_cli("rmi", mine).returncode == 0
    pulled = layerlab_cli("pull", mine)
    assert pulled.returncode == 0 and f"Digest: {digest}" in pulled.stdout
    found = layerlab_cli("search", "busybox")
    assert found.returncode == 0
    rows = [line.split()[0] for line in found.stdout.splitlines()[1:]]
    assert rows == ["busybox", "alice/busybox"]
