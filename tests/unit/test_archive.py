"""``save``/``load``: docker-archive and OCI layouts, reproducibility, hostile archives."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from engine import archive
from engine.archive import ArchiveDigestMismatch, LoadedImage, load, save, save_oci_dir, v1_layers
from engine.bootstrap import bootstrap, busybox_available
from engine.digest import sha256_bytes
from engine.errors import ArchiveError, DigestMismatch, ImageNotFound
from engine.images import history, load_config, tag_image
from engine.layer import gzip_stream
from engine.spec import (OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME_ANNOTATION,
                         host_platform)
from engine.store import Store
from engine.testing import child_image, validate_image

pytestmark = pytest.mark.skipif(not busybox_available(), reason="needs a static busybox (busybox-static)")

EPOCH = "1700000000"


# --- fixtures and helpers ----------------------------------------------------------------------

class Source:
    """A store with busybox:latest, hello-world:latest and mine:v1 (busybox + one layer)."""

    def __init__(self, home: Path) -> None:
        self.store = Store(home)
        boot = bootstrap(self.store)
        self.busybox, self.hello = boot.busybox, boot.hello_world
        self.mine = child_image(self.store, self.busybox, "/bin/sh -c echo hi > /greeting",
                                files={"greeting": b"hi <&>\n"}, created=1_700_000_100)
        tag_image(self.store, self.mine, "mine:v1")


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Source:
    s = Source(tmp_path_factory.mktemp("src") / "home")
    yield s
    s.store.close()


@pytest.fixture
def dst(tmp_path) -> Store:
    s = Store(tmp_path / "dst-home")
    yield s
    s.close()


def saved(store: Store, names: list[str], fmt: str = "docker") -> bytes:
    buf = io.BytesIO()
    save(store, names, buf, format=fmt)
    return buf.getvalue()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf}


def contents(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isreg()}


def entry(name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = kind, link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.mode = 0o644
    return ti, data


def build_tar(entries: list[tuple]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


def rebuild(data: bytes, replace: dict[str, bytes] | None = None, extra: list[tuple] = ()) -> bytes:
    """The archive ``data`` with some regular members' contents replaced and entries appended."""
    out = []
    for name, ti in members(data).items():
        if ti.isreg():
            body = (replace or {}).get(name, contents(data)[name])
            out.append(entry(name, body))
        elif ti.issym():
            out.append(entry(name, kind=tarfile.SYMTYPE, link=ti.linkname))
    return build_tar(out + list(extra))


def one_layer_tar(files: dict[str, bytes]) -> bytes:
    return build_tar([entry(n, d) for n, d in files.items()])


def assert_untouched(store: Store) -> None:
    assert store.images() == []
    assert store.tags() == []
    assert store.blob_digests() == []
    assert list(store.tmp_dir.iterdir()) == []


# --- Docker 20.10 legacy metadata (golden values from a real `docker save`) ---------------------

