"""``push``/``pull``/``login``/``logout`` against the real Docker registry (Distribution 2.8) on loopback.

The image is the seed's web Dockerfile built by LayerLab's builder on the bootstrapped busybox:
three layers, like the transcript's ``static_web``. Output is compared line by line with the shapes
of docker-20.10-transcripts.md (push, push-auth, rmi-pull).
"""
from __future__ import annotations

import io
import json
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import Engine
from engine.builder import BuildOptions
from engine.cli import Streams, run
from engine.digest import short_id
from engine.graph import layer_graph
from engine.registry.credentials import config_path
from engine.spec import DOCKER_MANIFEST, OCI_INDEX, ImageConfig, Manifest, canonical_json, host_platform
from engine.testing import SEED_WEB_DOCKERFILE

pytestmark = pytest.mark.integration

WEB = SEED_WEB_DOCKERFILE
DIGEST_LINE = re.compile(r"^(?P<tag>[\w.-]+): digest: (?P<digest>sha256:[0-9a-f]{64}) size: (?P<size>\d+)$")


@dataclass
class Out:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def cli(eng: Engine, *argv: str, stdin: bytes = b"") -> Out:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), Streams(stdout=out, stderr=err, stdin=io.BytesIO(stdin)), eng)
    return Out(code, out.getvalue(), err.getvalue())


def build(eng: Engine, tmp_path: Path, tag: str, dockerfile: str = WEB, index: str = "<h1>Hello from index v2</h1>\n") -> str:
    """Build ``dockerfile`` (with an index.html in its context) on the bootstrapped busybox; return the image ID."""
    eng.bootstrap()
    ctx = tmp_path / f"ctx-{tag.replace(':', '-').replace('/', '-')}"
    ctx.mkdir()
    (ctx / "index.html").write_text(index)
    (ctx / "Dockerfile").write_text(dockerfile)
    for _ in eng.build(BuildOptions(context=str(ctx), tags=(tag,))):
        pass
    return eng.image_id(tag)


def diff_ids(eng: Engine, image: str) -> list[str]:
    return list(ImageConfig.from_json(eng.store.read_blob(eng.image_id(image))).diff_ids)


def registry_manifest(registry, repo: str, ref: str) -> tuple[bytes, str]:
    req = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{ref}", headers={"Accept": DOCKER_MANIFEST})
    if registry.user:
        import base64
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return resp.read(), resp.headers["Docker-Content-Digest"]


def check_push_output(result: Out, repository: str, layer_ids: list[str], status: str) -> tuple[str, int]:
    """The transcript's shape: header, Preparing per layer top first, a status per layer, the digest line."""
    assert result.code == 0, result
    lines = result.lines
    assert lines[0] == f"The push refers to repository [{repository}]"
    assert lines[1:1 + len(layer_ids)] == [f"{i}: Preparing" for i in layer_ids]
    statuses = lines[1 + len(layer_ids):-1]
    assert sorted(statuses) == sorted(f"{i}: {status}" for i in layer_ids)
    m = DIGEST_LINE.match(lines[-1])
    assert m, lines[-1]
    return m.group("digest"), int(m.group("size"))


