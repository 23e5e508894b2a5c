"""Interop with a real dockerd 20.10 through the real Docker registry, both ways:
docker pushes, LayerLab pulls and runs; LayerLab pushes, docker pulls and runs."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from engine import Engine
from engine.runtime.manager import RunOptions
from tests.integration.test_push_pull_registry import DIGEST_LINE, build, cli

pytestmark = pytest.mark.integration


def run_output(eng: Engine, image: str, *command: str) -> tuple[int, bytes]:
    chunks: list[bytes] = []
    _, code = eng.run(RunOptions(image=image, command=command, auto_remove=True),
                      output=lambda stream, data: chunks.append(data))
    return code, b"".join(chunks)


def test_docker_pushes_layerlab_pulls_and_runs(dockerd, docker_registry, tmp_path: Path, monkeypatch) -> None:
    registry = docker_registry()
    dockerd.load_busybox()
    name = f"{registry.host}/library/busybox:latest"
    dockerd.run("tag", "busybox:latest", name)
    pushed = dockerd.run("push", name).stdout.splitlines()
    digest = DIGEST_LINE.match(pushed[-1]).group("digest")
    docker_id = dockerd.run("image", "inspect", "--format", "{{.Id}}", "busybox:latest").stdout.strip()

    eng = Engine(tmp_path / "home")
    result = cli(eng, "pull", name)
    assert result.code == 0, result
    assert result.lines[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {name}", name]
    assert eng.image_id(name) == docker_id
    assert run_output(eng, name, "echo", "hello from docker's busybox") == (0, b"hello from docker's busybox\n")

    # the same registry as the classroom's Docker Hub mirror: `pull busybox` goes there and nowhere else
    monkeypatch.setenv("LAYERLAB_HUB_MIRROR", registry.host)
    attempted: list[tuple] = []
    real_connect = socket.socket.connect

    def recording_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempted.append(address[:2])
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    hub = Engine(tmp_path / "hub")
    result = cli(hub, "pull", "busybox")
    assert result.code == 0, result
    assert result.lines[:2] == ["Using default tag: latest", "latest: Pulling from library/busybox"]
    assert result.lines[-2:] == ["Status: Downloaded newer image for busybox:latest", "docker.io/library/busybox:latest"]
    assert hub.image_id("busybox") == docker_id
    assert set(attempted) == {("127.0.0.1", registry.port)}


def test_layerlab_pushes_docker_pulls_and_runs(dockerd, docker_registry, tmp_path: Path) -> None:
    registry = docker_registry()
    eng = Engine(tmp_path / "home")
    build(eng, tmp_path, "static_web")
    name = f"{registry.host}/whoami/static_web:latest"
    cli(eng, "tag", "static_web", name)
    result = cli(eng, "push", name)
    assert result.code == 0, result
    digest = DIGEST_LINE.match(result.lines[-1]).group("digest")

    pulled = dockerd.run("pull", name).stdout.splitlines()
    assert pulled[0] == "latest: Pulling from whoami/static_web"
    assert pulled[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {name}", name]
    assert dockerd.run("image", "inspect", "--format", "{{.Id}}", name).stdout.strip() == eng.image_id(name)
    assert dockerd.run("image", "inspect", "--format", "{{index .RepoDigests 0}}", name).stdout.strip() == \
        f"{registry.host}/whoami/static_web@{digest}"
    out = dockerd.run("run", "--rm", "--network", "none", name).stdout
    assert out == "<h1>Hello from index v2</h1>\n"
    dockerd.run("rmi", name)
