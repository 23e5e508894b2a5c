"""Unit tests of the runtime's pure parts: layer views, copy fallback, diff, spec checks, shim rules.

Nothing here creates a namespace; containers are exercised in tests/integration/test_sandbox_*.py.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.errors import ContainerError
from engine.runtime import _shim, rootfs, sandbox
from engine.runtime.diff import Change, copy_changes, diff, overlay_changes
from engine.runtime.layerview import LayerStack, is_opaque, is_whiteout
from engine.runtime.sandbox import Mount, SandboxSpec

ROOT = os.geteuid() == 0


def _xattrs_supported(path: Path) -> bool:
    probe = path / ".xattr-probe"
    probe.write_text("")
    try:
        os.setxattr(probe, "user.test", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def whiteout(path: Path) -> None:
    """An overlay whiteout: a 0/0 char device as root, the xattr form (kernel >= 6.7) otherwise."""
    if ROOT:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))
    else:
        path.write_text("")
        os.setxattr(path, "user.overlay.whiteout", b"")


def opaque(path: Path) -> None:
    os.setxattr(path, "user.overlay.opaque", b"y")


@pytest.fixture
def xattrs(tmp_path: Path) -> None:
    if not _xattrs_supported(tmp_path):
        pytest.skip("the temp file system has no user xattrs")


def tree(root: Path, files: dict[str, str | None]) -> Path:
    """Create files (text) and directories (None) below ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return root


# --- sandbox values and checks -------------------------------------------------------------


@pytest.mark.parametrize(("returncode", "expected"), [(0, 0), (7, 7), (-15, 143), (-9, 137), (137, 137)])
def test_docker_exit_code(returncode: int, expected: int) -> None:
    assert sandbox.docker_exit_code(returncode) == expected


def test_default_hosts_names_the_container() -> None:
    hosts = sandbox.default_hosts("web1")
    assert hosts.startswith("127.0.0.1\tlocalhost\n")
    assert hosts.endswith("127.0.0.1\tweb1\n")
    assert "web1" not in sandbox.default_hosts("localhost").split("localhost", 1)[0]


def test_spec_is_frozen() -> None:
    spec = SandboxSpec(lowerdirs=(), upperdir="/u", workdir="/w", argv=("true",))
    with pytest.raises(AttributeError):
        spec.argv = ("false",)  # type: ignore[misc]
    assert spec.network == "private" and spec.rootfs_mode == "auto" and spec.cwd == "/"


@pytest.mark.parametrize(("fields", "message"), [
    ({"argv": ()}, "no command"),
    ({"mounts": (Mount("/", "relative"),)}, "must be absolute"),
    ({"mounts": (Mount("/", "/./"),)}, "destination can't be '/'"),
    ({"mounts": (Mount("/nonexistent/source", "/x"),)}, "bind source path does not exist"),
    ({"network": "bridge"}, "unknown network mode"),
    ({"cwd": "relative/dir"}, "absolute path"),
    ({"env": ("A=\0",)}, "NUL byte"),
    ({"uid": -1}, "invalid user"),
])
def test_invalid_specs_are_refused_before_anything_runs(tmp_path: Path, fields: dict[str, object],
                                                        message: str) -> None:
    values: dict[str, object] = {"lowerdirs": (), "upperdir": str(tmp_path / "u"),
                                 "workdir": str(tmp_path / "w"), "argv": ("true",)}
    values.update(fields)
    with pytest.raises(ContainerError, match=message):
        sandbox.start(SandboxSpec(**values))  # type: ignore[arg-type]
    assert not (tmp_path / "u").exists()


# --- shim rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "code"), [
    ('exec: "x": executable file not found in $PATH', 127),
    ('exec: "/x": stat /x: no such file or directory', 127),
    ('exec: "/etc": permission denied', 126),
    ("mount proc on /proc: operation not permitted", 125),
])
def test_exit_code_for_setup_errors(message: str, code: int) -> None:
    assert _shim.exit_code_for(message) == code


