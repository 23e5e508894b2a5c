"""Root file systems: overlayfs and the copy fallback, whiteouts, multi-layer images, diff."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.runtime import rootfs, sandbox
from engine.runtime.diff import Change, diff
from engine.runtime.layerview import is_whiteout
from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    Containers,
    busybox_layer,
    containers,
)

pytestmark = pytest.mark.integration

MODES = ("overlay", "copy")

SCRIPT = ("echo new > /new.txt; rm /bin/wc; echo more >> /etc/passwd; mkdir -p /var/lib/app;"
          " chmod 700 /tmp; ln -s /new.txt /bin/link; rm -rf /root; mkdir /root; echo h > /root/.profile")
EXPECTED = [
    Change("C", "/bin"), Change("A", "/bin/link"), Change("D", "/bin/wc"),
    Change("C", "/etc"), Change("C", "/etc/passwd"),
    Change("A", "/new.txt"),
    Change("C", "/root"), Change("A", "/root/.profile"),
    Change("C", "/tmp"),
    Change("A", "/var"), Change("A", "/var/lib"), Change("A", "/var/lib/app"),
]


def _overlay_ok(containers: Containers) -> None:
    if not sandbox.overlay_supported(str(containers.base)):
        pytest.skip("overlayfs is not available in a user namespace here")


@pytest.mark.parametrize("mode", MODES)
def test_writes_land_in_upperdir_and_lowerdir_is_untouched(containers: Containers, busybox_layer: Path,
                                                           mode: str) -> None:
    if mode == "overlay":
        _overlay_ok(containers)
    before = sorted(str(p.relative_to(busybox_layer)) for p in busybox_layer.rglob("*"))
    passwd = (busybox_layer / "etc" / "passwd").read_text()
    spec = containers.spec("sh", "-c", SCRIPT, rootfs_mode=mode)
    result = containers.run(spec)
    assert result.code == 0, result.err
    upper = Path(spec.upperdir)
    assert (upper / "new.txt").read_text() == "new\n"
    assert (upper / "etc" / "passwd").read_text() == passwd + "more\n"
    assert sorted(str(p.relative_to(busybox_layer)) for p in busybox_layer.rglob("*")) == before
    assert (busybox_layer / "etc" / "passwd").read_text() == passwd
    if mode == "overlay":
        wc = upper / "bin" / "wc"
        assert is_whiteout(str(wc), os.lstat(wc))  # deletion of a lower file is a whiteout
        assert not (upper / "bin" / "busybox").exists()
    else:
        assert not os.path.lexists(upper / "bin" / "wc")
        assert os.path.exists(rootfs.manifest_path(spec.upperdir))


@pytest.mark.parametrize("mode", MODES)
def test_diff(containers: Containers, mode: str) -> None:
    if mode == "overlay":
        _overlay_ok(containers)
    spec = containers.spec("sh", "-c", SCRIPT, rootfs_mode=mode)
    assert containers.run(spec).code == 0
    assert diff(spec) == EXPECTED
    assert diff(spec, mode) == EXPECTED
    assert [str(c) for c in diff((spec.lowerdirs, spec.upperdir))][:2] == ["C /bin", "A /bin/link"]


@pytest.mark.parametrize("mode", MODES)
def test_a_fresh_container_has_an_empty_diff(containers: Containers, mode: str) -> None:
    if mode == "overlay":
        _overlay_ok(containers)
    spec = containers.spec("cat", "/etc/hosts", rootfs_mode=mode)
    assert containers.run(spec).code == 0
    assert diff(spec) == []


@pytest.mark.parametrize("mode", MODES)
def test_restart_keeps_the_writable_layer(containers: Containers, mode: str) -> None:
    if mode == "overlay":
        _overlay_ok(containers)
    spec = containers.spec("sh", "-c", "echo $((`cat /n 2>/dev/null || echo 0` + 1)) > /n; cat /n",
                           rootfs_mode=mode)
    assert containers.run(spec).out == "1\n"
    assert containers.run(spec).out == "2\n"
    assert diff(spec) == [Change("A", "/n")]


def _two_layer_image(tmp_path: Path, base: Path) -> tuple[str, str]:
    """A top layer that deletes /bin/grep (whiteout), replaces /etc (opaque) and adds /opt/x."""
    top = tmp_path / "top-layer"
    (top / "bin").mkdir(parents=True)
    (top / "etc").mkdir()
    (top / "opt").mkdir()
    (top / "opt" / "x").write_text("x\n")
    (top / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    os.setxattr(top / "etc", "user.overlay.opaque", b"y")
    if os.geteuid() == 0:
        os.mknod(top / "bin" / "grep", 0o020000 | 0o600, os.makedev(0, 0))
    else:  # kernel >= 6.7 "xwhiteout": an empty file with user.overlay.whiteout, parent marked "x"
        (top / "bin" / "grep").write_text("")
        os.setxattr(top / "bin" / "grep", "user.overlay.whiteout", b"")
        os.setxattr(top / "bin", "user.overlay.opaque", b"x")
    return str(top), str(base)


@pytest.mark.parametrize("mode", MODES)
def test_multi_layer_image(containers: Containers, tmp_path: Path, busybox_layer: Path, mode: str) -> None:
    if mode == "overlay":
        _overlay_ok(containers)
    lowers = _two_layer_image(tmp_path, busybox_layer)
    spec = containers.spec("sh", "-c", "ls /etc; test -e /bin/grep || echo no-grep; cat /opt/x; rm /opt/x;"
                           " rm /etc/passwd", rootfs_mode=mode, lowerdirs=lowers)
    result = containers.run(spec)
    assert result.code == 0, result.err
    # /etc of the base layer is hidden except for what the top layer and the init layer provide
    assert result.out.split() == ["hostname", "hosts", "mtab", "passwd", "resolv.conf", "no-grep", "x"]
    assert diff(spec) == [Change("C", "/etc"), Change("D", "/etc/passwd"),
                          Change("C", "/opt"), Change("D", "/opt/x")]


@pytest.mark.parametrize("mode", MODES)
def test_scratch_image(containers: Containers, busybox_layer: Path, tmp_path: Path, mode: str) -> None:
    """No lowerdirs at all: the command comes from a bind mount."""
    if mode == "overlay":
        _overlay_ok(containers)
    spec = containers.spec("/bb/busybox", "sh", "-c", "/bb/busybox ls /", lowerdirs=(), rootfs_mode=mode,
                           mounts=(sandbox.Mount(str(busybox_layer / "bin"), "/bb", readonly=True),))
    result = containers.run(spec)
    assert result.code == 0, result.err
    assert result.out.split() == ["bb", "dev", "etc", "proc", "sys"]
    assert diff(spec) == [Change("A", "/bb")]


def test_overlay_leftovers_can_be_removed(containers: Containers) -> None:
    _overlay_ok(containers)
    spec = containers.spec("sh", "-c", "rm /bin/ls; echo x > /y", rootfs_mode="overlay")
    assert containers.run(spec).code == 0
    rootfs.remove(spec.upperdir, spec.workdir)
    for path in (spec.upperdir, spec.workdir, rootfs.init_dir(spec.upperdir)):
        assert not os.path.exists(path)


def test_auto_mode_keeps_a_containers_mode(containers: Containers) -> None:
    spec = containers.spec("true", rootfs_mode="copy")
    assert containers.run(spec).code == 0
    box = sandbox.start(containers.with_mode(spec, "auto"))
    assert box.rootfs_mode == "copy"
    assert box.wait() == 0
    box.close()


@pytest.mark.parametrize("mode", MODES)
def test_diff_of_a_directory_deleted_and_recreated(containers: Containers, tmp_path: Path,
                                                   busybox_layer: Path, mode: str) -> None:
    if mode == "overlay":
        _overlay_ok(containers)
    app = tmp_path / "app-layer"
    for rel in ("srv/sub/x", "srv/keep", "srv/old"):
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(rel)
    spec = containers.spec("sh", "-c", "rm -rf /srv; mkdir -p /srv/sub; echo k > /srv/keep; echo n > /srv/new",
                           lowerdirs=(str(app), str(busybox_layer)), rootfs_mode=mode)
    assert containers.run(spec).code == 0
    assert diff(spec) == [Change("C", "/srv"), Change("C", "/srv/keep"), Change("A", "/srv/new"),
                          Change("D", "/srv/old"), Change("C", "/srv/sub"), Change("D", "/srv/sub/x")]
