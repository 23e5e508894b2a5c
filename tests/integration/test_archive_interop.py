"""Archives against the real tools: skopeo, umoci, oci-image-tool and a Docker 20.10 daemon.

LayerLab's OCI layouts and docker-archives must be read by them, and what they write must load into
LayerLab with the same image IDs and DiffIDs.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine.archive import load, save, save_oci_dir
from engine.bootstrap import bootstrap, busybox_available, find_busybox
from engine.digest import sha256_bytes
from engine.images import history, tag_image
from engine.spec import OCI_LAYER_GZIP
from engine.store import Store
from engine.testing import child_image, validate_image
from tests.fixtures.dockerd import Dockerd, busybox_rootfs_tar
from tests.fixtures.tools import require_tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not busybox_available(), reason="needs a static busybox (busybox-static)"),
]


class Lab:
    """A LayerLab store with busybox:latest and mine:v1 (busybox plus a /greeting layer)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.store = Store(home)
        self.busybox = bootstrap(self.store).busybox
        self.mine = child_image(self.store, self.busybox, "/bin/sh -c echo hello > /greeting",
                                files={"greeting": b"hello\n"}, created=1_700_000_000)
        tag_image(self.store, self.mine, "mine:v1")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    lab = Lab(tmp_path_factory.mktemp("lab") / "home")
    yield lab
    lab.store.close()


@pytest.fixture(scope="module")
def layout(lab, tmp_path_factory) -> Path:
    """LayerLab's OCI layout directory with busybox (tag ``latest``) and mine (tag ``v1``)."""
    path = tmp_path_factory.mktemp("layout") / "oci"
    save_oci_dir(lab.store, ["busybox:latest", "mine:v1"], path)
    return path


@pytest.fixture
def fresh(tmp_path) -> Store:
    store = Store(tmp_path / "fresh-home")
    yield store
    store.close()


def run(*argv: str, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=cwd)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def index_digest(layout: Path, ref_name: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    return next(d["digest"] for d in index["manifests"]
                if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref_name)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- skopeo ---------------------------------------------------------------------------------------

def test_skopeo_inspects_our_layout(lab, layout):
    skopeo = require_tool("skopeo")
    info = json.loads(run(skopeo, "inspect", f"oci:{layout}:latest"))
    assert info["Digest"] == index_digest(layout, "latest")
    assert info["Layers"] == lab.store.image_diff_ids(lab.busybox)
    config = run(skopeo, "inspect", "--config", "--raw", f"oci:{layout}:v1").encode()
    assert sha256_bytes(config) == lab.mine


def test_skopeo_copies_our_layout(lab, layout, tmp_path, fresh):
    skopeo = require_tool("skopeo")
    copy = tmp_path / "copy"
    run(skopeo, "copy", "-q", f"oci:{layout}:latest", f"oci:{copy}:copy")
    index = json.loads((copy / "index.json").read_text())
    assert [d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]] == ["copy"]
    loaded = load(fresh, copy)                 # a bare tag as ref name: same image, left untagged
    assert [(li.image_id, li.tags, li.skipped_refs) for li in loaded] == [(lab.busybox, (), ("copy",))]


@pytest.mark.parametrize("source, transport, ref, tags", [
    ("latest", "oci-archive", "", ()),
    ("latest", "docker-archive", ":busybox:latest", ("busybox:latest",)),
    ("v1", "oci-archive", ":mine:v1", ("mine:v1",)),
    ("v1", "docker-archive", ":mine:v1", ("mine:v1",)),
])
def test_layerlab_loads_what_skopeo_writes(lab, layout, tmp_path, fresh, source, transport, ref, tags):
    skopeo = require_tool("skopeo")
    image_id = lab.busybox if source == "latest" else lab.mine
    target = tmp_path / "out.tar"
    run(skopeo, "copy", "-q", f"oci:{layout}:{source}", f"{transport}:{target}{ref}")
    loaded = load(fresh, target)
    assert [(li.image_id, li.tags) for li in loaded] == [(image_id, tags)]
    validate_image(fresh, image_id)
    assert fresh.image_diff_ids(image_id) == lab.store.image_diff_ids(image_id)
    if transport == "oci-archive":   # skopeo gzips layers: the compressed blobs and manifest are kept
        with tarfile.open(target) as tf:
            index = json.load(tf.extractfile("index.json"))
        manifest_digest = index["manifests"][0]["digest"]
        assert fresh.manifests(image_id) == [(manifest_digest, "application/vnd.oci.image.manifest.v1+json")]
        assert all(any(b.media_type == OCI_LAYER_GZIP for b in fresh.layer_blobs(d))
                   for d in fresh.image_diff_ids(image_id))
        again = tmp_path / "again"
        save_oci_dir(fresh, [image_id], again)   # saved again with the very same manifest digest
        assert json.loads((again / "index.json").read_text())["manifests"][0]["digest"] == manifest_digest
        run(skopeo, "inspect", f"oci:{again}")