def test_look_path(tmp_path: Path) -> None:
    first = tree(tmp_path / "first", {"tool": "#!/bin/sh\n", "dir/x": "x"})
    second = tree(tmp_path / "second", {"tool": "#!/bin/sh\n"})
    os.chmod(second / "tool", 0o755)
    path = f"{first}:{second}"
    assert _shim.look_path("tool", path) == f"{second}/tool"  # the non-executable one is skipped
    with pytest.raises(_shim.SetupError) as info:
        _shim.look_path("dir", path)
    assert (info.value.code, info.value.message) == (127, 'exec: "dir": executable file not found in $PATH')
    with pytest.raises(_shim.SetupError) as info:
        _shim.look_path(str(first / "tool"), path)
    assert info.value.code == 126
    with pytest.raises(_shim.SetupError) as info:
        _shim.look_path(str(first / "nope"), path)
    assert info.value.code == 127
    assert "no such file or directory" in info.value.message


@pytest.mark.parametrize("module", ["_shim.py", "_shim_io.py", "_shim_ports.py"])
def test_shim_imports_only_the_standard_library(module: str) -> None:
    source = (Path(_shim.__file__).parent / module).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.strip().startswith("import ")}
    assert imports <= {"ctypes", "errno", "fcntl", "marshal", "os", "select", "stat", "struct", "sys", "time",
                       "_signal", "_socket", "_shim_io", "_shim_ports"}


# --- layer view ----------------------------------------------------------------------------------


def test_layer_stack_whiteouts_and_opaque_dirs(tmp_path: Path, xattrs: None) -> None:
    base = tree(tmp_path / "base", {"a/keep": "1", "a/gone": "2", "b/old": "3", "c": "4", "d/x": "5"})
    top = tree(tmp_path / "top", {"a": None, "b/new": "6", "d": "now a file"})
    whiteout(top / "a" / "gone")
    whiteout(top / "c")
    opaque(top / "b")
    stack = LayerStack([str(top), str(base)])
    assert stack.lookup("a/keep") is not None
    assert stack.lookup("a/gone") is None
    assert stack.lookup("c") is None
    assert stack.lookup("b/old") is None          # hidden by the opaque directory
    assert stack.lookup("b/new") is not None
    assert stack.lookup("d/x") is None            # d is a file in the top layer
    assert stat.S_ISREG(stack.lookup("d").st_mode)  # type: ignore[union-attr]
    assert stack.listdir("") == ["a", "b", "d"]
    assert stack.listdir("a") == ["keep"]
    assert stack.listdir("b") == ["new"]
    assert is_whiteout(str(top / "c"), os.lstat(top / "c"))
    assert is_opaque(str(top / "b")) and not is_opaque(str(top / "a"))


# --- copy fallback and manifest -------------------------------------------------------------------


def test_populate_copy_merges_layers_and_keeps_metadata(tmp_path: Path, xattrs: None) -> None:
    base = tree(tmp_path / "base", {"bin/tool": "tool", "etc/passwd": "root", "etc/group": "g", "var/x": "x"})
    os.chmod(base / "bin" / "tool", 0o755)
    os.utime(base / "etc" / "passwd", ns=(1_000_000_000_123, 1_000_000_000_123))
    os.chmod(base / "var", 0o750)
    (base / "bin" / "link").symlink_to("tool")
    top = tree(tmp_path / "top", {"etc": None, "var/y": "y", "new": "n"})
    whiteout(top / "etc" / "group")
    opaque(top / "var")
    dest = tmp_path / "rootfs"
    dest.mkdir()
    rootfs.populate_copy([str(top), str(base)], str(dest))
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert files == ["bin", "bin/link", "bin/tool", "etc", "etc/passwd", "new", "var", "var/y"]
    assert os.readlink(dest / "bin" / "link") == "tool"
    assert stat.S_IMODE(os.stat(dest / "bin" / "tool").st_mode) == 0o755
    assert os.stat(dest / "etc" / "passwd").st_mtime_ns == 1_000_000_000_123
    assert os.listxattr(dest / "var") == []  # overlay bookkeeping is not copied


