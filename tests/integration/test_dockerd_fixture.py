"""The private dockerd fixture: it answers, runs busybox, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.dockerd import Dockerd, DockerdUnavailable, mounts_under, processes_of

pytestmark = pytest.mark.integration


def test_docker_version_answers(dockerd: Dockerd) -> None:
    result = dockerd.run("version", "--format", "{{.Server.Version}}")
    assert result.stdout.strip().startswith("20.10")
    assert dockerd.host.startswith("unix:///tmp/ll-dk-")
    assert len(str(dockerd.socket)) < 108


def test_busybox_runs(dockerd: Dockerd) -> None:
    assert dockerd.load_busybox() == "busybox:latest"
    result = dockerd.run("run", "--rm", "--network", "none", "busybox", "echo", "hi")
    assert result.stdout == "hi\n"
    config = dockerd.run("image", "inspect", "--format", "{{json .Config.Cmd}}", "busybox:latest")
    assert config.stdout.strip() == '["sh"]'


def test_docker_errors_carry_stderr(dockerd: Dockerd) -> None:
    failed = dockerd.run("image", "inspect", "no-such-image:here", check=False)
    assert failed.returncode != 0
    with pytest.raises(Exception, match="no-such-image"):
        dockerd.run("image", "inspect", "no-such-image:here")


def test_a_dockerd_that_cannot_start_says_why(dockerd: Dockerd) -> None:
    broken = Dockerd(daemon_config={"no-such-directive": True})
    with pytest.raises(DockerdUnavailable, match="(?s)exited with status.*end of dockerd log.*no-such-directive"):
        with broken:
            pass
    assert not broken.base.exists()


def test_stop_leaves_no_process_mount_or_directory() -> None:
    daemon = Dockerd()
    try:
        daemon.start()
    except DockerdUnavailable as reason:
        daemon.stop()
        pytest.skip(str(reason))
    try:
        daemon.load_busybox()
        container = daemon.run(
            "run", "-d", "--network", "none", "busybox", "httpd", "-f", "-p", "8080"
        ).stdout.strip()
        container_pid = int(daemon.run("inspect", "--format", "{{.State.Pid}}", container).stdout)
        family = processes_of(f"{daemon.base}/")
        commands = {Path(f"/proc/{pid}/comm").read_text().strip() for pid, _ in family}
        assert {"dockerd", "containerd", "httpd"} <= commands, commands
        assert container_pid in {pid for pid, _ in family}
        assert mounts_under(daemon.base), "a running container should have mounts"
    finally:
        daemon.stop()
    assert processes_of(f"{daemon.base}/") == set()
    assert not Path(f"/proc/{container_pid}").exists() or "httpd" not in Path(
        f"/proc/{container_pid}/cmdline"
    ).read_text()
    assert mounts_under(daemon.base) == []
    assert not daemon.base.exists()


def test_without_root_dockerd_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(DockerdUnavailable, match="needs root"):
        with Dockerd():
            pass
