"""The seed's sharing chapter, end to end with LayerLab on both sides: the classroom hub stands in
for Docker Hub (as the hub mirror), a student logs in, pushes to her namespace, is refused a root
repository, searches, and a second home pulls what she pushed and runs it."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from engine import Engine
from engine.builder import BuildOptions
from engine.cli import Streams, run
from engine.registry.hub import Hub
from engine.registry.storage import RegistryStorage
from engine.runtime.manager import RunOptions
from tests.integration._registry_server import LayerLabRegistry

pytestmark = pytest.mark.integration


def cli(eng: Engine, *argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    s = Streams(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.BytesIO(stdin))
    code = run(list(argv), s, eng)
    return code, s.stdout.getvalue(), s.stderr.getvalue()


@pytest.fixture
def hub(tmp_path: Path):
    root = tmp_path / "hub-root"
    accounts = Hub(RegistryStorage(root))
    accounts.add_user("alice", "wonderland")
    server = LayerLabRegistry(root, hub=True)
    try:
        yield server
    finally:
        server.stop()


def student(tmp_path: Path, name: str, hub) -> Engine:
    eng = Engine(tmp_path / name)
    eng.bootstrap()
    eng.set_registry_settings(hub_mirror=hub.host)  # Docker Hub names go to the classroom hub
    return eng


def test_login_push_root_refusal_search_and_pull(hub, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "alice-docker"))
    alice = student(tmp_path, "alice", hub)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN echo hello from alice > /hello\n"
                                    'CMD ["cat", "/hello"]\n')
    assert [e for e in alice.build(BuildOptions(context=str(ctx), tags=("alice/hello",)))]

    code, _, err = cli(alice, "push", "alice/hello")
    assert (code, err) == (1, "unauthorized: authentication required\n")  # not logged in

    code, out, err = cli(alice, "login", "-u", "alice", "--password-stdin", stdin=b"wrong\n")
    assert code == 1 and out == "", (out, err)
    code, out, _ = cli(alice, "login", "-u", "alice", "--password-stdin", stdin=b"wonderland\n")
    assert code == 0 and out.endswith("Login Succeeded\n")

    code, out, err = cli(alice, "push", "alice/hello")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "The push refers to repository [docker.io/alice/hello]"
    assert lines[-1].startswith("latest: digest: sha256:")

    # a name without a namespace is an official ("root") repository: only the hub's admins push there
    cli(alice, "tag", "alice/hello", "hello")
    code, out, err = cli(alice, "push", "hello")
    assert code == 1 and '"root" repository (library/hello)' in err and "rename your repository to alice/hello" in err, err

    code, out, _ = cli(alice, "search", "hello")
    assert code == 0
    table = out.splitlines()
    assert table[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    assert [row.split()[0] for row in table[1:]] == ["alice/hello"]
    code, out, _ = cli(alice, "search", f"{hub.host}/hello")  # an explicit index, like docker search
    assert code == 0 and [row.split()[0] for row in out.splitlines()[1:]] == ["alice/hello"]

    # another student pulls it (anonymous pulls are allowed) and runs it
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "bob-docker"))
    bob = student(tmp_path, "bob", hub)
    code, out, err = cli(bob, "pull", "alice/hello")
    assert code == 0, err
    assert out.splitlines()[-1] == "docker.io/alice/hello:latest"
    assert bob.image_id("alice/hello") == alice.image_id("alice/hello")
    chunks: list[bytes] = []
    _, status = bob.run(RunOptions(image="alice/hello", auto_remove=True),
                        output=lambda stream, data: chunks.append(data))
    assert status == 0 and b"".join(chunks) == b"hello from alice\n"
