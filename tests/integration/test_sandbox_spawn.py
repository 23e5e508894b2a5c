"""How shims are started: forked directly by a single-threaded caller's first container, else by the zygote.

Each test runs its containers from a fresh Python process (the ``layerlab`` command is one), which
reports what it saw as JSON; the shim left behind is then inspected from here.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runtime import control
from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    PATH_ENV,
    busybox_layer,
    pidns_members,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

#: the caller: argv[1] = JSON {"layer", "base", "threads", "script"}; prints a JSON report on stdout
_CALLER = """
import json, os, signal, subprocess, sys, threading
sys.path.insert(0, {root!r})
from engine.runtime import sandbox, spawner
args = json.loads(sys.argv[1])
report = {{"pid": os.getpid()}}
stop = threading.Event()
for _ in range(args["threads"]):
    threading.Thread(target=stop.wait, daemon=True).start()


def spec(name, *argv):
    where = os.path.join(args["base"], name)
    return sandbox.SandboxSpec(lowerdirs=(args["layer"],), upperdir=where + "/upper", workdir=where + "/work",
                               argv=argv, env=({path_env!r},), hostname=name)


def run(name, *argv):
    with sandbox.start(spec(name, *argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE) as box:
        out, err = box.communicate(timeout=60)
    return [box.returncode, out.decode(), err.decode()]


exec(args["script"])
report["forked_directly"] = spawner.SPAWNER.forked_directly
zygote = spawner.SPAWNER._process
report["zygote"] = zygote.pid if zygote is not None and zygote.poll() is None else None
stop.set()
print(json.dumps(report), flush=True)
"""


def call(busybox_layer: Path, tmp_path: Path, script: str, threads: int = 0) -> dict:
    """Run ``script`` in a fresh caller process (``threads`` idle threads beside it); its report."""
    args = {"layer": str(busybox_layer), "base": str(tmp_path / "containers"), "threads": threads,
            "script": script}
    # capture_output: a shim that kept the caller's stdout would hold this up until its container ends
    proc = subprocess.run([sys.executable, "-c", _CALLER.format(root=str(ROOT), path_env=PATH_ENV),
                           json.dumps(args)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _stat_fields(pid: int) -> list[str]:
    data = Path(f"/proc/{pid}/stat").read_text()
    return data[data.rindex(")") + 2:].split()


def _open_files(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return found


def test_first_container_of_a_single_threaded_caller_forks_its_shim_directly(busybox_layer: Path,
                                                                             tmp_path: Path) -> None:
    state = tmp_path / "state"
    script = f"""
keep_r, keep_w = os.pipe()
os.set_inheritable(keep_w, True)  # inheritable or not, the shim must not hold the caller's descriptors
report["pipe"] = os.readlink(f"/proc/self/fd/{{keep_w}}")
report["out"] = run("first", "echo", "hi")
box = sandbox.start(spec("detached", "sleep", "60"), detach=True, state_dir={str(state)!r},
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
box.close()
"""
    report = call(busybox_layer, tmp_path, script)
    assert report["out"] == [0, "hi\n", ""]
    assert report["forked_directly"] is True
    assert report["zygote"] is not None  # the second shim (the detached one) came from the zygote
    try:
        st = control.read_state(str(state))
        assert st.running  # it outlived the process that started it
        shim = st.shim_pid
        assert shim is not None
        assert Path(f"/proc/{shim}/comm").read_text().strip() == "layerlab-shim"
        assert int(_stat_fields(shim)[1]) != report["pid"]  # not the caller's child
    finally:
        control.signal_container(str(state), signal.SIGKILL)
        assert control.wait_container(str(state), 10) == 137


def test_detached_shim_forked_directly_outlives_the_caller_with_nothing_of_it(busybox_layer: Path,
                                                                               tmp_path: Path) -> None:
    state = tmp_path / "state"
    script = f"""
signal.signal(signal.SIGTERM, lambda *a: None)  # a caller that shrugs SIGTERM off
keep_r, keep_w = os.pipe()
os.set_inheritable(keep_w, True)
report["pipe"] = os.readlink(f"/proc/self/fd/{{keep_w}}")
os.chdir({str(tmp_path)!r})
box = sandbox.start(spec("detached", "sleep", "60"), detach=True, state_dir={str(state)!r},
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
report["pid1"] = box.pid
box.close()
"""
    report = call(busybox_layer, tmp_path, script)
    assert report["forked_directly"] is True and report["zygote"] is None
    st = control.read_state(str(state))
    try:
        assert st.running and st.pid == report["pid1"]
        shim = st.shim_pid
        assert shim is not None
        fields = _stat_fields(shim)
        assert int(fields[1]) != report["pid"]  # ppid: not the caller
        assert int(fields[3]) == shim  # session: a session of its own, as the zygote's shims
        assert os.readlink(f"/proc/{shim}/cwd") == "/"
        files = _open_files(shim)
        assert report["pipe"] not in files
        assert not any(f.endswith("meta.db") for f in files)
        assert str(state) in files  # what it needs it keeps: the state directory
        # the caller's Python signal handlers are not the shim's: SIGTERM ends it, as it ends the zygote's
        os.kill(shim, signal.SIGTERM)
        assert wait_for(lambda: not control.is_running(str(state)))
        assert wait_for(lambda: pidns_members(st.pidns or "none") == [])  # pid 1 died with its shim
    finally:
        control.signal_container(str(state), signal.SIGKILL)


def test_multi_threaded_caller_always_uses_the_zygote(busybox_layer: Path, tmp_path: Path) -> None:
    report = call(busybox_layer, tmp_path, 'report["out"] = run("one", "echo", "hi")', threads=1)
    assert report["out"] == [0, "hi\n", ""]
    assert report["forked_directly"] is False
    assert report["zygote"] is not None


def test_direct_and_zygote_shims_give_the_same_results(busybox_layer: Path, tmp_path: Path) -> None:
    script = """
report["runs"] = [run(f"c{i}", "sh", "-c", "echo out; echo err >&2; cat /proc/1/comm; ls /proc/self/fd; exit 3")
                  for i in range(3)]
"""
    report = call(busybox_layer, tmp_path, script)
    assert report["forked_directly"] is True and report["zygote"] is not None
    first, *others = report["runs"]
    assert first == [3, "out\nsh\n0\n1\n2\n3\n", "err\n"]
    assert all(run == first for run in others)