DOCKER_BUSYBOX_CONFIG = (
    b'{"architecture":"amd64","comment":"Imported from -","config":{"Hostname":"","Domainname":"","User":"",'
    b'"AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,'
    b'"StdinOnce":false,"Env":null,"Cmd":["sh"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,'
    b'"OnBuild":null,"Labels":null},"container_config":{"Hostname":"","Domainname":"","User":"",'
    b'"AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,'
    b'"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,'
    b'"OnBuild":null,"Labels":null},"created":"2026-11-28T12:34:30.974282257Z","docker_version":"20.10.24+dfsg1",'
    b'"history":[{"created":"2026-11-28T12:34:30.974282257Z","comment":"Imported from -"}],"os":"linux",'
    b'"rootfs":{"type":"layers","diff_ids":["sha256:a481894b64ed19e9b3fd36f59ad6eb9598baf858bb5a397068a70a5c92938963"]}}'
)
DOCKER_COMMIT_CONFIG = (
    b'{"architecture":"amd64","config":{"Hostname":"2b6a9c249464","Domainname":"","User":"","AttachStdin":false,'
    b'"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=b"],'
    b'"Cmd":["sh","-c","echo hi \\u003e /greeting \\u0026\\u0026 echo \'\\u003ca\\u003e\\u0026b\' \\u003e /x"],'
    b'"Image":"busybox","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"x":"y"}},'
    b'"container":"2b6a9c2494645242560f30cd0d90ecfcb71e8e27a510eaf4cdc2081cdcbafbc8","container_config":'
    b'{"Hostname":"2b6a9c249464","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,'
    b'"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["sh","-c",'
    b'"echo hi \\u003e /greeting \\u0026\\u0026 echo \'\\u003ca\\u003e\\u0026b\' \\u003e /x"],"Image":"busybox",'
    b'"Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{}},'
    b'"created":"2026-11-28T12:34:31.285355728Z","docker_version":"20.10.24+dfsg1","history":['
    b'{"created":"2026-11-28T12:34:30.974282257Z","comment":"Imported from -"},'
    b'{"created":"2026-11-28T12:34:31.285355728Z","created_by":"sh -c echo hi \\u003e /greeting \\u0026\\u0026 '
    b'echo \'\\u003ca\\u003e\\u0026b\' \\u003e /x","comment":"add \\u003cgreeting\\u003e \\u0026 x"}],"os":"linux",'
    b'"rootfs":{"type":"layers","diff_ids":["sha256:a481894b64ed19e9b3fd36f59ad6eb9598baf858bb5a397068a70a5c92938963",'
    b'"sha256:3f2c64e84fb2a32f834876b6e455fc6b4d731365c7c3d4192cc0cccdf34562ab"]}}'
)


def test_docker_golden_configs_are_the_ones_docker_saved():
    assert sha256_bytes(DOCKER_BUSYBOX_CONFIG).endswith("5d93e8ef81403ff68e26f4af197529b3fa21651b608e70f534178403de13b48c")
    assert sha256_bytes(DOCKER_COMMIT_CONFIG).endswith("b88f40d70450dd4b6ee8cb42b352f051be2ffea44d27ba81b983ce73bddc5898")


@pytest.mark.parametrize("config, expected", [
    (DOCKER_BUSYBOX_CONFIG, [("6a179f17c43d3d82dc0fb7683640d1842b3541996d7fb63aec6e18ed8c7bada0",
                              "54dbf1e8ba3cc237a5c4cd133f8596f5dadc1e1b475b0e71d82e52beabef0ecf")]),
    (DOCKER_COMMIT_CONFIG, [("e55c0b8b640965690c4f1a5e7ccbc25933be938f7b8735e954979e7672c9419d",
                             "89ac0f50a8a4a3236dcee3b01314a25bae66bfcdc608e2f308f7f4f0c231e502"),
                            ("4e738f8444591efa3c680b59ba7a7f41400667313b74b94677c1f1fdc1445ea0",
                             "7f624debef14511604218a72b7b2da0626cd9cf448fb390a88a656ff1fb23762")]),
])
def test_v1_ids_and_json_match_docker_20_10_byte_for_byte(config, expected):
    """v1 IDs and the sha256 of each ``<id>/json`` as Docker 20.10.24 wrote them."""
    layers = v1_layers(config)
    assert [(layer.v1_id, hashlib.sha256(layer.json).hexdigest()) for layer in layers] == expected


def test_v1_json_of_a_lower_layer_is_the_placeholder_docker_writes():
    lower = v1_layers(DOCKER_COMMIT_CONFIG)[0]
    doc = json.loads(lower.json)
    assert list(doc) == ["id", "created", "container_config", "os"]
    assert doc["created"] == "1970-01-01T00:00:00Z"
    assert doc["container_config"]["Cmd"] is None and doc["container_config"]["Labels"] is None
    top = json.loads(v1_layers(DOCKER_COMMIT_CONFIG)[1].json)
    assert top["parent"] == lower.v1_id
    assert b"\\u003e" in v1_layers(DOCKER_COMMIT_CONFIG)[1].json  # Go's HTML-safe escaping


