"""Detached containers: json-file logs, and control from processes other than the one that started them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import ContainerError
from engine.runtime import control, sandbox
from engine.runtime.logs import LogLine, read_logs
from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    Containers,
    busybox_layer,
    containers,
    pidns_members,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

#: starts a detached container with a log from a throw-away process, prints its pid, and exits
_STARTER = """
import json, subprocess, sys
sys.path.insert(0, {root!r})
from engine.runtime import sandbox
spec = sandbox.SandboxSpec(**json.loads(sys.argv[1]))
box = sandbox.start(spec, detach=True, state_dir=sys.argv[2], log_path=sys.argv[3],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(box.pid, flush=True)
"""

#: pid 1 that logs on both streams, stops on SIGTERM (logging it) and otherwise runs forever
SERVICE = ("trap 'echo got TERM; exit 0' TERM; echo one; echo two >&2; i=0; "
           "while :; do i=$((i+1)); echo tick $i; sleep 0.05; done")


def start_elsewhere(containers: Containers, tmp_path: Path, script: str, **fields: object) -> tuple[int, str, str]:
    """Start a detached container from another Python process that exits; (pid, state dir, log)."""
    spec = containers.spec("sh", "-c", script, **fields)
    values = {k: getattr(spec, k) for k in ("lowerdirs", "upperdir", "workdir", "argv", "env", "uid", "gid")}
    state, log = tmp_path / f"state{containers.count}", tmp_path / f"c{containers.count}-json.log"
    proc = subprocess.run([sys.executable, "-c", _STARTER.format(root=str(ROOT)), json.dumps(values),
                           str(state), str(log)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout), str(state), str(log)


def log_texts(path: str) -> list[tuple[str, str]]:
    return [(line.stream, line.text) for line in read_logs(path)]


def test_detached_container_outlives_its_caller_and_is_stopped_from_here(containers: Containers,
                                                                          tmp_path: Path) -> None:
    pid, state, log = start_elsewhere(containers, tmp_path, SERVICE)
    assert control.is_running(state)
    assert wait_for(lambda: ("stdout", "tick 3\n") in log_texts(log))
    lines = log_texts(log)
    assert lines[:1] == [("stdout", "one\n")] and ("stderr", "two\n") in lines
    with open(log) as f:
        record = json.loads(f.readline())
    assert list(record) == ["log", "stream", "time"]
    assert record["time"].endswith("Z") and "T" in record["time"]
    current = control.read_state(state)
    assert (current.pid, current.running, current.exit_code, current.detached) == (pid, True, None, True)
    assert current.log_path == log
    assert control.stop_container(state, timeout=10) == 0
    assert not control.is_running(state)
    assert log_texts(log)[-1] == ("stdout", "got TERM\n")
    assert Path(state, "exit_code").read_text() == "0\n"
    assert pidns_members(current.pidns or "none") == []
    assert control.wait_container(state, 0) == 0


def test_stop_kills_a_pid_1_that_ignores_sigterm(containers: Containers, tmp_path: Path) -> None:
    _, state, _ = start_elsewhere(containers, tmp_path, "exec sleep 1000")
    began = time.monotonic()
    assert control.stop_container(state, timeout=0.5) == 137
    assert 0.5 <= time.monotonic() - began < 5
    assert control.stop_container(state, timeout=0.5) == 137  # already stopped: left alone


def test_wait_and_kill_from_another_process(containers: Containers, tmp_path: Path) -> None:
    _, state, _ = start_elsewhere(containers, tmp_path, "sleep 0.3; exit 3")
    with pytest.raises(TimeoutError):
        control.wait_container(state, 0.01)
    assert control.wait_container(state, 10) == 3
    _, state, _ = start_elsewhere(containers, tmp_path, "sleep 1000")
    handle = control.ContainerHandle.attach(state)
    assert handle.signal("KILL") is True
    assert handle.wait(10) == 137
    assert handle.signal(signal.SIGKILL) is False  # not running: nothing to signal
    assert handle.state().exit_code == 137


def test_follow_reads_until_the_container_ends(containers: Containers, tmp_path: Path) -> None:
    _, state, log = start_elsewhere(containers, tmp_path,
                                    "for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done; printf tail")
    lines = list(read_logs(log, follow=True, stop=lambda: not control.is_running(state)))
    assert [line.text for line in lines] == ["line 1\n", "line 2\n", "line 3\n", "line 4\n", "line 5\n", "tail"]
    assert [line.text for line in read_logs(log, tail=2)] == ["line 5\n", "tail"]
    assert list(read_logs(log, tail=0)) == []


def test_a_shim_killed_with_sigkill_takes_its_container_along(containers: Containers, tmp_path: Path) -> None:
    """Also as a non-root user in the container: setuid clears the parent-death signal, re-armed after."""
    _, state, _ = start_elsewhere(containers, tmp_path, "sleep 1000", uid=65534, gid=65534)
    current = control.read_state(state)
    assert current.running and current.shim_pid
    os.kill(current.shim_pid, signal.SIGKILL)
    assert wait_for(lambda: not control.is_running(state), timeout=2)
    assert wait_for(lambda: pidns_members(current.pidns or "none") == [], timeout=2)
    assert control.wait_container(state, 5) == 137
    after = control.read_state(state)
    assert (after.running, after.exit_code, after.shim_lost) == (False, 137, True)


def test_a_recycled_pid_is_never_signalled(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "1000"])
    try:
        start = control.process_start_time(bystander.pid)
        assert start is not None
        state = tmp_path / "state"
        state.mkdir()
        (state / "state.json").write_text(json.dumps({"pid": bystander.pid, "pid_start": start + 1,
                                                      "shim_pid": bystander.pid, "shim_start": start + 1}))
        assert not control.is_running(str(state))
        assert control.signal_container(str(state), "KILL") is False
        assert control.read_state(str(state)).shim_lost
        time.sleep(0.1)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_no_state_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="no container state"):
        control.ContainerHandle.attach(str(tmp_path))
    assert not control.is_running(str(tmp_path))


def test_foreground_output_is_logged_and_delivered(containers: Containers, tmp_path: Path) -> None:
    long_line = "x" * 40000
    script = f"echo out; echo err >&2; echo {long_line}; printf 'no newline'"
    log = tmp_path / "fg-json.log"
    box = sandbox.start(containers.spec("sh", "-c", script), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        log_path=str(log))
    with box:
        out, err = box.communicate(timeout=30)
    assert box.returncode == 0
    assert out == f"out\n{long_line}\nno newline".encode() and err == b"err\n"
    lines = list(read_logs(str(log)))
    assert [line.text for line in lines if line.stream == "stderr"] == ["err\n"]
    assert all(isinstance(line, LogLine) and line.time.endswith("Z") for line in lines)
    stdout = [line.text for line in lines if line.stream == "stdout"]
    # Docker's copier cuts lines at 16 KiB; only the last part ends with the newline
    assert stdout == ["out\n", "x" * 16384, "x" * 16384, "x" * 7232 + "\n", "no newline"]


def test_foreground_with_log_still_dies_with_its_caller(containers: Containers, tmp_path: Path) -> None:
    box = sandbox.start(containers.spec("sleep", "1000"), stdout=subprocess.DEVNULL, log_path=str(tmp_path / "l"),
                        state_dir=str(tmp_path / "state"))
    ns = os.readlink(f"/proc/{box.pid}/ns/pid")
    box.close()  # no kill: dropping the handle is enough
    assert wait_for(lambda: pidns_members(ns) == [])
    assert control.wait_container(str(tmp_path / "state"), 5) == 137


def test_detached_tty_container_keeps_its_pty_and_logs_it(containers: Containers, tmp_path: Path) -> None:
    """-dit: the shim holds the pty, so the container outlives the caller's handle; output is logged."""
    log = tmp_path / "tty-json.log"
    state = tmp_path / "state"
    box = sandbox.start(containers.spec("sh", "-c", "tty; echo ready; read line; echo got $line", tty=True),
                        detach=True, state_dir=str(state), log_path=str(log))
    assert box.tty_fd is not None
    assert wait_for(lambda: any("ready" in line.text for line in read_logs(str(log))))
    os.write(box.tty_fd, b"hello\n")
    assert box.wait(10) == 0
    output = b""
    while chunk := os.read(box.tty_fd, 4096):
        output += chunk
    box.close()
    assert b"got hello" in output
    texts = "".join(line.text for line in read_logs(str(log)))
    assert texts.replace("\r\n", "\n") == "/dev/console\nready\nhello\ngot hello\n"


def test_detached_tty_survives_the_handle(containers: Containers, tmp_path: Path) -> None:
    state = tmp_path / "state"
    box = sandbox.start(containers.spec("sh", tty=True), detach=True, state_dir=str(state))
    box.close()
    time.sleep(0.2)
    assert control.is_running(str(state))  # sh on a pty whose master the shim holds: no hangup
    assert control.stop_container(str(state), timeout=0.2) == 137
