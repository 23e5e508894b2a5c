"""Docker's implicit pulls: ``run``/``create`` of an image only a registry has (``--pull missing|always|never``),
the classic builder's ``FROM`` of a missing base (and ``build --pull``), and their failures.

The registry is LayerLab's own (in this process, on a free loopback port); Docker Hub names go to it
through the hub mirror setting, as in a classroom. The image is pushed there from another home.
"""
from __future__ import annotations

import io
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import Engine
from engine.cli import Streams, run

from ._registry_server import LayerLabRegistry

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static is not installed")]

LAYER = r"[0-9a-f]{12}"


@dataclass
class Out:
    code: int
    out: str
    err: str


def cli(eng: Engine, *argv: str) -> Out:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), Streams(stdout=out, stderr=err, stdin=io.BytesIO()), eng)
    return Out(code, out.getvalue(), err.getvalue())


@pytest.fixture
def registry():
    reg = LayerLabRegistry()
    yield reg
    reg.stop()


@pytest.fixture(autouse=True)
def _no_mirror_override(monkeypatch):
    monkeypatch.delenv("LAYERLAB_HUB_MIRROR", raising=False)


def publish(tmp_path: Path, registry, name: str, dockerfile: str = "") -> str:
    """Push ``name`` (busybox, or built from ``dockerfile``) from a home of its own; return its pushed digest."""
    src = Engine(tmp_path / "publisher")
    src.bootstrap()
    src.set_registry_settings(hub_mirror=registry.host)
    if dockerfile:
        ctx = tmp_path / "pubctx"
        ctx.mkdir(exist_ok=True)
        (ctx / "Dockerfile").write_text(dockerfile)
        assert cli(src, "build", "-t", name, str(ctx)).code == 0
    else:
        src.tag("busybox", name)
    events = list(src.push(name))
    src.close()
    return events[-1].digest


@pytest.fixture
def eng(tmp_path, registry):
    e = Engine(tmp_path / "home")
    e.set_registry_settings(hub_mirror=registry.host)
    yield e
    e.close()


def pull_lines(name: str, repo: str, digest: str, status: str) -> str:
    """``docker run``'s stderr for a pull of a one-layer image: Docker's lines, layer IDs as a pattern."""
    return (rf"latest: Pulling from {re.escape(repo)}\n"
            rf"({LAYER}): Pulling fs layer\n"
            rf"(\1: (Verifying Checksum|Download complete)\n)+"
            rf"\1: Pull complete\n"
            rf"Digest: {re.escape(digest)}\n"
            rf"Status: {status} {re.escape(name)}\n")


def containers(eng: Engine) -> list[str]:
    cdir = eng.home / "containers"
    return sorted(os.listdir(cdir)) if cdir.exists() else []


def test_run_pulls_a_missing_image_prints_dockers_lines_and_runs_it(tmp_path, registry, eng):
    digest = publish(tmp_path, registry, "whoami/hello")
    r = cli(eng, "run", "--rm", "whoami/hello", "echo", "hi from the registry")
    assert (r.code, r.out) == (0, "hi from the registry\n"), r
    assert re.fullmatch(r"Unable to find image 'whoami/hello:latest' locally\n"
                        + pull_lines("whoami/hello:latest", "whoami/hello", digest, "Downloaded newer image for"),
                        r.err), r.err
    assert [d.repo_digests for d in eng.images(reference="whoami/hello")] == [(f"whoami/hello@{digest}",)]
    again = cli(eng, "run", "--rm", "whoami/hello", "true")   # stored now: nothing is pulled
    assert (again.code, again.out, again.err) == (0, "", "")


def test_create_pulls_quietly_with_q_and_prints_only_the_id(tmp_path, registry, eng):
    publish(tmp_path, registry, "whoami/hello")
    r = cli(eng, "create", "-q", "--name", "c1", "whoami/hello", "echo", "x")
    assert r.code == 0 and r.err == "" and re.fullmatch(r"[0-9a-f]{64}\n", r.out), r
    assert eng.container("c1").image == "whoami/hello"
    assert eng.image_id("whoami/hello") == eng.container("c1").image_id


def test_run_detached_pulls_then_starts(tmp_path, registry, eng):
    publish(tmp_path, registry, "whoami/hello")
    r = cli(eng, "run", "-d", "whoami/hello", "sh", "-c", "echo detached; exit 3")
    assert r.code == 0 and re.fullmatch(r"[0-9a-f]{64}\n", r.out), r
    assert r.err.startswith("Unable to find image 'whoami/hello:latest' locally\nlatest: Pulling from whoami/hello\n")
    c = eng.container(r.out.strip())
    assert c.image_id == eng.image_id("whoami/hello") and c.started_at is not None
    assert eng.wait(c.id) == 3 and cli(eng, "logs", c.id).out == "detached\n"