# --- docker-archive ----------------------------------------------------------------------------

def test_docker_archive_structure(src):
    data = saved(src.store, ["mine:v1"])
    names = list(members(data))
    files = contents(data)
    layers = v1_layers(src.store.read_blob(src.mine))
    config_name = src.mine.removeprefix("sha256:") + ".json"
    expected = sorted([config_name, "manifest.json", "repositories"]
                      + [f"{layer.v1_id}{suffix}" for layer in layers
                         for suffix in ("", "/VERSION", "/json", "/layer.tar")],
                      key=lambda n: n.split("/"))
    assert names == expected                                   # walk order, as Docker writes it
    manifest = json.loads(files["manifest.json"])
    assert manifest == [{"Config": config_name, "RepoTags": ["mine:v1"],
                         "Layers": [f"{layer.v1_id}/layer.tar" for layer in layers]}]
    assert files["manifest.json"].endswith(b"]\n")
    assert json.loads(files["repositories"]) == {"mine": {"v1": layers[-1].v1_id}}
    assert files[config_name] == src.store.read_blob(src.mine)
    diff_ids = list(load_config(src.store, src.mine).diff_ids)
    for layer, diff_id in zip(layers, diff_ids):
        assert files[f"{layer.v1_id}/VERSION"] == b"1.0"
        assert json.loads(files[f"{layer.v1_id}/json"])["id"] == layer.v1_id
        assert sha256_bytes(files[f"{layer.v1_id}/layer.tar"]) == diff_id
    info = members(data)
    assert info[f"{layers[0].v1_id}"].isdir()
    assert {(m.uid, m.gid, m.uname) for m in info.values()} == {(0, 0, "root")}


def test_docker_archive_by_id_has_null_repo_tags_and_no_repositories(src):
    files = contents(saved(src.store, [src.hello.removeprefix("sha256:")[:12]]))
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None   # Docker 20.10 writes null
    assert "repositories" not in files


def test_docker_archive_shares_layers_with_relative_symlinks_and_links_parents(src):
    data = saved(src.store, ["mine:v1", "busybox:latest"])
    info = members(data)
    items = json.loads(contents(data)["manifest.json"])
    assert [i["RepoTags"] for i in items] == [["mine:v1"], ["busybox:latest"]]
    assert items[0]["Parent"] == src.busybox and "Parent" not in items[1]
    busybox_tar = items[1]["Layers"][0]
    assert info[busybox_tar].issym()     # same DiffID as mine's lower layer, different v1 ID
    assert info[busybox_tar].linkname == f"../{items[0]['Layers'][0]}"


def test_bare_repository_name_saves_all_its_tags(src, tmp_path):
    store = Store(tmp_path / "h")
    boot = bootstrap(store)
    tag_image(store, boot.hello_world, "busybox:hello")
    items = json.loads(contents(saved(store, ["busybox"]))["manifest.json"])
    assert sorted(t for i in items for t in i["RepoTags"]) == ["busybox:hello", "busybox:latest"]
    store.close()


def test_save_unknown_image_fails_before_writing(src):
    buf = io.BytesIO()
    with pytest.raises(ImageNotFound):
        save(src.store, ["busybox:latest", "nosuch:image"], buf)
    assert buf.getvalue() == b""


# --- round trips -------------------------------------------------------------------------------