def test_push_repush_mount_and_pull_back(docker_registry, tmp_path: Path) -> None:
    registry = docker_registry()
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    name = f"{registry.host}/whoami/static_web:latest"
    assert cli(eng, "tag", "static_web", name).code == 0
    ids = [short_id(d) for d in reversed(diff_ids(eng, name))]
    assert len(ids) == 3

    digest, size = check_push_output(cli(eng, "push", name), f"{registry.host}/whoami/static_web", ids, "Pushed")
    manifest, served = registry_manifest(registry, "whoami/static_web", "latest")
    assert served == digest and len(manifest) == size
    parsed = Manifest.from_json(manifest)
    assert parsed.media_type == DOCKER_MANIFEST and parsed.config.digest == eng.image_id(name)
    status, _, body = registry.get("/v2/whoami/static_web/tags/list")
    assert status == 200 and json.loads(body)["tags"] == ["latest"]

    again = check_push_output(cli(eng, "push", name), f"{registry.host}/whoami/static_web", ids,
                              "Layer already exists")
    assert again == (digest, size)
    # the layer graph marks what was pushed (tag and registry repository)
    graph = layer_graph(eng.store)
    assert graph.node("T" + name).mark == "pushed"
    assert graph.node(f"R{registry.host}/whoami/static_web@{digest}").mark == "pushed"
    assert graph.node("Tstatic_web:latest").mark == ""

    # a second repository sharing the base layer: the base is mounted, not uploaded
    build(eng, tmp_path, "mycommit:v1", "FROM busybox:latest\nRUN echo committed > /c.txt\n")
    other = f"{registry.host}/whoami/mycommit:v1"
    cli(eng, "tag", "mycommit:v1", other)
    top, base = [short_id(d) for d in reversed(diff_ids(eng, other))]
    result = cli(eng, "push", other)
    assert result.code == 0, result
    assert result.lines[:3] == [f"The push refers to repository [{registry.host}/whoami/mycommit]",
                                f"{top}: Preparing", f"{base}: Preparing"]
    assert sorted(result.lines[3:5]) == sorted([f"{top}: Pushed", f"{base}: Mounted from whoami/static_web"])
    assert DIGEST_LINE.match(result.lines[5]) and result.lines[5].startswith("v1: digest: ")

    # rmi, then pull back: the same image ID and manifest digest
    image_id = eng.image_id(name)
    for ref in (name, "static_web"):
        assert cli(eng, "rmi", ref).code == 0
    assert not eng.store.has_image(image_id)
    blob_ids = [short_id(d.digest) for d in parsed.layers]
    result = cli(eng, "pull", name)
    assert result.code == 0, result
    lines = result.lines
    assert lines[0] == "latest: Pulling from whoami/static_web"
    assert lines[1:4] == [f"{blob_ids[0]}: Already exists", f"{blob_ids[1]}: Pulling fs layer",
                          f"{blob_ids[2]}: Pulling fs layer"]
    for i in blob_ids[1:]:
        assert lines.index(f"{i}: Verifying Checksum") < lines.index(f"{i}: Download complete") < \
            lines.index(f"{i}: Pull complete")
    assert lines[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {name}", name]
    assert eng.image_id(name) == image_id
    table = cli(eng, "images", "--digests").lines
    row = next(line.split() for line in table if line.startswith(f"{registry.host}/whoami/static_web "))
    assert row[1:4] == ["latest", digest, short_id(image_id)]
    # the pulled image keeps its manifest: pushing it again gives the same digest
    assert cli(eng, "push", name).lines[-1] == f"latest: digest: {digest} size: {size}"

    up_to_date = cli(eng, "pull", name)
    assert up_to_date.lines == ["latest: Pulling from whoami/static_web", f"Digest: {digest}",
                                f"Status: Image is up to date for {name}", name]
    assert cli(eng, "pull", "-q", name).lines == [name]


def test_pull_all_tags_and_by_digest(docker_registry, tmp_path: Path) -> None:
    registry = docker_registry()
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    repo = f"{registry.host}/whoami/static_web"
    digests = {}
    for tag in ("v1", "v2"):
        cli(eng, "tag", "static_web", f"{repo}:{tag}")
        digests[tag] = DIGEST_LINE.match(cli(eng, "push", f"{repo}:{tag}").lines[-1]).group("digest")
    fresh = Engine(tmp_path / "fresh")
    result = cli(fresh, "pull", "-a", repo)
    assert result.code == 0, result
    assert "v1: Pulling from whoami/static_web" in result.lines and "v2: Pulling from whoami/static_web" in result.lines
    assert result.lines[-2:] == [f"Status: Downloaded newer image for {repo}", repo]
    assert fresh.image_id(f"{repo}:v1") == fresh.image_id(f"{repo}:v2") == eng.image_id("static_web")
    assert cli(fresh, "pull", "-a", f"{repo}:v1").err.strip() == "tag can't be used with --all-tags/-a"

    by_digest = Engine(tmp_path / "by-digest")
    result = cli(by_digest, "pull", f"{repo}@{digests['v1']}")
    assert result.code == 0, result
    assert result.lines[0] == f"{digests['v1']}: Pulling from whoami/static_web"
    assert result.lines[-1] == f"{repo}@{digests['v1']}"
    assert by_digest.image_id(f"{repo}@{digests['v1']}") == eng.image_id("static_web")
    assert not by_digest.store.tags()  # a digest pull sets no tag

    missing = cli(fresh, "pull", f"{repo}:nope")
    assert missing.code == 1
    assert missing.err.startswith(f"Error response from daemon: manifest for {repo}:nope not found: manifest unknown")


def test_push_errors(docker_registry, tmp_path: Path) -> None:
    registry = docker_registry()
    eng = Engine(tmp_path / "home")
    result = cli(eng, "push", f"{registry.host}/whoami/nothing")
    assert result.code == 1
    assert result.lines == [f"The push refers to repository [{registry.host}/whoami/nothing]"]
    assert result.err == f"An image does not exist locally with the tag: {registry.host}/whoami/nothing\n"
    quiet = cli(eng, "push", "-q", f"{registry.host}/whoami/nothing")
    assert (quiet.code, quiet.out) == (1, "")
    assert quiet.err == f"An image does not exist locally with the tag: {registry.host}/whoami/nothing\n"
    eng.bootstrap()
    cli(eng, "tag", "busybox", f"{registry.host}/whoami/some:v1")
    other_tag = cli(eng, "push", f"{registry.host}/whoami/some:v2")
    assert (other_tag.code, other_tag.err) == (1, f"tag does not exist: {registry.host}/whoami/some:v2\n")


def test_auth_registry_login_push_logout(docker_registry, tmp_path: Path) -> None:
    registry = docker_registry(auth=True)
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    name = f"{registry.host}/whoami/static_web:latest"
    cli(eng, "tag", "static_web", name)
    ids = [short_id(d) for d in reversed(diff_ids(eng, name))]

    denied = cli(eng, "push", name)
    assert denied.code == 1
    assert denied.lines == [f"The push refers to repository [{registry.host}/whoami/static_web]"] + \
        [f"{i}: Preparing" for i in ids]
    assert denied.err == "no basic auth credentials\n"

    wrong = cli(eng, "login", "-u", "student", "--password-stdin", registry.host, stdin=b"wrong\n")
    assert wrong.code == 1
    assert wrong.err == (f"Error response from daemon: login attempt to http://{registry.host}/v2/ "
                         "failed with status: 401 Unauthorized\n")
    assert not config_path().exists() or registry.host not in config_path().read_text()

    ok = cli(eng, "login", "-u", "student", "--password-stdin", registry.host, stdin=b"s3cret\n")
    assert ok.code == 0, ok
    assert ok.out == "Login Succeeded\n"
    assert ok.err.startswith(f"WARNING! Your password will be stored unencrypted in {config_path()}.\n")
    assert json.loads(config_path().read_text())["auths"][registry.host] == {"auth": "c3R1ZGVudDpzM2NyZXQ="}

    digest, _ = check_push_output(cli(eng, "push", name), f"{registry.host}/whoami/static_web", ids, "Pushed")
    assert registry_manifest(registry, "whoami/static_web", "latest")[1] == digest
    fresh = Engine(tmp_path / "fresh")
    pulled = cli(fresh, "pull", name)
    assert pulled.code == 0 and pulled.lines[-3] == f"Digest: {digest}", pulled

    again_login = cli(eng, "login", registry.host)     # no flags: the stored credentials are tried
    assert (again_login.code, again_login.out) == (0, "Authenticating with existing credentials...\nLogin Succeeded\n")

    assert cli(eng, "logout", registry.host).out == f"Removing login credentials for {registry.host}\n"
    assert cli(eng, "logout", registry.host).out == f"Not logged in to {registry.host}\n"
    again = cli(Engine(tmp_path / "third"), "pull", name)
    assert again.code == 1 and "no basic auth credentials" in again.err


def test_manifest_list_pulls_the_host_platform(docker_registry, tmp_path: Path) -> None:
    """An index with several platforms (the host's listed last): the host's image is the one pulled."""
    registry = docker_registry()
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    repo = f"{registry.host}/whoami/multi"
    cli(eng, "tag", "static_web", f"{repo}:host")
    cli(eng, "tag", "busybox:latest", f"{repo}:other")
    entries = []
    for tag, arch in (("other", "s390x"), ("other", "riscv64"), ("host", None)):
        manifest, digest = registry_manifest_after_push(eng, registry, repo, tag)
        plat = host_platform().to_dict() if arch is None else {"architecture": arch, "os": "linux"}
        entries.append({"mediaType": DOCKER_MANIFEST, "digest": digest, "size": len(manifest), "platform": plat})
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    req = urllib.request.Request(f"{registry.url}/v2/whoami/multi/manifests/multi", data=index, method="PUT",
                                 headers={"Content-Type": OCI_INDEX})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        index_digest = resp.headers["Docker-Content-Digest"]
    fresh = Engine(tmp_path / "fresh")
    result = cli(fresh, "pull", f"{repo}:multi")
    assert result.code == 0, result
    assert fresh.image_id(f"{repo}:multi") == eng.image_id("static_web")
    assert result.lines[-3] == f"Digest: {index_digest}"        # Docker shows (and records) the index digest
    assert fresh.image_id(f"{repo}@{index_digest}") == eng.image_id("static_web")


def registry_manifest_after_push(eng: Engine, registry, repo: str, tag: str) -> tuple[bytes, str]:
    assert cli(eng, "push", f"{repo}:{tag}").code == 0
    return registry_manifest(registry, repo.split("/", 1)[1], tag)


def test_image_aliases_and_all_tags(docker_registry, tmp_path: Path) -> None:
    registry = docker_registry()
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    repo = f"{registry.host}/whoami/static_web"
    for tag in ("a", "b"):
        cli(eng, "tag", "static_web", f"{repo}:{tag}")
    result = cli(eng, "image", "push", "--all-tags", repo)
    assert result.code == 0, result
    assert result.lines.count(f"The push refers to repository [{repo}]") == 1
    assert [line.split(":")[0] for line in result.lines if DIGEST_LINE.match(line)] == ["a", "b"]
    status, _, body = registry.get("/v2/whoami/static_web/tags/list")
    assert sorted(json.loads(body)["tags"]) == ["a", "b"]
    fresh = Engine(tmp_path / "fresh")
    assert cli(fresh, "image", "pull", "-q", f"{repo}:b").out == f"{repo}:b\n"
    assert fresh.image_id(f"{repo}:b") == eng.image_id("static_web")


def test_chunked_upload_round_trip(docker_registry, tmp_path: Path) -> None:
    """Blobs above the threshold go up in PATCH chunks (odd sizes here); the registry reassembles them."""
    from engine.registry.events import LayerProgress
    from engine.registry.push import push
    from engine.registry.settings import Settings

    registry = docker_registry()
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    name = f"{registry.host}/whoami/chunked:latest"
    cli(eng, "tag", "static_web", name)
    events = list(push(eng.store, name, Settings(), chunk_threshold=1000, chunk_size=300_007))
    pushing = [e for e in events if isinstance(e, LayerProgress) and e.status == "Pushing"]
    base = max(pushing, key=lambda e: e.total)
    assert base.total > 2 * 300_007                       # the busybox layer took several PATCHes
    assert [e.current for e in pushing if e.id == base.id][:2] == [300_007, 2 * 300_007]
    fresh = Engine(tmp_path / "fresh")
    assert cli(fresh, "pull", name).code == 0
    assert fresh.image_id(name) == eng.image_id("static_web")
