"""exec: another process in a running container's namespaces, with the main process's rules."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import ContainerError
from engine.runtime import control, sandbox
from engine.runtime.nsexec import exec_in
from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    PATH_ENV,
    Containers,
    busybox_layer,
    containers,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def running(containers: Containers, tmp_path: Path) -> Iterator[str]:
    """A container (hostname box7) that wrote /data in its writable layer and sleeps; its state dir."""
    state = tmp_path / "state"
    box = sandbox.start(containers.spec("sh", "-c", "echo written-by-main > /data; exec sleep 1000",
                                        hostname="box7"),
                        state_dir=str(state), stdout=subprocess.DEVNULL)
    assert wait_for(lambda: os.path.exists(os.path.join(box.spec.upperdir, "data")))  # type: ignore[attr-defined]
    with box:
        yield str(state)


def run_exec(state: str, *argv: str, **kwargs: object) -> tuple[int, str, str]:
    kwargs.setdefault("env", (PATH_ENV,))
    proc = exec_in(state, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   **kwargs)  # type: ignore[arg-type]
    with proc:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_exec_sees_the_container(running: str) -> None:
    code, out, err = run_exec(running, "sh", "-c", "hostname; cat /data; echo $$; ps -o pid,comm; "
                                                    "for f in self/ns/net 1/ns/net self/ns/mnt 1/ns/mnt; do readlink /proc/$f; done")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:2] == ["box7", "written-by-main"]
    assert 1 < int(lines[2]) < 100                         # a small pid: inside the pid namespace
    table = [row.split() for row in lines[4:-4]]
    assert ["1", "sleep"] in table                          # ps sees the container's pid 1
    net_self, net_1, mnt_self, mnt_1 = lines[-4:]
    assert net_self == net_1 and mnt_self == mnt_1
    assert net_self != os.readlink("/proc/self/ns/net")


def test_exec_has_the_main_process_capabilities_and_ids(running: str) -> None:
    code, out, _ = run_exec(running, "sh", "-c", "grep CapBnd /proc/self/status /proc/1/status | cut -f2; id -u",
                            uid=0)
    mine, pid1, uid = out.split()
    assert code == 0 and mine == pid1 == "00000000a80425fb" and uid == "0"  # Docker's default set
    if os.geteuid() == 0:  # rootless, only the container's own user is mapped
        assert run_exec(running, "id", "-u", uid=65534, gid=65534)[1] == "65534\n"


def test_exec_cwd_env_and_exit_code(running: str) -> None:
    assert run_exec(running, "sh", "-c", "pwd; echo $HOME $FOO; exit 5", cwd="/tmp", env=(PATH_ENV, "FOO=bar")) == \
        (5, "/tmp\n/root bar\n", "")


def test_exec_stdin(running: str) -> None:
    proc = exec_in(running, ["wc", "-c"], env=(PATH_ENV,), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with proc:
        out, _ = proc.communicate(b"12345", timeout=30)
    assert (proc.returncode, out.strip()) == (0, b"5")


@pytest.mark.parametrize(("argv", "code", "message"), [
    (("nosuch",), 127, 'exec: "nosuch": executable file not found in $PATH'),
    (("/etc/passwd",), 126, 'exec: "/etc/passwd": permission denied'),
    (("/nosuch",), 127, 'exec: "/nosuch": stat /nosuch: no such file or directory'),
])
def test_exec_failures_are_docker_exit_codes(running: str, argv: tuple[str, ...], code: int, message: str) -> None:
    with pytest.raises(ContainerError) as info:
        run_exec(running, *argv)
    assert (info.value.exit_code, str(info.value)) == (code, message)


def test_exec_into_a_missing_directory_fails(running: str) -> None:
    with pytest.raises(ContainerError, match="chdir to cwd"):
        run_exec(running, "true", cwd="/no/such/dir")


def test_exec_into_a_stopped_container(running: str) -> None:
    assert control.stop_container(running, timeout=0.1) == 137
    with pytest.raises(ContainerError) as info:
        run_exec(running, "true", container_id="0123456789ab")
    assert (str(info.value), info.value.exit_code) == ("Container 0123456789ab is not running", 1)


def test_exec_with_a_tty(running: str) -> None:
    proc = exec_in(running, ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo tty-ok"], env=(PATH_ENV,), tty=True)
    assert proc.tty_fd is not None
    output = b""
    while True:
        try:
            chunk = os.read(proc.tty_fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert proc.wait(10) == 0
    proc.close()
    assert output.replace(b"\r\n", b"\n") == b"tty-ok\n"


def test_exec_dies_with_the_container(running: str) -> None:
    proc = exec_in(running, ["sleep", "1000"], env=(PATH_ENV,))
    with proc:
        control.signal_container(running, "KILL")
        assert proc.wait(10) == 137
    assert control.wait_container(running, 10) == 137


def test_kill_an_exec_and_the_container_lives_on(running: str) -> None:
    proc = exec_in(running, ["sleep", "1000"], env=(PATH_ENV,))
    with proc:
        proc.kill()
        assert proc.wait(10) == 137
    assert control.is_running(running)


def test_exec_into_a_host_network_container(containers: Containers, tmp_path: Path) -> None:
    state = tmp_path / "state"
    box = sandbox.start(containers.spec("sleep", "1000", network="host"), state_dir=str(state))
    with box:
        code, out, _ = run_exec(str(state), "readlink", "/proc/self/ns/net")
        assert (code, out.strip()) == (0, os.readlink("/proc/self/ns/net"))


def test_exec_without_a_container(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="^Container abc is not running$"):
        exec_in(str(tmp_path), ["true"], container_id="abc")
