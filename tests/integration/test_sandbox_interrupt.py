"""Foreground runs: live output, Ctrl-C kills the whole container at once, and nothing is left behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runtime import control, sandbox
from engine.runtime.foreground import run_foreground
from engine.runtime.leftovers import leftovers
from engine.runtime.ports import PortBinding
from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    Containers,
    busybox_layer,
    containers,
    pidns_members,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

#: a foreground run that reports its container and, once interrupted, stays alive (like a kernel)
_FOREGROUND = """
import json, subprocess, sys, os, time
sys.path.insert(0, {root!r})
from engine.runtime import sandbox
from engine.runtime.foreground import run_foreground
spec = sandbox.SandboxSpec(**json.loads(sys.argv[1]))
box = sandbox.start(spec, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
print(json.dumps({{"pid": box.pid, "ns": os.readlink(f"/proc/{{box.pid}}/ns/pid")}}), flush=True)
try:
    run_foreground(box, on_stdout=lambda data: None)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
time.sleep(60)
"""


def test_sigint_kills_the_whole_container_within_a_second(containers: Containers,
                                                          record_property: pytest.RecordProperty) -> None:
    spec = containers.spec("sh", "-c", "sleep 100 & sleep 100 & sh -c 'sleep 100; echo' & wait")
    values = {k: getattr(spec, k) for k in ("lowerdirs", "upperdir", "workdir", "argv", "env")}
    runner = subprocess.Popen([sys.executable, "-c", _FOREGROUND.format(root=str(ROOT)), json.dumps(values)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert runner.stdout is not None
        info = json.loads(runner.stdout.readline())
        assert wait_for(lambda: len(pidns_members(info["ns"])) == 5)  # sh, 3 sleeps, inner sh
        members = pidns_members(info["ns"])
        assert all(m != runner.pid for m in members)
        runner.send_signal(signal.SIGINT)
        sent = time.monotonic()
        assert wait_for(lambda: pidns_members(info["ns"]) == [], timeout=1.0, interval=0.005)
        elapsed = time.monotonic() - sent
        assert elapsed < 1.0
        record_property("sigint_to_all_gone_ms", round(elapsed * 1000, 1))
        assert runner.stdout.readline().startswith("interrupted")
        assert runner.poll() is None  # the caller lives on: the helper killed the container, not its exit
        for pid in members:
            assert not os.path.exists(f"/proc/{pid}") or control.process_start_time(pid) is None or \
                os.readlink(f"/proc/{pid}/ns/pid") != info["ns"]
    finally:
        runner.kill()
        runner.wait()


def test_run_foreground_streams_output_live(containers: Containers) -> None:
    box = sandbox.start(containers.spec("sh", "-c", "echo first; sleep 0.5; echo second >&2; exit 3"),
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[tuple[str, bytes, float]] = []
    began = time.monotonic()
    code = run_foreground(box, on_stdout=lambda d: seen.append(("out", d, time.monotonic() - began)),
                          on_stderr=lambda d: seen.append(("err", d, time.monotonic() - began)))
    box.close()
    assert code == 3
    assert [(kind, data) for kind, data, _ in seen] == [("out", b"first\n"), ("err", b"second\n")]
    assert seen[0][2] < 0.4 <= seen[1][2]  # the first line arrived before the container slept


def test_run_foreground_feeds_input_and_tty(containers: Containers) -> None:
    box = sandbox.start(containers.spec("wc", "-l"), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out: list[bytes] = []
    assert run_foreground(box, on_stdout=out.append, input=b"a\nb\n") == 0
    box.close()
    assert b"".join(out).strip() == b"2"
    box = sandbox.start(containers.spec("sh", "-c", "read x; echo got $x", tty=True))
    out = []
    assert run_foreground(box, on_stdout=out.append, input=b"hi\n") == 0
    box.close()
    assert b"got hi" in b"".join(out)


def test_run_foreground_timeout_kills(containers: Containers) -> None:
    box = sandbox.start(containers.spec("sleep", "100"), stdout=subprocess.PIPE)
    with pytest.raises(TimeoutError):
        run_foreground(box, timeout=0.2)
    assert box.returncode == 137
    box.close()


def test_nothing_is_left_after_a_container_ends(containers: Containers, tmp_path: Path) -> None:
    base = tmp_path / "states"
    state = base / "c1"
    box = sandbox.start(containers.spec("sh", "-c", "sleep 100 & exec httpd -f -p 80",
                                        ports=(PortBinding("127.0.0.1", 0, 80),)),
                        detach=True, state_dir=str(state), log_path=str(tmp_path / "log"),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    box.close()
    assert leftovers({str(state)}, str(base)) == []   # running and known: fine
    unknown = leftovers(set(), str(base))             # running but no record: everything reported
    assert {item.kind for item in unknown} == {"process", "shim"}
    assert any(f"127.0.0.1:{box.ports[0].host_port}->80/tcp" in item.detail for item in unknown)
    assert all(item.state_dir == str(state) for item in unknown)
    assert control.stop_container(str(state), timeout=0.1) == 137
    assert leftovers({str(state)}, str(base)) == []
    assert leftovers(set(), str(base)) == []


def test_a_shim_whose_state_directory_was_deleted_is_reported(containers: Containers, tmp_path: Path) -> None:
    state = tmp_path / "gone" / "c1"
    box = sandbox.start(containers.spec("sleep", "100"), detach=True, state_dir=str(state),
                        stdout=subprocess.DEVNULL)
    shim = control.read_state(str(state)).shim_pid
    for name in os.listdir(state):
        os.unlink(state / name)
    state.rmdir()
    try:
        found = leftovers(set(), str(tmp_path / "gone"))
        assert [(item.kind, item.pid, item.state_dir) for item in found] == [("shim", shim, str(state))]
        assert "deleted" in str(found[0])
    finally:
        box.kill()
        box.wait(10)
        box.close()