def assert_same_image(a: Store, b: Store, image_id: str) -> None:
    assert b.has_image(image_id)
    validate_image(b, image_id)
    assert b.image_diff_ids(image_id) == a.image_diff_ids(image_id)
    strip = [(h.created, h.created_by, h.size, h.comment) for h in history(a, image_id)]
    assert [(h.created, h.created_by, h.size, h.comment) for h in history(b, image_id)] == strip
    for diff_id in a.image_diff_ids(image_id):
        assert b.layer(diff_id) == a.layer(diff_id)
        assert sha256_bytes(b.read_blob(diff_id)) == diff_id


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_round_trip_keeps_ids_tags_history_and_layers(src, dst, fmt):
    loaded = load(dst, io.BytesIO(saved(src.store, ["mine:v1", "busybox:latest", "hello-world"], fmt)))
    assert loaded == [LoadedImage(src.mine, ("mine:v1",)), LoadedImage(src.busybox, ("busybox:latest",)),
                      LoadedImage(src.hello, ("hello-world:latest",))]
    for image_id in (src.mine, src.busybox, src.hello):
        assert_same_image(src.store, dst, image_id)
    assert dst.image(src.mine).parent == src.busybox          # Parent link of the archive kept
    assert list(dst.tmp_dir.iterdir()) == []


def test_oci_round_trip_records_the_manifest_and_saves_it_again(src, dst, tmp_path):
    first = tmp_path / "first"
    save_oci_dir(src.store, ["mine:v1"], first)
    digest = json.loads((first / "index.json").read_text())["manifests"][0]["digest"]
    load(dst, io.BytesIO(saved(src.store, ["mine:v1"], "oci")))
    assert dst.manifests(src.mine) == [(digest, OCI_MANIFEST)]
    assert json.loads(contents(saved(dst, ["mine:v1"], "oci"))["index.json"])["manifests"][0]["digest"] == digest


def test_round_trip_through_an_oci_directory(src, dst, tmp_path):
    layout = tmp_path / "layout"
    save_oci_dir(src.store, ["mine:v1"], layout)
    assert [li.tags for li in load(dst, layout)] == [("mine:v1",)]
    assert_same_image(src.store, dst, src.mine)


def test_loading_an_untagged_image_reports_no_tags(src, dst):
    assert load(dst, io.BytesIO(saved(src.store, [src.mine]))) == [LoadedImage(src.mine, ())]
    assert dst.tags() == []


def test_load_moves_existing_tags(src, dst):
    load(dst, io.BytesIO(saved(src.store, ["hello-world:latest"])))
    tag_image(dst, src.hello, "busybox:latest")
    load(dst, io.BytesIO(saved(src.store, ["busybox:latest"])))
    assert dst.tag("docker.io/library/busybox:latest").image_id == src.busybox


@pytest.mark.parametrize("compress", [gzip.compress, lambda b: __import__("lzma").compress(b)])
def test_loading_a_compressed_archive(src, dst, compress):
    data = compress(saved(src.store, ["busybox:latest"]))
    assert load(dst, io.BytesIO(data)) == [LoadedImage(src.busybox, ("busybox:latest",))]


def test_loading_a_legacy_archive_with_gzip_layers(src, dst):
    data = saved(src.store, ["mine:v1"])
    files = contents(data)
    gz = {n: gzip.compress(b) for n, b in files.items() if n.endswith("layer.tar")}
    loaded = load(dst, io.BytesIO(rebuild(data, gz)))
    assert loaded == [LoadedImage(src.mine, ("mine:v1",))]
    assert_same_image(src.store, dst, src.mine)


# --- reproducibility -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_save_is_byte_for_byte_reproducible(src, monkeypatch, fmt):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    first = saved(src.store, ["mine:v1", "hello-world:latest"], fmt)
    second = saved(src.store, ["mine:v1", "hello-world:latest"], fmt)
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    assert {m.mtime for m in members(first).values()} == {int(EPOCH)}
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert {m.mtime for m in members(saved(src.store, ["busybox:latest"], fmt)).values()} == {0}


def test_same_images_in_two_homes_give_the_same_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    digests = set()
    for home in ("a", "b"):
        store = Store(tmp_path / home)
        bootstrap(store)
        digests.add(sha256_bytes(saved(store, ["busybox:latest", "hello-world:latest"])))
        store.close()
    assert len(digests) == 1


# --- OCI layout ------------------------------------------------------------------------------------

