"""Escape attempts from inside a container, each checked on the host side."""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from engine.errors import ContainerError
from engine.runtime import sandbox
from engine.runtime.sandbox import Mount
from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    Containers,
    busybox_layer,
    containers,
)

pytestmark = pytest.mark.integration


def _mountinfo() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return set(f.read().splitlines())


def _suspicious(added: set[str], base: Path) -> list[str]:
    """New host mounts that could come from a container (other tests may mount things meanwhile)."""
    out = []
    for line in added:
        fields, _, fs = line.partition(" - ")
        mountpoint, fstype = fields.split()[4], fs.split()[0]
        if (fstype in ("overlay", "proc", "sysfs", "devpts", "mqueue") or str(base) in line
                or mountpoint in ("/", "/mnt", "/tmp", "/proc", "/dev", "/sys")):
            out.append(line)
    return out


@pytest.fixture
def marker() -> str:
    return f"escape-{uuid.uuid4().hex[:12]}"


def test_proc_self_root_dotdot_stays_inside(containers: Containers, marker: str) -> None:
    spec = containers.spec("sh", "-c", f"echo pwn > /proc/self/root/../../{marker}; cat /{marker}")
    result = containers.run(spec)
    assert result.out == "pwn\n"
    assert not os.path.exists(f"/{marker}")
    assert (Path(spec.upperdir) / marker).read_text() == "pwn\n"


def test_symlink_to_root_stays_inside(containers: Containers, marker: str) -> None:
    spec = containers.spec("sh", "-c", f"ln -s / /hostroot; echo pwn > /hostroot/tmp/{marker}")
    assert containers.run(spec).code == 0
    assert not os.path.exists(f"/tmp/{marker}")
    assert (Path(spec.upperdir) / "tmp" / marker).read_text() == "pwn\n"


def test_mount_inside_is_refused_and_invisible(containers: Containers) -> None:
    before = _mountinfo()
    result = containers.sh("mkdir /mnt; mount -t tmpfs none /mnt && echo mounted; umount /proc && echo umounted")
    assert "mounted" not in result.out  # no CAP_SYS_ADMIN in the container, as in Docker
    assert _suspicious(_mountinfo() - before, containers.base) == []


def test_container_mounts_are_not_visible_on_the_host(containers: Containers) -> None:
    before = _mountinfo()
    box = sandbox.start(containers.spec("sleep", "30"))
    with box:
        assert _suspicious(_mountinfo() - before, containers.base) == []
        box.kill()
        box.wait(10)
    assert _suspicious(_mountinfo() - before, containers.base) == []


def test_hostname_change_is_refused_and_host_unchanged(containers: Containers) -> None:
    before = socket.gethostname()
    result = containers.sh("hostname evil; hostname")
    assert result.out != "evil\n"
    assert socket.gethostname() == before


def test_proc_sys_and_sysrq_are_read_only(containers: Containers) -> None:
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read()
    result = containers.sh("echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern; echo b > /proc/sysrq-trigger;"
                           " echo done")
    assert result.out == "done\n"
    assert "Read-only file system" in result.err
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core_pattern


def test_readonly_bind_mount_refuses_writes(containers: Containers, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data").write_text("host\n")
    result = containers.run(containers.spec(
        "sh", "-c", "cat /ro/data; echo pwn > /ro/data; touch /ro/new; echo ok > /rw/new",
        mounts=(Mount(str(shared), "/ro", readonly=True), Mount(str(shared), "/rw"))))
    assert result.out == "host\n"
    assert result.err.count("Read-only file system") == 2
    assert (shared / "data").read_text() == "host\n"
    assert sorted(p.name for p in shared.iterdir()) == ["data", "new"]
    assert (shared / "new").read_text() == "ok\n"


def test_file_bind_mount(containers: Containers, tmp_path: Path) -> None:
    config = tmp_path / "app.conf"
    config.write_text("setting=1\n")
    result = containers.run(containers.spec("cat", "/etc/app/app.conf",
                                            mounts=(Mount(str(config), "/etc/app/app.conf", readonly=True),)))
    assert result.out == "setting=1\n"


def test_mount_target_symlink_pointing_outside_is_refused(containers: Containers, busybox_layer: Path,
                                                          tmp_path: Path) -> None:
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    image = tmp_path / "image"
    image.mkdir()
    (image / "escape").symlink_to(host_dir)  # absolute host path, absent inside the container
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "secret").write_text("s\n")
    spec = containers.spec("true", lowerdirs=(str(image), str(busybox_layer)),
                           mounts=(Mount(str(shared), "/escape"),))
    with pytest.raises(ContainerError, match="symlink"):
        containers.run(spec)
    assert list(host_dir.iterdir()) == []


def test_mount_target_symlink_is_resolved_inside_the_root(containers: Containers, busybox_layer: Path,
                                                          tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.mkdir()
    (image / "data").symlink_to("../../../../../../tmp")  # ".." is clamped at the container's root
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "secret").write_text("s\n")
    spec = containers.spec("cat", "/tmp/secret", lowerdirs=(str(image), str(busybox_layer)),
                           mounts=(Mount(str(shared), "/data"),))
    assert containers.run(spec).out == "s\n"
    assert not os.path.exists("/tmp/secret") or Path("/tmp/secret").read_text() != "s\n"


def test_no_host_processes_are_visible(containers: Containers) -> None:
    result = containers.sh("ls /proc | grep -c '^[0-9]'")
    assert int(result.out) <= 3