def test_copy_changes_against_the_manifest(tmp_path: Path) -> None:
    layer = tree(tmp_path / "layer", {"bin/a": "a", "bin/b": "b", "etc/conf": "c", "etc/d/e": "e",
                                      "srv/old": "o", "srv/sub/x": "x", "opt/f": "f", "usr/lib/x": "x"})
    dest = tmp_path / "upper"
    dest.mkdir()
    rootfs.populate_copy([str(layer)], str(dest))
    rootfs.write_manifest(str(dest))
    assert copy_changes(str(dest), rootfs.read_manifest(str(dest))) == []
    (dest / "bin" / "b").unlink()
    (dest / "etc" / "conf").write_text("changed")
    (dest / "etc" / "new").write_text("n")
    rootfs.remove_tree(str(dest / "srv"))           # deleted and re-created
    (dest / "srv").mkdir()
    (dest / "srv" / "fresh").write_text("f")
    (dest / "srv" / "sub").mkdir()
    rootfs.remove_tree(str(dest / "opt"))           # a directory replaced by a file
    (dest / "opt").write_text("file")
    (dest / "usr" / "lib").chmod(0o700)             # metadata only
    (dest / "home" / "u").mkdir(parents=True)
    assert copy_changes(str(dest), rootfs.read_manifest(str(dest))) == [
        Change("C", "/bin"), Change("D", "/bin/b"),
        Change("C", "/etc"), Change("C", "/etc/conf"), Change("A", "/etc/new"),
        Change("A", "/home"), Change("A", "/home/u"),
        Change("C", "/opt"),
        Change("C", "/srv"), Change("A", "/srv/fresh"), Change("D", "/srv/old"),
        Change("C", "/srv/sub"), Change("D", "/srv/sub/x"),
        Change("C", "/usr"), Change("C", "/usr/lib"),
    ]
    assert diff(([str(layer)], str(dest))) == copy_changes(str(dest), rootfs.read_manifest(str(dest)))


def test_overlay_changes_from_an_upperdir(tmp_path: Path, xattrs: None) -> None:
    lower = tree(tmp_path / "lower", {"bin/a": "a", "bin/b": "b", "etc/conf": "c", "srv/old": "o",
                                      "srv/keep": "k", "srv/sub/x": "x", "opt/f": "f", "usr/lib/x": "x"})
    upper = tree(tmp_path / "upper", {"bin": None, "etc/conf": "changed", "etc/new": "n", "srv/sub": None,
                                      "srv/keep": "k2", "opt": "file", "home/u": None, "usr/lib": None})
    whiteout(upper / "bin" / "b")
    opaque(upper / "srv")
    os.chmod(upper / "usr" / "lib", 0o700)
    # copied up but otherwise unchanged directories are not changes
    os.chmod(upper / "usr", stat.S_IMODE(os.stat(lower / "usr").st_mode))
    os.chmod(upper / "bin", stat.S_IMODE(os.stat(lower / "bin").st_mode))
    assert overlay_changes(str(upper), LayerStack([str(lower)])) == [
        Change("C", "/bin"), Change("D", "/bin/b"),
        Change("C", "/etc"), Change("C", "/etc/conf"), Change("A", "/etc/new"),
        Change("A", "/home"), Change("A", "/home/u"),
        Change("C", "/opt"),
        Change("C", "/srv"), Change("C", "/srv/keep"), Change("D", "/srv/old"),
        Change("C", "/srv/sub"), Change("D", "/srv/sub/x"),  # re-created below an opaque directory
        Change("C", "/usr"), Change("C", "/usr/lib"),
    ]
    assert diff(([str(lower)], str(upper)), "overlay") == overlay_changes(str(upper), LayerStack([str(lower)]))