def test_oci_layout_structure(src, tmp_path):
    layout = tmp_path / "oci"
    save_oci_dir(src.store, ["busybox:latest", "mine:v1"], layout)
    assert sorted(p.name for p in layout.iterdir()) == ["blobs", "index.json", "oci-layout"]
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    refs = [(d["annotations"][REF_NAME_ANNOTATION], d["annotations"]["io.containerd.image.name"])
            for d in index["manifests"]]
    assert refs == [("latest", "docker.io/library/busybox:latest"), ("v1", "docker.io/library/mine:v1")]
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert sha256_bytes(blob.read_bytes()) == "sha256:" + blob.name
    desc = index["manifests"][1]
    assert desc["mediaType"] == OCI_MANIFEST
    assert desc["platform"]["architecture"] == host_platform().architecture
    manifest = json.loads((layout / "blobs/sha256" / desc["digest"].split(":")[1]).read_bytes())
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"] == {"mediaType": OCI_CONFIG, "digest": src.mine,
                                  "size": len(src.store.read_blob(src.mine))}
    assert [(l["mediaType"], l["digest"]) for l in manifest["layers"]] == \
        [(OCI_LAYER, d) for d in src.store.image_diff_ids(src.mine)]
    assert not list(tmp_path.glob(".oci.*"))                   # no temp dir left behind


def test_oci_tar_carries_docker_25_manifest_json(src):
    files = contents(saved(src.store, ["mine:v1"], "oci"))
    item = json.loads(files["manifest.json"])[0]
    assert item["Config"] == "blobs/sha256/" + src.mine.removeprefix("sha256:")
    assert item["RepoTags"] == ["mine:v1"]
    assert all(files[name] for name in item["Layers"])
    assert files["oci-layout"] == b'{"imageLayoutVersion":"1.0.0"}'