def test_pull_never_refuses_a_missing_image(tmp_path, registry, eng):
    publish(tmp_path, registry, "whoami/hello")
    for verb in ("run", "create"):
        r = cli(eng, verb, "--pull", "never", "whoami/hello", "true")
        assert (r.code, r.out, r.err) == (125, "", "layerlab: Error response from daemon: No such image: "
                                                   "whoami/hello:latest\n"), r
    assert eng.images(reference="whoami/hello") == [] and containers(eng) == []
    bad = cli(eng, "run", "--pull", "sometimes", "whoami/hello")
    assert (bad.code, bad.err) == (125, "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" "
                                        "or \"never\"\nSee 'layerlab run --help'.\n")


def test_pull_always_repulls_and_takes_a_newer_image(tmp_path, registry, eng):
    digest = publish(tmp_path, registry, "whoami/hello")
    assert cli(eng, "run", "--rm", "whoami/hello", "true").code == 0
    r = cli(eng, "run", "--rm", "--pull", "always", "whoami/hello", "true")
    assert r.code == 0, r
    assert r.err == (f"latest: Pulling from whoami/hello\nDigest: {digest}\n"
                     "Status: Image is up to date for whoami/hello:latest\n")
    newer = publish(tmp_path, registry, "whoami/hello", "FROM busybox\nRUN echo v2 > /version\n")
    stale = cli(eng, "run", "--rm", "whoami/hello", "cat", "/version")   # missing (the default): the stored one
    assert stale.code == 1 and stale.err.endswith("No such file or directory\n"), stale
    r = cli(eng, "run", "--rm", "--pull", "always", "whoami/hello", "cat", "/version")
    assert (r.code, r.out) == (0, "v2\n"), r
    assert r.err.startswith("latest: Pulling from whoami/hello\n") and r.err.endswith(
        f"Digest: {newer}\nStatus: Downloaded newer image for whoami/hello:latest\n"), r.err
    assert "Already exists" in r.err   # busybox's layer was stored


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening: connecting to it is refused, deterministically."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.parametrize("argv", [["run"], ["run", "-d"], ["create"]], ids=["run", "run-d", "create"])
def test_missing_image_without_a_registry_is_one_error_and_leaves_nothing(tmp_path, closed_port, argv):
    e = Engine(tmp_path / "home")
    e.bootstrap()
    e.set_registry_settings(hub_mirror=f"127.0.0.1:{closed_port}")
    images = [i.id for i in e.images(all=True)]
    r = cli(e, *argv, "--name", "never-made", "nosuch", "true")
    assert (r.code, r.out) == (125, ""), r
    assert r.err == ("Unable to find image 'nosuch:latest' locally\n"
                     f'layerlab: Error response from daemon: Get "http://127.0.0.1:{closed_port}/v2/library/nosuch/'
                     f'manifests/latest": dial tcp 127.0.0.1:{closed_port}: connect: connection refused\n')
    assert containers(e) == [] and e.containers(all=True) == []
    assert [i.id for i in e.images(all=True)] == images
    assert not (e.home / "tmp").is_dir() or list((e.home / "tmp").iterdir()) == []


def test_missing_repository_gives_the_registrys_error(tmp_path, registry, eng):
    r = cli(eng, "run", f"{registry.host}/whoami/nothing:v1")
    assert r.code == 125 and r.out == "", r
    first, second, *rest = r.err.splitlines()
    assert first == f"Unable to find image '{registry.host}/whoami/nothing:v1' locally" and rest == []
    assert second.startswith(f"layerlab: Error response from daemon: manifest for {registry.host}/whoami/nothing:v1 "
                             "not found: "), second
    assert containers(eng) == []


# --- the classic builder's FROM -----------------------------------------------------------------------

def build(eng: Engine, ctx: Path, dockerfile: str, *flags: str) -> Out:
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return cli(eng, "build", *flags, str(ctx))


def test_build_from_a_missing_base_pulls_it_inside_the_step_then_caches(tmp_path, registry, eng):
    digest = publish(tmp_path, registry, "whoami/base")
    dockerfile = "FROM whoami/base\nRUN echo built > /built\n"
    r = build(eng, tmp_path / "ctx", dockerfile, "-t", "child")
    assert r.code == 0, r
    base = eng.image_id("whoami/base")
    lines = r.out.splitlines()
    assert lines[1] == "Step 1/2 : FROM whoami/base"
    end = lines.index(f" ---> {base[7:19]}")
    assert re.fullmatch(pull_lines("whoami/base:latest", "whoami/base", digest, "Downloaded newer image for"),
                        "\n".join(lines[2:end]) + "\n"), r.out
    assert lines[end + 1] == "Step 2/2 : RUN echo built > /built" and "Successfully tagged child:latest" in lines
    child = eng.image_id("child")
    again = build(eng, tmp_path / "ctx", dockerfile, "-t", "child")
    assert again.code == 0 and "Pulling" not in again.out and " ---> Using cache" in again.out, again
    assert eng.image_id("child") == child
    assert cli(eng, "run", "--rm", "child", "cat", "/built").out == "built\n"

    pulled = build(eng, tmp_path / "ctx", dockerfile, "--pull", "-t", "child")   # up to date: the cache holds
    assert pulled.code == 0, pulled
    lines = pulled.out.splitlines()
    assert lines[1:5] == ["Step 1/2 : FROM whoami/base", "latest: Pulling from whoami/base", f"Digest: {digest}",
                          "Status: Image is up to date for whoami/base:latest"], pulled.out
    assert " ---> Using cache" in lines and eng.image_id("child") == child

    newer = publish(tmp_path, registry, "whoami/base", "FROM busybox\nRUN echo v2 > /version\n")
    stale = build(eng, tmp_path / "ctx", dockerfile, "-t", "child")   # without --pull: the stored base
    assert stale.code == 0 and "Pulling" not in stale.out and eng.image_id("child") == child
    fresh = build(eng, tmp_path / "ctx", dockerfile, "--pull", "-t", "child")
    assert fresh.code == 0 and f"Digest: {newer}" in fresh.out, fresh
    assert "Status: Downloaded newer image for whoami/base:latest" in fresh.out
    assert eng.image_id("child") != child
    assert cli(eng, "run", "--rm", "child", "cat", "/version", "/built").out == "v2\nbuilt\n"


