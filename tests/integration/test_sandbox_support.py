"""Helpers for the sandbox tests (no tests here): a busybox root file system and a runner.

The rootfs is built from Debian's busybox-static (``/bin/busybox``), as the classroom's base image is;
it lives in the tests, not in the engine.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.runtime import rootfs, sandbox
from engine.values import replace
from engine.runtime.sandbox import SandboxSpec

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "echo", "cat", "ls", "true", "false", "env", "id", "hostname", "mount", "ps", "sleep",
           "touch", "mkdir", "rm", "ln", "wc", "grep", "kill", "readlink", "chmod", "umount", "tty",
           "pwd", "stat", "test", "httpd", "nc", "head")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def make_busybox_rootfs(root: Path, *, owner: tuple[int, int] | None = None) -> Path:
    """A minimal image: /bin/busybox + applet symlinks, /etc/passwd, /etc/group, /tmp (1777)."""
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "tmp").mkdir()
    (root / "root").mkdir(mode=0o700)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    os.chmod(root / "tmp", 0o1777)
    if owner is not None:
        for path in [root, *root.rglob("*")]:
            os.chown(path, *owner, follow_symlinks=False)
    return root


@functools.cache
def sandbox_unavailable() -> str | None:
    """Why containers cannot run here, or None."""
    if not os.path.exists(BUSYBOX):
        return f"{BUSYBOX} (busybox-static) is not installed"
    try:
        result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
                                 "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot probe user namespaces: {e}"
    if result.returncode != 0:
        return f"user namespaces are not available: {result.stderr.decode().strip()}"
    return None


def require_sandbox() -> None:
    reason = sandbox_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def busybox_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only layer directory holding the busybox image (shared by every test)."""
    require_sandbox()
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox-layer") / "rootfs")


@dataclass
class Result:
    code: int
    out: str
    err: str


class Containers:
    """Makes specs with fresh upper/work directories and runs them."""

    def __init__(self, base: Path, lowerdirs: tuple[str, ...]) -> None:
        self.base = base
        self.lowerdirs = lowerdirs
        self.count = 0

    def spec(self, *argv: str, **fields: object) -> SandboxSpec:
        self.count += 1
        where = self.base / f"c{self.count}"
        fields.setdefault("env", (PATH_ENV,))
        fields.setdefault("hostname", f"ctr{self.count}")
        fields.setdefault("lowerdirs", self.lowerdirs)
        return SandboxSpec(upperdir=str(where / "upper"), workdir=str(where / "work"), argv=argv,
                           **fields)  # type: ignore[arg-type]

    def run(self, spec: SandboxSpec, *, input: bytes | None = None, timeout: float = 60) -> Result:
        box = sandbox.start(spec, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with box:
            out, err = box.communicate(input, timeout=timeout)
        assert box.returncode is not None
        return Result(box.returncode, out.decode(), err.decode())

    def sh(self, script: str, **fields: object) -> Result:
        return self.run(self.spec("sh", "-c", script, **fields))

    def with_mode(self, spec: SandboxSpec, mode: str) -> SandboxSpec:
        return replace(spec, rootfs_mode=mode)  # type: ignore[arg-type]


@pytest.fixture
def containers(tmp_path: Path, busybox_layer: Path) -> Iterator[Containers]:
    """Fresh container directories on top of the busybox layer; removed afterwards."""
    made = Containers(tmp_path / "containers", (str(busybox_layer),))
    yield made
    for child in (tmp_path / "containers").glob("c*"):
        if child.is_dir():
            rootfs.remove_tree(str(child))


def pidns_members(ns: str) -> list[int]:
    """Host pids whose pid namespace is ``ns`` (a ``pid:[inode]`` string)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                members.append(int(entry))
        except OSError:
            continue
    return members


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