def test_changes_sort_like_a_directory_walk(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"a/z": "1"})
    upper = tree(tmp_path / "upper", {"a/b": "2", "a-c": "3"})
    assert [str(c) for c in overlay_changes(str(upper), LayerStack([str(lower)]))] == \
        ["C /a", "A /a/b", "A /a-c"]  # parents first; "/a-c" sorts after the whole "/a" subtree


# --- init layer, modes, cleanup --------------------------------------------------------------------


def test_init_layer_adds_only_what_the_image_lacks(tmp_path: Path) -> None:
    image = tree(tmp_path / "image", {"proc": None, "etc/hosts": "image hosts", "bin/sh": "sh"})
    os.chmod(image / "etc", 0o751)
    os.utime(image / "etc", ns=(2_000_000_000_000, 2_000_000_000_000))
    target = tmp_path / "upper.init"
    rootfs.make_init_layer([str(image)], str(target))
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == \
        ["dev", "etc", "etc/hostname", "etc/mtab", "etc/resolv.conf", "sys"]
    assert os.readlink(target / "etc" / "mtab") == "/proc/mounts"
    etc = os.stat(target / "etc")
    assert stat.S_IMODE(etc.st_mode) == 0o751 and etc.st_mtime_ns == 2_000_000_000_000


def test_init_layer_for_scratch(tmp_path: Path) -> None:
    target = tmp_path / "upper.init"
    rootfs.make_init_layer([], str(target))
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == \
        ["dev", "etc", "etc/hostname", "etc/hosts", "etc/mtab", "etc/resolv.conf", "proc", "sys"]


def test_paths_next_to_the_upperdir() -> None:
    assert rootfs.init_dir("/c/1/upper/") == "/c/1/upper.init"
    assert rootfs.manifest_path("/c/1/upper") == "/c/1/upper.manifest.json"


def test_prepare_copy_mode_and_mode_resolution(tmp_path: Path) -> None:
    layer = tree(tmp_path / "layer", {"bin/sh": "sh"})
    upper, work = str(tmp_path / "c" / "upper"), str(tmp_path / "c" / "work")
    lowers = rootfs.prepare([str(layer)], upper, work, "copy")
    assert lowers == (rootfs.init_dir(upper), str(layer))
    assert (Path(upper) / "bin" / "sh").read_text() == "sh"
    assert (Path(upper) / "proc").is_dir()
    assert not os.path.exists(work)
    assert rootfs.resolve_mode("auto", upper) == "copy"
    assert rootfs.resolve_mode("copy", upper) == "copy"
    with pytest.raises(ContainerError, match="copy-mode"):
        rootfs.resolve_mode("overlay", upper)
    assert diff(([str(layer)], upper)) == []


def test_copy_mode_refuses_a_foreign_upperdir(tmp_path: Path) -> None:
    upper = tree(tmp_path / "upper", {"something": "x"})
    with pytest.raises(ContainerError, match="not empty"):
        rootfs.prepare([], str(upper), str(tmp_path / "work"), "copy")


def test_remove_tree_copes_with_mode_000_directories(tmp_path: Path) -> None:
    work = tree(tmp_path / "work", {"work/inner/file": "x"})
    os.chmod(work / "work" / "inner", 0)
    os.chmod(work / "work", 0)
    rootfs.remove_tree(str(work))
    assert not work.exists()
    upper = tree(tmp_path / "c" / "upper", {"f": "x"})
    rootfs.make_init_layer([], rootfs.init_dir(str(upper)))
    rootfs.remove(str(upper), str(tmp_path / "c" / "work"))
    assert os.listdir(tmp_path / "c") == []


def test_auto_mode_falls_back_to_copy_without_overlayfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "containers"
    base.mkdir()
    monkeypatch.setitem(rootfs._probe_cache, os.stat(base).st_dev, False)
    assert rootfs.resolve_mode("auto", str(base / "c1" / "upper")) == "copy"
    monkeypatch.setitem(rootfs._probe_cache, os.stat(base).st_dev, True)
    assert rootfs.resolve_mode("auto", str(base / "c1" / "upper")) == "overlay"
    assert sandbox.overlay_supported(str(base)) is True