def test_build_copy_from_a_missing_image_pulls_it(tmp_path, registry, eng):
    publish(tmp_path, registry, "whoami/files", "FROM busybox\nRUN echo data > /data.txt\n")
    eng.bootstrap()
    r = build(eng, tmp_path / "ctx", "FROM busybox\nCOPY --from=whoami/files /data.txt /copied\n", "-t", "cp")
    assert r.code == 0, r
    lines = r.out.splitlines()
    step = lines.index("Step 2/2 : COPY --from=whoami/files /data.txt /copied")
    assert lines[step + 1] == "latest: Pulling from whoami/files"
    assert "Status: Downloaded newer image for whoami/files:latest" in lines[step:]
    assert cli(eng, "run", "--rm", "cp", "cat", "/copied").out == "data\n"


def test_build_from_a_missing_base_without_a_registry_fails_the_step(tmp_path, closed_port):
    e = Engine(tmp_path / "home")
    e.bootstrap()
    e.set_registry_settings(hub_mirror=f"127.0.0.1:{closed_port}")
    before = {i.id: i.repo_tags for i in e.images(all=True)}
    r = build(e, tmp_path / "ctx", "FROM whoami/base\nRUN true\n", "-t", "child")
    assert r.code == 1, r
    assert r.out.splitlines()[1:] == ["Step 1/2 : FROM whoami/base"]
    assert r.err == (f'Get "http://127.0.0.1:{closed_port}/v2/whoami/base/manifests/latest": dial tcp '
                     f"127.0.0.1:{closed_port}: connect: connection refused\n")
    assert {i.id: i.repo_tags for i in e.images(all=True)} == before and containers(e) == []
    # --pull of a stored base fails the same way: no tag moves
    e.tag("busybox", "whoami/base")
    r = build(e, tmp_path / "ctx", "FROM whoami/base\nRUN true\n", "--pull", "-t", "child")
    assert r.code == 1 and "connection refused" in r.err, r
    with pytest.raises(Exception):
        e.image_id("child")


# --- the real Docker registry ------------------------------------------------------------------------

def test_create_from_the_docker_registry_and_its_refusals(tmp_path, docker_registry):
    reg = docker_registry()
    src = Engine(tmp_path / "publisher")
    src.bootstrap()
    name = f"{reg.host}/whoami/hello:v1"
    src.tag("busybox", name)
    digest = list(src.push(name))[-1].digest
    eng = Engine(tmp_path / "home")
    r = cli(eng, "create", "--name", "c1", name, "echo", "x")
    assert r.code == 0 and re.fullmatch(r"[0-9a-f]{64}\n", r.out), r
    assert r.err.startswith(f"Unable to find image '{name}' locally\nv1: Pulling from whoami/hello\n")
    assert r.err.endswith(f"Digest: {digest}\nStatus: Downloaded newer image for {name}\n"), r.err
    assert cli(eng, "start", "-a", "c1").out == "x\n"

    missing = cli(eng, "run", f"{reg.host}/whoami/hello:v2")   # the registry answers 404
    assert missing.code == 125 and missing.err.splitlines()[1].startswith(
        f"layerlab: Error response from daemon: manifest for {reg.host}/whoami/hello:v2 not found: "), missing

    locked = docker_registry(auth=True)   # 401 without credentials
    r = cli(eng, "run", f"{locked.host}/whoami/hello")
    assert r.code == 125 and r.out == "", r
    assert r.err.splitlines() == [
        f"Unable to find image '{locked.host}/whoami/hello:latest' locally",
        f"layerlab: Error response from daemon: pull access denied for {locked.host}/whoami/hello, repository does "
        "not exist or may require 'docker login': no basic auth credentials"], r.err
    assert [c.name for c in eng.containers(all=True)] == ["c1"]
