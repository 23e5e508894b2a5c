"""The sandbox as an ordinary user (uid 65534 here), the way students run it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime import rootfs
from tests.integration.test_sandbox_support import make_busybox_rootfs, require_sandbox

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

SCRIPT = """
import json, os, subprocess, sys
sys.path.insert(0, {root!r})
from engine.runtime import rootfs, sandbox
from engine.runtime.diff import diff
base, mode = sys.argv[1], sys.argv[2]
spec = sandbox.SandboxSpec(lowerdirs=(base + "/rootfs",), upperdir=base + "/" + mode + "/upper",
                           workdir=base + "/" + mode + "/work", argv=("sh", "-c", sys.argv[3]),
                           env=("PATH=/bin",), hostname="student", rootfs_mode=mode)
box = sandbox.start(spec, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out, err = box.communicate(timeout=60)
changes = [str(c) for c in diff(spec)]
rootfs.remove(spec.upperdir, spec.workdir)  # overlay's work/work (mode 000) included
left = [p for p in (spec.upperdir, spec.workdir, rootfs.init_dir(spec.upperdir)) if os.path.exists(p)]
print(json.dumps({{"code": box.returncode, "out": out.decode(), "err": err.decode(),
                  "diff": changes, "mode": box.rootfs_mode, "left": left}}))
"""


def _python_for_nobody() -> str | None:
    """An interpreter (>= 3.11) uid 65534 can execute; the venv's may live under /root."""
    check = ("import subprocess, sys; subprocess.run([sys.executable, '-S', '-c', ''], check=True);"
             " print(sys.version_info >= (3, 11))")  # it must also be able to start itself (the shim)
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3.11"), shutil.which("python3")):
        if not candidate:
            continue
        try:
            probe = subprocess.run([*SETPRIV, candidate, "-c", check],
                                   capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


@pytest.fixture(scope="module")
def nobody_env() -> Iterator[tuple[str, Path]]:
    require_sandbox()
    if os.geteuid() != 0:
        pytest.skip("switching to uid 65534 needs root (the whole suite already runs unprivileged)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python >= 3.11 is executable by uid 65534")
    check = subprocess.run([*SETPRIV, python, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                            "import engine.runtime.sandbox"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        pytest.skip(f"uid 65534 cannot import the project from {ROOT}: {check.stderr.strip()[-200:]}")
    base = Path(tempfile.mkdtemp(prefix="layerlab-rootless-"))
    os.chmod(base, 0o755)
    make_busybox_rootfs(base / "rootfs", owner=(NOBODY, NOBODY))
    os.chown(base, NOBODY, NOBODY)
    yield python, base
    rootfs.remove_tree(str(base))


def _run_as_nobody(nobody_env: tuple[str, Path], mode: str, script: str) -> dict[str, object]:
    python, base = nobody_env
    proc = subprocess.run([*SETPRIV, python, "-c", SCRIPT.format(root=str(ROOT)), str(base), mode, script],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_echo_as_an_unprivileged_user(nobody_env: tuple[str, Path], mode: str) -> None:
    result = _run_as_nobody(nobody_env, mode,
                            "echo hi; id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox; echo x > /f")
    assert result["code"] == 0, result["err"]
    out = str(result["out"]).splitlines()
    assert out[0] == "hi"
    assert out[1] == "0"                                  # root inside ...
    assert out[2].split() == ["0", str(NOBODY), "1"]      # ... is the invoking user outside, nothing more
    assert out[3] == "0"                                  # the user's files appear owned by root
    assert result["diff"] == ["A /f"]
    assert result["mode"] == mode
    assert result["left"] == []


LIFECYCLE = """
import json, os, socket, subprocess, sys, time
sys.path.insert(0, {root!r})
from engine.runtime import control, sandbox
from engine.runtime.logs import read_logs
from engine.runtime.nsexec import exec_in
from engine.runtime.ports import PortBinding
base, mode = sys.argv[1], sys.argv[2]
c = base + "/life-" + mode
spec = sandbox.SandboxSpec(lowerdirs=(base + "/rootfs",), upperdir=c + "/upper", workdir=c + "/work",
                           argv=("sh", "-c", "echo up; mkdir -p /www; echo page > /www/index.html; "
                                 "exec httpd -f -p 80 -h /www"),
                           env=("PATH=/bin",), hostname="student", rootfs_mode=mode,
                           ports=(PortBinding("127.0.0.1", 0, 80),))
box = sandbox.start(spec, detach=True, state_dir=c + "/state", log_path=c + "/log",
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
port = box.ports[0].host_port
body = b""
for _ in range(200):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            while chunk := conn.recv(4096):
                body += chunk
        if body:
            break
    except OSError:
        pass
    time.sleep(0.05)
proc = exec_in(c + "/state", ["sh", "-c", "id -u; hostname; cat /proc/self/uid_map"], env=("PATH=/bin",),
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out, err = proc.communicate(timeout=30)
code = control.stop_container(c + "/state", timeout=0.2)
free = True
try:
    again = socket.socket()
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the GET left a TIME_WAIT
    again.bind(("127.0.0.1", port))
except OSError:
    free = False
print(json.dumps({{"body": body.decode().split("\\r\\n\\r\\n")[-1], "exec": [proc.returncode, out.decode(), err.decode()],
                  "code": code, "running": control.is_running(c + "/state"), "free": free,
                  "log": [line.text for line in read_logs(c + "/log")]}}))
"""


@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_ports_logs_exec_and_stop_as_an_unprivileged_user(nobody_env: tuple[str, Path], mode: str) -> None:
    python, base = nobody_env
    for applet in ("httpd", "mkdir"):
        link = base / "rootfs" / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    proc = subprocess.run([*SETPRIV, python, "-c", LIFECYCLE.format(root=str(ROOT)), str(base), mode],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["body"] == "page\n"
    code, out, err = result["exec"]
    assert code == 0, err
    assert out.splitlines()[:2] == ["0", "student"]
    assert out.splitlines()[2].split() == ["0", str(NOBODY), "1"]
    assert result["code"] == 137 and result["running"] is False and result["free"] is True
    assert result["log"] == ["up\n"]
