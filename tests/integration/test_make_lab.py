"""`make lab` starts JupyterLab on notebooks/ with the base images created (headless, loopback)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_lab_serves_jupyterlab(tmp_path):
    if not (ROOT / ".venv" / "bin" / "jupyter").exists():
        pytest.skip("the project's .venv has no jupyter (run make lab once)")
    port, token = free_port(), "layerlab-test-token"
    env = dict(os.environ, LAYERLAB_HOME=str(tmp_path / "home"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(["make", "-s", "lab", f"LAB_PORT={port}",
                             f"LAB_ARGS=--no-browser --ServerApp.token={token} --LabApp.news_url=None "
                             "--LabApp.collaborative=False --ServerApp.disable_check_xsrf=False"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        status = None
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                    status = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.5)
        assert status is not None, proc.stdout.read().decode() if proc.poll() is not None else "no answer"
        assert "started" in status
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5) as r:
            names = {item["name"] for item in json.loads(r.read())["content"]}
        assert names == {p.name for p in (ROOT / "notebooks").iterdir() if not p.name.startswith(".")}
        # the base images were created before the lab opened
        from engine import Engine
        eng = Engine(tmp_path / "home")
        assert {t for s in eng.images() for t in s.repo_tags} == {"busybox:latest", "hello-world:latest"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