def test_save_oci_dir_refuses_a_non_empty_target(src, tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep").write_text("mine")
    with pytest.raises(ArchiveError, match="not empty"):
        save_oci_dir(src.store, ["busybox:latest"], target)
    assert [p.name for p in target.iterdir()] == ["keep"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArchiveError, match="not a directory"):
        save_oci_dir(src.store, ["busybox:latest"], tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    save_oci_dir(src.store, ["busybox:latest"], empty)        # an empty directory is fine
    assert (empty / "index.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "empty", "file"]


def gzip_layout(src: Source, root: Path, *, ref_names: dict[str, str], nested: list[str] | None = None) -> str:
    """An OCI layout like skopeo writes: gzip layers; returns the manifest digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = sha256_bytes(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return digest

    config = src.store.read_blob(src.mine)
    layers = []
    for diff_id in src.store.image_diff_ids(src.mine):
        out = io.BytesIO()
        with src.store.open_blob(diff_id) as f:
            gzip_stream(f, out)
        layers.append({"mediaType": OCI_LAYER_GZIP, "digest": put(out.getvalue()), "size": len(out.getvalue())})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": put(config), "size": len(config)},
                           "layers": layers}).encode()
    mdigest = put(manifest)
    top = {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
    if nested is not None:
        children = [dict(top, platform={"architecture": arch, "os": "linux"}) for arch in nested]
        inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
        top = {"mediaType": OCI_INDEX, "digest": put(inner), "size": len(inner)}
    index = {"schemaVersion": 2, "manifests": [dict(top, annotations=ref_names)]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return mdigest


def test_oci_layout_with_gzip_layers_keeps_compressed_blobs_and_manifest(src, dst, tmp_path):
    mdigest = gzip_layout(src, tmp_path / "in", ref_names={REF_NAME_ANNOTATION: "localhost/app:1.0"})
    assert load(dst, tmp_path / "in") == [LoadedImage(src.mine, ("localhost/app:1.0",))]
    assert_same_image(src.store, dst, src.mine)
    for diff_id in dst.image_diff_ids(src.mine):
        assert {b.media_type for b in dst.layer_blobs(diff_id)} == {OCI_LAYER, OCI_LAYER_GZIP}
    assert dst.manifests(src.mine) == [(mdigest, OCI_MANIFEST)]
    save_oci_dir(dst, ["localhost/app:1.0"], tmp_path / "out")   # the same manifest digest again
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [d["digest"] for d in index["manifests"]] == [mdigest]
    docker = contents(saved(dst, ["localhost/app:1.0"]))           # and uncompressed for docker
    assert json.loads(docker["manifest.json"])[0]["RepoTags"] == ["localhost/app:1.0"]


def test_plain_oci_layout_as_a_gzip_tar_stream(src, dst, tmp_path):
    mdigest = gzip_layout(src, tmp_path / "in", ref_names={REF_NAME_ANNOTATION: "app:2"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name in ("oci-layout", "index.json", "blobs"):     # skopeo's oci-archive member order
            tf.add(tmp_path / "in" / name, arcname=name)
    assert load(dst, io.BytesIO(buf.getvalue())) == [LoadedImage(src.mine, ("app:2",))]
    assert dst.manifests(src.mine) == [(mdigest, OCI_MANIFEST)]


def test_nested_index_resolves_to_the_host_platform(src, dst, tmp_path):
    host = host_platform().architecture
    gzip_layout(src, tmp_path / "multi", ref_names={REF_NAME_ANNOTATION: "multi:1"}, nested=["s390x", host])
    assert load(dst, tmp_path / "multi") == [LoadedImage(src.mine, ("multi:1",))]
    gzip_layout(src, tmp_path / "foreign", ref_names={}, nested=["s390x", "riscv64"] if host != "s390x" else ["arm"])
    with pytest.raises(ArchiveError, match="no image for platform"):
        load(dst, tmp_path / "foreign")


def test_a_bare_tag_ref_name_leaves_the_image_untagged(src, dst, tmp_path):
    gzip_layout(src, tmp_path / "in", ref_names={REF_NAME_ANNOTATION: "latest"})
    assert load(dst, tmp_path / "in") == [LoadedImage(src.mine, (), ("latest",))]
    assert dst.tags() == []


def test_oci_blob_digest_mismatch_is_refused(src, dst, tmp_path):
    gzip_layout(src, tmp_path / "in", ref_names={REF_NAME_ANNOTATION: "x:1"})
    config = tmp_path / "in" / "blobs" / "sha256" / src.mine.split(":")[1]
    config.write_bytes(config.read_bytes().replace(b'"os":"linux"', b'"os":"LINUX"'))
    with pytest.raises(ArchiveDigestMismatch, match=src.mine.split(":")[1]) as info:
        load(dst, tmp_path / "in")
    assert isinstance(info.value, DigestMismatch)
    assert_untouched(dst)


def test_symlinks_inside_a_layout_directory_are_refused(src, dst, tmp_path):
    layout = tmp_path / "in"
    save_oci_dir(src.store, ["busybox:latest"], layout)
    (layout / "index.json").rename(tmp_path / "real-index.json")
    (layout / "index.json").symlink_to(tmp_path / "real-index.json")
    with pytest.raises(ArchiveError, match="index.json"):
        load(dst, layout)
    assert_untouched(dst)


# --- hostile archives ---------------------------------------------------------------------------

def hostile_cases(valid: bytes) -> dict[str, tuple[bytes, str]]:
    files = contents(valid)
    manifest = json.loads(files["manifest.json"])
    layer = manifest[0]["Layers"][0]

    def with_manifest(**changes) -> bytes:
        return rebuild(valid, {"manifest.json": json.dumps([dict(manifest[0], **changes)]).encode()})

    return {
        "dotdot member": (rebuild(valid, extra=[entry("../evil", b"x")]), "../evil"),
        "absolute member": (rebuild(valid, extra=[entry("/tmp/ll-evil", b"x")]), "/tmp/ll-evil"),
        "symlink escaping": (build_tar([entry(n, files[n]) for n in files if n != layer]
                                       + [entry(layer, kind=tarfile.SYMTYPE, link="../../../etc/passwd")]),
                             layer),
        "absolute symlink": (build_tar([entry(n, files[n]) for n in files if n != "manifest.json"]
                                       + [entry("manifest.json", kind=tarfile.SYMTYPE, link="/etc/passwd")]),
                             "manifest.json"),
        "hardlink escaping": (rebuild(valid, extra=[entry("x", kind=tarfile.LNKTYPE, link="../etc/passwd")]),
                              "../etc/passwd"),
        "device member": (rebuild(valid, extra=[entry("dev/sda", kind=tarfile.BLKTYPE)]), "dev/sda"),
        "config outside": (with_manifest(Config="../../etc/passwd"), "../../etc/passwd"),
        "layer absolute": (with_manifest(Layers=["/etc/passwd"]), "/etc/passwd"),
        "layer missing": (with_manifest(Layers=["nothere/layer.tar"]), "nothere/layer.tar"),
        "huge manifest": (rebuild(valid, {"manifest.json": b" " * (archive.MAX_JSON + 1)}), "manifest.json"),
        "duplicate member": (rebuild(valid, extra=[entry("manifest.json", b"[]")]), "manifest.json"),
        "not a tar": (b"\x00garbage" * 200, "invalid archive"),
    }


HOSTILE = ["dotdot member", "absolute member", "symlink escaping", "absolute symlink", "hardlink escaping",
           "device member", "config outside", "layer absolute", "layer missing", "huge manifest",
           "duplicate member", "not a tar"]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_archives_are_refused_naming_the_entry(src, dst, tmp_path, monkeypatch, case):
    data, needle = hostile_cases(saved(src.store, ["busybox:latest"]))[case]
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ArchiveError) as info:
        load(dst, io.BytesIO(data))
    assert needle in str(info.value)
    assert_untouched(dst)
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not Path("/tmp/ll-evil").exists() and not (tmp_path.parent / "evil").exists()


def test_internal_symlinks_as_docker_writes_them_are_followed(src, dst):
    data = saved(src.store, ["mine:v1", "busybox:latest"])
    assert any(m.issym() for m in members(data).values())
    assert [li.image_id for li in load(dst, io.BytesIO(data))] == [src.mine, src.busybox]


def test_diff_id_mismatch_is_refused_and_nothing_is_tagged(src, dst):
    valid = saved(src.store, ["mine:v1"])
    top = json.loads(contents(valid)["manifest.json"])[0]["Layers"][-1]
    forged = rebuild(valid, {top: one_layer_tar({"greeting": b"forged\n"})})
    with pytest.raises(ArchiveError, match="DiffID") as info:
        load(dst, io.BytesIO(forged))
    assert top in str(info.value)
    assert_untouched(dst)


def test_config_named_by_the_wrong_digest_is_refused(src, dst):
    valid = saved(src.store, ["busybox:latest"])
    files = contents(valid)
    item = json.loads(files["manifest.json"])[0]
    other = src.hello.removeprefix("sha256:") + ".json"
    forged = rebuild(valid, {"manifest.json": json.dumps([dict(item, Config=other)]).encode()},
                     extra=[entry(other, files[item["Config"]])])
    with pytest.raises(ArchiveError, match=other):
        load(dst, io.BytesIO(forged))
    assert_untouched(dst)


def test_invalid_repo_tag_is_refused(src, dst):
    valid = saved(src.store, ["busybox:latest"])
    item = json.loads(contents(valid)["manifest.json"])[0]
    forged = rebuild(valid, {"manifest.json": json.dumps([dict(item, RepoTags=["Bad:Tag"])]).encode()})
    with pytest.raises(ArchiveError, match="Bad:Tag"):
        load(dst, io.BytesIO(forged))
    assert_untouched(dst)


def test_an_archive_without_images_is_refused(dst):
    with pytest.raises(ArchiveError, match="no manifest.json or index.json"):
        load(dst, io.BytesIO(build_tar([entry("hello.txt", b"hi")])))
    with pytest.raises(ArchiveError, match="cannot open"):
        load(dst, "/nonexistent/archive.tar")