# --- umoci and oci-image-tool -----------------------------------------------------------------------

def test_umoci_lists_and_unpacks_our_layout(lab, layout, tmp_path):
    umoci = require_tool("umoci")
    assert sorted(run(umoci, "ls", "--layout", str(layout)).split()) == ["latest", "v1"]
    run(umoci, "unpack", "--rootless", "--image", f"{layout}:latest", str(tmp_path / "bundle"))
    rootfs = tmp_path / "bundle" / "rootfs"
    assert file_sha256(rootfs / "bin" / "busybox") == file_sha256(find_busybox())
    assert os.readlink(rootfs / "bin" / "sh") == "/bin/busybox"
    run(umoci, "unpack", "--rootless", "--image", f"{layout}:v1", str(tmp_path / "bundle2"))
    assert (tmp_path / "bundle2" / "rootfs" / "greeting").read_bytes() == b"hello\n"


@pytest.mark.parametrize("tag", ["latest", "v1"])
def test_oci_image_tool_validates_our_layout(layout, tag):
    tool = require_tool("oci-image-tool")
    result = subprocess.run([tool, "validate", "--type", "image", "--ref", f"name={tag}", str(layout)],
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Validation succeeded" in output


# --- a real Docker 20.10 daemon -----------------------------------------------------------------------

def test_docker_loads_our_docker_archive(lab, dockerd: Dockerd, tmp_path):
    archive_path = tmp_path / "lab.tar"
    with open(archive_path, "wb") as f:
        save(lab.store, ["busybox:latest", "mine:v1"], f)
    out = dockerd.run("load", "-i", str(archive_path)).stdout
    assert "Loaded image: busybox:latest" in out and "Loaded image: mine:v1" in out
    assert dockerd.run("run", "--rm", "--network", "none", "busybox", "echo", "hi").stdout == "hi\n"
    assert dockerd.run("run", "--rm", "--network", "none", "mine:v1", "cat", "/greeting").stdout == "hello\n"
    for name, image_id in (("busybox:latest", lab.busybox), ("mine:v1", lab.mine)):
        assert dockerd.run("image", "inspect", "-f", "{{.Id}}", name).stdout.strip() == image_id


def test_docker_loads_our_oci_archive(lab, dockerd: Dockerd, tmp_path):
    store = lab.store
    tag_image(store, lab.mine, "llarchive/oci:v1")
    try:
        buf = io.BytesIO()
        save(store, ["llarchive/oci:v1"], buf, format="oci")
        out = dockerd.run("load", input=buf.getvalue()).stdout.decode()
    finally:
        store.remove_tag("docker.io/llarchive/oci:v1")
    assert "Loaded image: llarchive/oci:v1" in out
    assert dockerd.run("image", "inspect", "-f", "{{.Id}}", "llarchive/oci:v1").stdout.strip() == lab.mine


@pytest.fixture(scope="module")
def docker_images(dockerd: Dockerd, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Images Docker made itself (import + commit) and Docker's ``docker save`` of them."""
    dockerd.run("import", "-c", 'CMD ["sh"]', "-m", "imported <base> & more", "-", "llimport:base",
                input=busybox_rootfs_tar(str(find_busybox())))
    container = dockerd.run("run", "-d", "--network", "none", "llimport:base", "sh", "-c",
                            "echo hello > /greeting && echo '<&>' > /special").stdout.strip()
    dockerd.run("wait", container)
    dockerd.run("commit", "-m", "greeting & <special>", "-c", "ENV GREETING=hello", container, "llimport:child")
    dockerd.run("rm", container)
    path = tmp_path_factory.mktemp("docker-save") / "docker.tar"
    dockerd.run("save", "-o", str(path), "llimport:child", "llimport:base")
    ids = {name: dockerd.run("image", "inspect", "-f", "{{.Id}}", name).stdout.strip()
           for name in ("llimport:base", "llimport:child")}
    return path, ids


def test_layerlab_loads_what_docker_saves(dockerd: Dockerd, docker_images, fresh):
    path, ids = docker_images
    loaded = {li.tags: li.image_id for li in load(fresh, path)}
    assert loaded == {("llimport:child",): ids["llimport:child"], ("llimport:base",): ids["llimport:base"]}
    for name, image_id in ids.items():
        validate_image(fresh, image_id)
        layers = json.loads(dockerd.run("image", "inspect", "-f", "{{json .RootFS.Layers}}", name).stdout)
        assert fresh.image_diff_ids(image_id) == layers
    assert fresh.image(ids["llimport:child"]).parent == ids["llimport:base"]   # the archive's Parent link
    docker_rows = dockerd.run("history", "-q", "llimport:child").stdout.split()
    assert len(history(fresh, ids["llimport:child"])) == len(docker_rows) == 2


def test_layerlab_history_cli_matches_docker_history(dockerd: Dockerd, docker_images, tmp_path):
    path, ids = docker_images
    home = tmp_path / "cli-home"
    store = Store(home)
    load(store, path)
    store.close()
    cli = Path(sys.executable).with_name("layerlab")
    env = {**os.environ, "LAYERLAB_HOME": str(home)}
    ours = subprocess.run([str(cli), "history", "-q", "llimport:child"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert ours.returncode == 0, ours.stderr
    assert len(ours.stdout.split()) == len(dockerd.run("history", "-q", "llimport:child").stdout.split())


def archive_view(data: bytes) -> tuple[dict[str, tuple], int]:
    """Members as (kind, mode, content), symlinks read through; and the number of symlinks."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        infos = {m.name.rstrip("/"): m for m in tf}
        bodies = {name: tf.extractfile(m).read() for name, m in infos.items() if m.isreg()}

    def content(name: str) -> bytes | None:
        m = infos[name]
        if m.issym():
            return content(posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname)))
        return bodies.get(name)

    view = {name: ("dir" if m.isdir() else "file", m.mode if not m.issym() else None, content(name))
            for name, m in infos.items()}
    return view, sum(m.issym() for m in infos.values())


def test_layerlab_resaves_docker_archives_member_for_member(dockerd: Dockerd, docker_images, fresh):
    """Every member of LayerLab's ``save`` equals Docker's own: names, modes, v1 JSON, layer tars."""
    path, ids = docker_images
    load(fresh, path)
    ours = io.BytesIO()
    save(fresh, ["llimport:child", "llimport:base"], ours)
    theirs, their_links = archive_view(path.read_bytes())
    mine, my_links = archive_view(ours.getvalue())
    assert sorted(mine) == sorted(theirs)
    assert my_links == their_links == 1       # the shared layer is stored once, then linked
    manifest_theirs = json.loads(theirs.pop("manifest.json")[2])
    manifest_ours = json.loads(mine.pop("manifest.json")[2])
    # Docker orders images by Go map iteration (random), so also which copy of a shared layer is the
    # file and which the link; LayerLab uses the order of the names given
    assert sorted(manifest_ours, key=lambda i: i["Config"]) == sorted(manifest_theirs, key=lambda i: i["Config"])
    for name in mine:
        if mine[name][1] is None or theirs[name][1] is None:   # a link on one side: compare contents
            mine[name], theirs[name] = mine[name][2], theirs[name][2]
    assert mine == theirs
