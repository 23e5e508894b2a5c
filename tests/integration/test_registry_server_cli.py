"""``layerlab registry serve|start|status|stop`` as separate processes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from engine import Engine
from engine.values import FrozenInstanceError
from tests.fixtures.dockerd import processes_of
from tests.fixtures.registry import free_loopback_port

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]


def layerlab(*args: str, home: Path, input: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, LAYERLAB_HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], env=env, input=input,
                          capture_output=True, timeout=60)


def wait_gone(pid: int) -> bool:
    for _ in range(200):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_start_status_stop_leaves_no_process(tmp_home, tmp_path):
    port = free_loopback_port()
    root = tmp_path / "reg-root"
    r = layerlab("registry", "start", "--port", str(port), "--root", str(root), home=tmp_home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith(f"registry running at http://127.0.0.1:{port} (pid ")
    r = layerlab("registry", "status", home=tmp_home)
    assert r.returncode == 0 and f"http://127.0.0.1:{port}" in r.stdout.decode()
    assert requests.get(f"http://127.0.0.1:{port}/v2/").status_code == 200
    again = layerlab("registry", "start", "--port", str(port), "--root", str(root), home=tmp_home)
    assert again.returncode == 1 and b"already running" in again.stderr

    pid = int(r.stdout.decode().split("(pid ")[1].split(",")[0])
    assert processes_of(str(root))
    r = layerlab("registry", "stop", home=tmp_home)
    assert r.returncode == 0 and r.stdout.decode() == f"stopped the registry at http://127.0.0.1:{port} (pid {pid})\n"
    assert wait_gone(pid)
    assert not processes_of(str(root))
    assert not (tmp_home / "registry.json").exists()
    r = layerlab("registry", "status", home=tmp_home)
    assert r.returncode == 1 and r.stdout == b"no registry running\n"
    assert layerlab("registry", "stop", home=tmp_home).stdout == b"no registry running\n"


def test_serve_answers_v2_and_stops_on_sigterm(tmp_home, tmp_path):
    port = free_loopback_port()
    env = dict(os.environ, LAYERLAB_HOME=str(tmp_home), PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen([sys.executable, "-m", "engine.cli", "registry", "serve", "--port", str(port),
                                "--root", str(tmp_path / "root")], env=env, stderr=subprocess.PIPE)
    try:
        status = 0
        for _ in range(400):
            try:
                status = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=5).status_code
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read()
                time.sleep(0.05)
        assert status == 200
    finally:
        process.terminate()
        code = process.wait(30)
        log = process.stderr.read().decode()
    assert code == 0
    assert f"listening on http://127.0.0.1:{port}" in log and '"GET /v2/" 200' in log


def test_serve_on_a_busy_port_fails_clearly(tmp_home, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = layerlab("registry", "serve", "--port", str(port), "--root", str(tmp_path / "r"), home=tmp_home)
        assert r.returncode == 1
        assert r.stderr.decode().strip() == f"Error: listen tcp 127.0.0.1:{port}: Address already in use"
        r = layerlab("registry", "start", "--port", str(port), "--root", str(tmp_path / "r"), home=tmp_home)
        assert r.returncode == 1 and "the registry did not start" in r.stderr.decode()
        assert "Address already in use" in r.stderr.decode()
    assert not (tmp_home / "registry.json").exists()


def test_engine_api_status_value(tmp_home, tmp_path):
    eng = Engine()
    try:
        assert eng.registry_status().running is False
        port = free_loopback_port()
        st = eng.registry_start(port=port, root=str(tmp_path / "api-root"))
        assert (st.running, st.url, st.port, st.hub, st.root) == (
            True, f"http://127.0.0.1:{port}", port, False, str(tmp_path / "api-root"))
        with pytest.raises(FrozenInstanceError):
            st.port = 1  # type: ignore[misc]
        stopped = eng.registry_stop()
        assert stopped.running is False and wait_gone(st.pid)
    finally:
        eng.registry_stop()
        eng.close()


def test_registry_needs_a_subcommand(tmp_home):
    r = layerlab("registry", home=tmp_home)
    assert r.returncode == 125 and b"'registry' needs a command" in r.stderr


def test_a_new_hub_is_seeded_with_the_official_images(tmp_home, tmp_path):
    from engine.bootstrap import busybox_available

    if not busybox_available():
        pytest.skip("no busybox to bootstrap from")
    eng = Engine()
    try:
        st = eng.registry_start(port=free_loopback_port(), hub=True, root=str(tmp_path / "hub"))
        assert st.hub is True
        results = requests.get(f"{st.url}/v1/search", params={"q": ""}).json()["results"]
        assert [(r["name"], r["is_official"]) for r in results] == [("busybox", True), ("hello-world", True)]
        assert requests.get(f"{st.url}/v2/").status_code == 401  # the hub wants a token
    finally:
        eng.registry_stop()
        eng.close()
