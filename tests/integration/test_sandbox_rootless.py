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
