"""The sandbox runs one container process: output, exit codes, pid 1, hostname, /proc, /dev, tty, kill."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import ContainerError
from engine.runtime import sandbox
from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    Containers,
    busybox_layer,
    containers,
    pidns_members,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_echo_hi(containers: Containers) -> None:
    result = containers.run(containers.spec("echo", "hi"))
    assert (result.code, result.out, result.err) == (0, "hi\n", "")


def test_exit_code_is_passed_through(containers: Containers) -> None:
    assert containers.sh("exit 7").code == 7


def test_stdin_is_connected(containers: Containers) -> None:
    result = containers.run(containers.spec("wc", "-l"), input=b"a\nb\nc\n")
    assert result.out.strip() == "3"


def test_missing_command_is_127_with_docker_message(containers: Containers) -> None:
    with pytest.raises(ContainerError) as info:
        containers.run(containers.spec("nosuch"))
    assert info.value.exit_code == 127
    assert str(info.value) == 'exec: "nosuch": executable file not found in $PATH'


def test_missing_absolute_command_is_127(containers: Containers) -> None:
    with pytest.raises(ContainerError) as info:
        containers.run(containers.spec("/nosuch"))
    assert info.value.exit_code == 127
    assert "stat /nosuch: no such file or directory" in str(info.value)


def test_non_executable_file_is_126(containers: Containers) -> None:
    with pytest.raises(ContainerError) as info:
        containers.run(containers.spec("/etc/passwd"))
    assert info.value.exit_code == 126
    assert str(info.value) == 'exec: "/etc/passwd": permission denied'


def test_command_is_pid_1(containers: Containers) -> None:
    assert containers.sh("echo $$").out == "1\n"


def test_ps_shows_only_the_container(containers: Containers) -> None:
    result = containers.sh("sleep 30 & ps -o pid,comm; kill %1")
    rows = [line.split() for line in result.out.splitlines()[1:]]
    assert {comm for _, comm in rows} <= {"sh", "sleep", "ps", "exe", "busybox"}  # exe: busybox re-exec
    assert len(rows) == 3
    assert all(int(pid) < 10 for pid, _ in rows)


def test_hostname_is_set_and_host_hostname_unchanged(containers: Containers) -> None:
    before = socket.gethostname()
    result = containers.sh("hostname; cat /etc/hostname", hostname="box1")
    assert result.out == "box1\nbox1\n"
    assert socket.gethostname() == before


def test_proc_dev_and_hosts_are_present(containers: Containers) -> None:
    result = containers.sh("cat /proc/1/cmdline | wc -c; ls /dev; cat /etc/hosts; echo x > /dev/null;"
                           " ls /dev/pts; mount | grep -c ' /dev/shm '", hostname="web")
    assert result.code == 0, result.err
    lines = result.out.split("\n")
    assert int(lines[0]) > 0
    for node in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"):
        assert node in lines
    assert "127.0.0.1\tlocalhost" in result.out
    assert "\tweb" in result.out


def test_home_and_cwd(containers: Containers) -> None:
    result = containers.sh("echo $HOME; pwd", cwd="/work/here")
    assert result.out == "/root\n/work/here\n"


def test_user_and_groups(containers: Containers) -> None:
    fields: dict[str, object] = {"uid": 65534, "gid": 65534}
    if os.geteuid() == 0:
        fields["groups"] = (5,)
    result = containers.sh("id -u; id -g; touch /root/x", **fields)
    assert result.out.splitlines() == ["65534", "65534"]
    if os.geteuid() == 0:  # rootless, the single id mapped is the user's own, who owns every file
        assert "Permission denied" in result.err
        assert containers.sh("id -G", uid=65534, gid=65534, groups=(5, 65534)).out.split() == ["65534", "5"]


def test_custom_hosts_and_resolv_conf(containers: Containers) -> None:
    result = containers.sh("cat /etc/hosts /etc/resolv.conf", hosts="10.0.0.1 db\n",
                           resolv_conf="nameserver 127.0.0.1\n")
    assert result.out == "10.0.0.1 db\nnameserver 127.0.0.1\n"


def test_sigkill_is_137_and_everything_is_gone(containers: Containers) -> None:
    box = sandbox.start(containers.spec("sh", "-c", "sleep 1000 & sleep 1000 & wait"))
    with box:
        assert wait_for(lambda: len(pidns_members(os.readlink(f"/proc/{box.pid}/ns/pid"))) == 3)
        ns = os.readlink(f"/proc/{box.pid}/ns/pid")
        box.kill()
        assert box.wait(10) == 137
    assert wait_for(lambda: pidns_members(ns) == [])


def test_sigterm_reaches_a_pid_1_that_handles_it(containers: Containers) -> None:
    box = sandbox.start(containers.spec("sh", "-c", "trap 'exit 143' TERM; sleep 1000 & wait"),
                        stdout=subprocess.PIPE)
    with box:
        time.sleep(0.3)  # let the shell install its trap
        box.kill(signal.SIGTERM)
        assert box.wait(10) == 143


def test_sigterm_is_dropped_by_a_pid_1_without_handler(containers: Containers) -> None:
    """Kernel rule Docker shares: pid 1 only gets the signals it handles (SIGKILL excepted)."""
    box = sandbox.start(containers.spec("sleep", "1000"))
    with box:
        box.kill(signal.SIGTERM)
        with pytest.raises(TimeoutError):
            box.wait(0.5)
        box.kill()
        assert box.wait(10) == 137


def test_tty(containers: Containers) -> None:
    box = sandbox.start(containers.spec("sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo tty-ok; tty", tty=True))
    assert box.tty_fd is not None
    output = b""
    while True:
        try:
            chunk = os.read(box.tty_fd, 4096)
        except OSError:  # EIO once the last slave is closed
            break
        if not chunk:
            break
        output += chunk
    assert box.wait(10) == 0
    box.close()
    assert output.replace(b"\r\n", b"\n") == b"tty-ok\n/dev/console\n"


_CALLER = """
import json, subprocess, sys
sys.path.insert(0, {root!r})
from engine.runtime import sandbox
spec = sandbox.SandboxSpec(**json.loads(sys.argv[1]))
box = sandbox.start(spec, detach={detach}, state_dir=sys.argv[2], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(box.pid, flush=True)
"""


def _caller_exits(containers: Containers, tmp_path: Path, detach: bool, script: str) -> tuple[int, Path]:
    spec = containers.spec("sh", "-c", script)
    fields = {k: getattr(spec, k) for k in ("lowerdirs", "upperdir", "workdir", "argv", "env")}
    state = tmp_path / "state"
    proc = subprocess.run([sys.executable, "-c", _CALLER.format(root=str(ROOT), detach=detach),
                           json.dumps(fields), str(state)], capture_output=True, text=True, timeout=60,
                          check=True)
    return int(proc.stdout), state


def test_container_dies_with_its_caller(containers: Containers, tmp_path: Path) -> None:
    pid, state = _caller_exits(containers, tmp_path, False, "sleep 1000")
    assert wait_for(lambda: (state / "exit_code").exists())
    assert (state / "exit_code").read_text() == "137\n"
    assert not os.path.exists(f"/proc/{pid}/ns") or pid not in pidns_members(os.readlink(f"/proc/{pid}/ns/pid"))


def test_detached_container_outlives_its_caller(containers: Containers, tmp_path: Path) -> None:
    pid, state = _caller_exits(containers, tmp_path, True, "sleep 1; exit 3")
    assert (state / "pid").read_text() == f"{pid}\n"
    assert not (state / "exit_code").exists()  # still running although the caller has exited
    assert wait_for(lambda: (state / "exit_code").exists())
    assert (state / "exit_code").read_text() == "3\n"


def test_detached_wait_in_the_same_process(containers: Containers, tmp_path: Path) -> None:
    box = sandbox.start(containers.spec("sh", "-c", "exit 4"), detach=True, state_dir=str(tmp_path / "st"))
    assert box.wait(10) == 4
    assert (tmp_path / "st" / "exit_code").read_text() == "4\n"
    box.close()


def test_spec_errors_are_reported_before_starting(containers: Containers, tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="bind source path does not exist"):
        sandbox.start(containers.spec("true", mounts=(sandbox.Mount(str(tmp_path / "nope"), "/x"),)))
    with pytest.raises(ContainerError, match="must be absolute"):
        sandbox.start(containers.spec("true", mounts=(sandbox.Mount(str(tmp_path), "x"),)))
    with pytest.raises(ContainerError, match="no command"):
        sandbox.start(containers.spec())


def test_start_wait_latency(containers: Containers, record_property: pytest.RecordProperty) -> None:
    """Measured, not asserted: start()+wait() of ``true`` from a warm process, per rootfs mode."""
    for mode in ("overlay", "copy"):
        containers.run(containers.spec("true", rootfs_mode=mode))  # warm up (probe, imports)
        times = []
        for _ in range(10):
            spec = containers.spec("true", rootfs_mode=mode)
            began = time.perf_counter()
            box = sandbox.start(spec)
            assert box.wait() == 0
            times.append(time.perf_counter() - began)
            box.close()
        times.sort()
        median = times[len(times) // 2] * 1000
        record_property(f"start_wait_{mode}_ms", round(median, 1))
        print(f"start+wait true ({mode}): median {median:.1f} ms, min {times[0] * 1000:.1f} ms")
