"""engine.extract: normal extraction, whiteouts (apply and overlay), duplicates, streams."""
from __future__ import annotations

import errno
import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from engine import extract
from engine.errors import ArchiveError, UnsafeArchive
from engine.extract import ExtractStats, extract_layer, open_layer_stream

MTIME = 1_600_000_000
REAL_ROOT = extract._privilege().real_root
NS_ROOT = extract._privilege().ns_root


# --------------------------------------------------------------------------- tar builders


def _info(name: str, kind: bytes, mode: int, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = attrs.pop("mtime", MTIME)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def reg(name: str, data: bytes = b"", mode: int = 0o644, **attrs: object):
    info = _info(name, tarfile.REGTYPE, mode, **attrs)
    info.size = len(data)
    return info, data


def dir_(name: str, mode: int = 0o755, **attrs: object):
    return _info(name, tarfile.DIRTYPE, mode, **attrs), None


def sym(name: str, target: str, **attrs: object):
    return _info(name, tarfile.SYMTYPE, 0o777, linkname=target, **attrs), None


def hard(name: str, target: str, **attrs: object):
    return _info(name, tarfile.LNKTYPE, 0o644, linkname=target, **attrs), None


def whiteout(name: str):
    return reg(name)


def build(*entries, fmt: int = tarfile.PAX_FORMAT, compress: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def extract_bytes(raw: bytes, dest: Path, **kwargs: object) -> ExtractStats:
    return extract_layer(io.BytesIO(raw), dest, **kwargs)


class NonSeekable(io.RawIOBase):
    """A pipe-like stream: no seek, short reads."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(min(len(buffer), 7000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# --------------------------------------------------------------------------- normal extraction


def test_files_dirs_modes_and_mtimes(tmp_path: Path) -> None:
    raw = build(
        dir_("etc", 0o755, mtime=MTIME + 1),
        reg("etc/hostname", b"box\n", 0o644, mtime=MTIME + 2),
        reg("bin/tool", b"#!/bin/sh\n", 0o4755),  # parent missing in the tar: made 0o755
        dir_("ro", 0o555, mtime=MTIME + 3),
        reg("ro/inside", b"x" * 3_000_000, 0o400, mtime=MTIME + 4),  # > CHUNK_SIZE
        dir_("ro/deeper", 0o500),
        reg("ro/deeper/f", b"deep", 0o600),
    )
    dest = tmp_path / "root"
    stats = extract_bytes(raw, dest)
    assert stats == ExtractStats(files=4, dirs=3, symlinks=0, hardlinks=0, whiteouts=0,
                                 bytes=4 + 10 + 3_000_000 + 4)
    assert (dest / "etc/hostname").read_bytes() == b"box\n"
    assert (dest / "ro/inside").read_bytes() == b"x" * 3_000_000
    modes = {p: stat.S_IMODE((dest / p).lstat().st_mode)
             for p in ("etc", "etc/hostname", "bin", "bin/tool", "ro", "ro/inside",
                       "ro/deeper", "ro/deeper/f")}
    assert modes == {"etc": 0o755, "etc/hostname": 0o644, "bin": 0o755, "bin/tool": 0o4755,
                     "ro": 0o555, "ro/inside": 0o400, "ro/deeper": 0o500, "ro/deeper/f": 0o600}
    assert (dest / "etc").stat().st_mtime == MTIME + 1
    assert (dest / "etc/hostname").stat().st_mtime == MTIME + 2
    assert (dest / "ro").stat().st_mtime == MTIME + 3
    assert (dest / "ro/inside").stat().st_mtime == MTIME + 4


def test_pax_subsecond_mtime_is_exact(tmp_path: Path) -> None:
    info, data = reg("f", b"1")
    info.pax_headers = {"mtime": "1600000000.123456789"}
    extract_bytes(build((info, data)), tmp_path / "d")
    assert (tmp_path / "d/f").stat().st_mtime_ns == 1_600_000_000_123_456_789


def test_symlinks_are_kept_as_is_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    os.utime(outside, (MTIME, MTIME))
    before = outside.stat()
    raw = build(
        sym("abs", str(outside), mtime=MTIME + 7),
        sym("rel", "etc/hostname"),
        sym("dangling", "/does/not/exist"),
        reg("etc/hostname", b"box"),
    )
    dest = tmp_path / "root"
    stats = extract_bytes(raw, dest)
    assert stats.symlinks == 3
    assert os.readlink(dest / "abs") == str(outside)
    assert os.readlink(dest / "rel") == "etc/hostname"
    assert os.readlink(dest / "dangling") == "/does/not/exist"
    assert (dest / "abs").lstat().st_mtime == MTIME + 7  # set on the link itself
    after = outside.stat()
    assert (after.st_mtime_ns, after.st_mode, after.st_ctime_ns) == \
        (before.st_mtime_ns, before.st_mode, before.st_ctime_ns)


def test_hardlinks_share_the_inode(tmp_path: Path) -> None:
    raw = build(reg("a/file", b"data", 0o640), hard("b/link", "a/file"), hard("c", "./a/file"))
    dest = tmp_path / "root"
    stats = extract_bytes(raw, dest)
    assert stats.hardlinks == 2
    ino = (dest / "a/file").stat().st_ino
    assert (dest / "b/link").stat().st_ino == ino == (dest / "c").stat().st_ino
    assert (dest / "a/file").stat().st_nlink == 3


def test_replacing_a_hardlinked_file_does_not_write_through(tmp_path: Path) -> None:
    raw = build(reg("a", b"old"), hard("b", "a"), reg("b", b"new"))
    dest = tmp_path / "root"
    extract_bytes(raw, dest)
    assert (dest / "a").read_bytes() == b"old"
    assert (dest / "b").read_bytes() == b"new"


@pytest.mark.parametrize("how", ["path", "seekable", "pipe"])
def test_gzip_input_is_detected(tmp_path: Path, how: str) -> None:
    raw = build(dir_("d"), reg("d/f", b"z" * 100_000), compress=True)
    assert raw[:2] == b"\x1f\x8b"
    layer = tmp_path / "layer.tar.gz"
    layer.write_bytes(raw)
    src = {"path": layer, "seekable": io.BytesIO(raw), "pipe": NonSeekable(raw)}[how]
    stats = extract_layer(src, tmp_path / "root")  # type: ignore[arg-type]
    assert stats.files == 1 and stats.bytes == 100_000
    assert (tmp_path / "root/d/f").read_bytes() == b"z" * 100_000


@pytest.mark.parametrize("compress", [False, True])
def test_open_layer_stream_decompresses_and_leaves_streams_open(tmp_path: Path,
                                                                compress: bool) -> None:
    plain = build(reg("f", b"hello"))
    source = NonSeekable(build(reg("f", b"hello"), compress=compress))
    stream = open_layer_stream(source)  # type: ignore[arg-type]
    assert stream.read() == plain
    stream.close()
    assert not source.closed


def test_plain_stream_uncompressed_non_seekable(tmp_path: Path) -> None:
    raw = build(reg("f", b"q" * 50_000))
    stats = extract_layer(NonSeekable(raw), tmp_path / "root")  # type: ignore[arg-type]
    assert stats.bytes == 50_000


def test_zstd_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="zstd"):
        extract_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 100, tmp_path / "root")


def test_empty_stream_and_missing_end_blocks_are_accepted(tmp_path: Path) -> None:
    assert extract_bytes(b"", tmp_path / "a").files == 0
    raw = build(reg("f", b"data"))
    without_end = raw[:1024]  # header + one data block, no end-of-archive blocks
    assert extract_bytes(without_end, tmp_path / "b").files == 1


def test_long_names_and_root_entry(tmp_path: Path) -> None:
    long = "/".join(["directory-with-a-long-name"] * 8) + "/file"
    raw = build(dir_("./", 0o750, mtime=MTIME), reg(long, b"L"), fmt=tarfile.GNU_FORMAT)
    dest = tmp_path / "root"
    extract_bytes(raw, dest)
    assert (dest / long).read_bytes() == b"L"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert dest.stat().st_mtime == MTIME


def test_many_directories_use_a_bounded_fd_cache(tmp_path: Path) -> None:
    entries = [reg(f"d{i:03d}/sub/f", b"x") for i in range(3 * extract._FD_CACHE_SIZE)]
    fds = open_fds()
    stats = extract_bytes(build(*entries), tmp_path / "root")
    assert stats.files == 3 * extract._FD_CACHE_SIZE
    assert open_fds() == fds


def test_paths_deeper_than_the_fd_cache(tmp_path: Path) -> None:
    deep = "/".join(["d"] * (extract._FD_CACHE_HARD + 100))
    fds = open_fds()
    extract_bytes(build(reg(deep + "/f", b"deep"), reg(deep + "/g", b"too")), tmp_path / "root")
    assert open_fds() == fds
    assert (tmp_path / "root" / deep / "g").read_bytes() == b"too"


def test_fds_are_closed_on_error(tmp_path: Path) -> None:
    raw = build(*[reg(f"d{i}/f", b"x") for i in range(50)], reg("../escape", b"x"))
    fds = open_fds()
    with pytest.raises(UnsafeArchive):
        extract_bytes(raw, tmp_path / "root")
    assert open_fds() == fds


def test_user_xattrs_restored_overlay_xattrs_dropped(tmp_path: Path) -> None:
    info, data = reg("f", b"x", 0o444)
    info.pax_headers = {"SCHILY.xattr.user.color": "blue",
                        "SCHILY.xattr.user.overlay.redirect": "/elsewhere",
                        "SCHILY.xattr.security.selinux": "system_u:object_r:bin_t:s0"}
    dinfo, _ = dir_("d", 0o555)
    dinfo.pax_headers = {"SCHILY.xattr.user.kind": "dir"}
    extract_bytes(build((info, data), (dinfo, None)), tmp_path / "root")
    try:
        names = os.listxattr(tmp_path / "root/f")
    except OSError as exc:  # pragma: no cover - filesystem without xattrs
        pytest.skip(f"no xattrs on tmp_path: {exc}")
    assert os.getxattr(tmp_path / "root/f", "user.color") == b"blue"
    assert "user.overlay.redirect" not in names
    assert "security.selinux" not in names or os.getxattr(
        tmp_path / "root/f", "security.selinux") != b"system_u:object_r:bin_t:s0"
    assert os.getxattr(tmp_path / "root/d", "user.kind") == b"dir"


@pytest.mark.skipif(not NS_ROOT, reason="chown needs root")
def test_ownership_restored_as_root_and_optional(tmp_path: Path) -> None:
    raw = build(reg("f", b"x", uid=1234, gid=5678), dir_("d", uid=42, gid=43),
                sym("l", "f", uid=7, gid=8))
    extract_bytes(raw, tmp_path / "a")
    assert ((tmp_path / "a/f").stat().st_uid, (tmp_path / "a/f").stat().st_gid) == (1234, 5678)
    assert (tmp_path / "a/d").stat().st_uid == 42
    assert (tmp_path / "a/l").lstat().st_uid == 7
    extract_bytes(raw, tmp_path / "b", same_owner=False)
    assert (tmp_path / "b/f").stat().st_uid == os.geteuid()


@pytest.mark.skipif(not REAL_ROOT, reason="device nodes need real root")
def test_devices_and_fifos_as_real_root(tmp_path: Path) -> None:
    null = _info("dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3)
    fifo = _info("run/fifo", tarfile.FIFOTYPE, 0o620)
    extract_bytes(build((null, None), (fifo, None)), tmp_path / "root")
    st = (tmp_path / "root/dev/null").lstat()
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_IMODE(st.st_mode) == 0o666
    fst = (tmp_path / "root/run/fifo").lstat()
    assert stat.S_ISFIFO(fst.st_mode) and stat.S_IMODE(fst.st_mode) == 0o620


def test_gnu_sparse_members(tmp_path: Path) -> None:
    if shutil.which("tar") is None:  # pragma: no cover
        pytest.skip("GNU tar not installed")
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as handle:
        handle.seek(5_000_000)
        handle.write(b"end")
    layer = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-cf", str(layer), "-C", str(src), "sparse"], check=True)
    stats = extract_layer(layer, tmp_path / "root")
    data = (tmp_path / "root/sparse").read_bytes()
    assert len(data) == 5_000_003 and data.endswith(b"end") and data[:10] == b"\0" * 10
    assert stats.files == 1


# --------------------------------------------------------------------------- duplicates


def test_duplicate_entries_last_wins(tmp_path: Path) -> None:
    raw = build(
        reg("same", b"one"), reg("same", b"two"),
        dir_("was_dir"), reg("was_dir/child", b"c"), reg("was_dir", b"file now"),
        reg("was_file", b"f"), dir_("was_file", 0o700), reg("was_file/inner", b"i"),
        sym("was_link", "/etc"), reg("was_link", b"plain"),
        dir_("meta", 0o700), dir_("meta", 0o751, mtime=MTIME + 9),
    )
    dest = tmp_path / "root"
    extract_bytes(raw, dest)
    assert (dest / "same").read_bytes() == b"two"
    assert (dest / "was_dir").read_bytes() == b"file now"
    assert (dest / "was_file/inner").read_bytes() == b"i"
    assert not (dest / "was_link").is_symlink()
    assert (dest / "was_link").read_bytes() == b"plain"
    assert stat.S_IMODE((dest / "meta").stat().st_mode) == 0o751
    assert (dest / "meta").stat().st_mtime == MTIME + 9


def test_replaced_directory_forgets_its_deferred_modes(tmp_path: Path) -> None:
    raw = build(dir_("d/sub", 0o777), reg("d", b"file"), dir_("d"), reg("d/sub/x", b"x"))
    dest = tmp_path / "root"
    extract_bytes(raw, dest)
    assert stat.S_IMODE((dest / "d/sub").stat().st_mode) == 0o755  # implicit, not the old 0o777


def test_writing_into_a_lower_read_only_directory(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    extract_bytes(build(dir_("ro", 0o555, mtime=MTIME), dir_("ro/sub", 0o500)), dest)
    extract_bytes(build(reg("ro/new", b"n"), reg("ro/sub/deeper/f", b"f")), dest)
    assert (dest / "ro/new").read_bytes() == b"n"
    assert (dest / "ro/sub/deeper/f").read_bytes() == b"f"
    assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o555  # restored after the layer
    assert stat.S_IMODE((dest / "ro/sub").stat().st_mode) == 0o500


def test_directory_replaced_by_file_across_layers(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    extract_bytes(build(dir_("opt/app", 0o555), reg("opt/app/bin", b"b", 0o555)), dest)
    extract_bytes(build(reg("opt/app", b"now a file")), dest)
    assert (dest / "opt/app").read_bytes() == b"now a file"


def test_directory_replaced_by_symlink_then_back(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    extract_bytes(build(dir_("lib"), reg("lib/x", b"x")), dest)
    extract_bytes(build(sym("lib", "usr/lib")), dest)
    assert os.readlink(dest / "lib") == "usr/lib"
    extract_bytes(build(dir_("lib"), reg("lib/y", b"y")), dest)
    assert (dest / "lib").is_dir() and not (dest / "lib").is_symlink()
    assert sorted(os.listdir(dest / "lib")) == ["y"]


# --------------------------------------------------------------------------- whiteouts: apply


def lower_layer() -> bytes:
    return build(
        dir_("a"), reg("a/keep", b"k"), reg("a/gone", b"g"),
        dir_("b"), dir_("b/deep"), reg("b/deep/x", b"x"),
        dir_("d"), reg("d/old1", b"1"), dir_("d/sub", 0o555), reg("d/sub/old2", b"2"),
        reg("d/sub/kept_name", b"lower version"),
    )


def test_apply_plain_whiteouts(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    extract_bytes(lower_layer(), dest)
    stats = extract_bytes(build(whiteout("a/.wh.gone"), whiteout(".wh.b"),
                                whiteout(".wh.never-existed")), dest)
    assert stats.whiteouts == 3 and stats.files == 0
    assert sorted(os.listdir(dest / "a")) == ["keep"]
    assert not (dest / "b").exists()
    assert not any(name.startswith(".wh.") for _, dirs, files in os.walk(dest)
                   for name in dirs + files)


@pytest.mark.parametrize("marker_first", [True, False], ids=["marker-first", "marker-last"])
def test_apply_opaque_marker_hides_only_lower_content(tmp_path: Path, marker_first: bool) -> None:
    dest = tmp_path / "root"
    extract_bytes(lower_layer(), dest)
    own = [dir_("d"), reg("d/new", b"n"), dir_("d/sub", 0o755), reg("d/sub/kept_name", b"upper")]
    marker = [whiteout("d/.wh..wh..opq")]
    stats = extract_bytes(build(*(marker + own if marker_first else own + marker)), dest)
    assert stats.whiteouts == 1
    assert sorted(os.listdir(dest / "d")) == ["new", "sub"]
    assert sorted(os.listdir(dest / "d/sub")) == ["kept_name"]
    assert (dest / "d/sub/kept_name").read_bytes() == b"upper"
    assert stat.S_IMODE((dest / "d/sub").stat().st_mode) == 0o755
    assert sorted(os.listdir(dest / "a")) == ["gone", "keep"]  # other dirs untouched


def test_apply_opaque_marker_alone_empties_directory(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    extract_bytes(lower_layer(), dest)
    extract_bytes(build(whiteout("d/.wh..wh..opq")), dest)
    assert os.listdir(dest / "d") == []


@pytest.mark.parametrize("whiteout_first", [True, False])
def test_apply_whiteout_never_removes_this_layers_own_entry(tmp_path: Path,
                                                            whiteout_first: bool) -> None:
    dest = tmp_path / "root"
    extract_bytes(lower_layer(), dest)
    own = [reg("a/gone", b"recreated"), dir_("b"), reg("b/fresh", b"f")]
    outs = [whiteout("a/.wh.gone"), whiteout(".wh.b")]
    extract_bytes(build(*(outs + own if whiteout_first else own + outs)), dest)
    assert (dest / "a/gone").read_bytes() == b"recreated"
    assert sorted(os.listdir(dest / "b")) == ["fresh"]  # lower b/deep is hidden either way


def test_aufs_metadata_is_skipped(tmp_path: Path) -> None:
    raw = build(whiteout(".wh..wh.aufs"), dir_(".wh..wh.plnk"), reg(".wh..wh.plnk/1.2", b"x"),
                whiteout("x/.wh..wh.orph"), reg("real", b"r"))
    dest = tmp_path / "root"
    stats = extract_bytes(raw, dest)
    assert stats.whiteouts == 0
    assert sorted(os.listdir(dest)) == ["real"]


# --------------------------------------------------------------------------- whiteouts: overlay


def _xattr(path: Path, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        raise


def _is_whiteout(path: Path) -> bool:
    st = path.lstat()
    if stat.S_ISCHR(st.st_mode):
        return st.st_rdev == 0
    return stat.S_ISREG(st.st_mode) and st.st_size == 0 and \
        _xattr(path, "user.overlay.whiteout") is not None


def overlay_layer() -> bytes:
    return build(
        whiteout("etc/.wh.passwd"),
        dir_("var"), whiteout("var/.wh..wh..opq"), reg("var/new", b"n"),
        whiteout("var/.wh.pointless"),
        whiteout(".wh.opt"), dir_("opt"), reg("opt/own", b"o"),
    )


def _check_overlay_snapshot(dest: Path) -> None:
    assert _is_whiteout(dest / "etc/passwd")
    assert sorted(os.listdir(dest / "var")) == ["new"]  # whiteouts in opaque dirs are dropped
    assert _xattr(dest / "var", "user.overlay.opaque") == b"y"
    assert _xattr(dest / "opt", "user.overlay.opaque") == b"y"  # whiteout + dir = opaque dir
    assert (dest / "opt/own").read_bytes() == b"o"


def test_overlay_mode_char_device_whiteouts(tmp_path: Path) -> None:
    dest = tmp_path / "snap"
    try:
        stats = extract_bytes(overlay_layer(), dest, whiteouts="overlay")
    except ArchiveError as exc:
        pytest.skip(f"kernel/filesystem refuses both whiteout forms: {exc}")
    assert stats.whiteouts == 4
    if REAL_ROOT:
        st = (dest / "etc/passwd").lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert _xattr(dest / "var", "trusted.overlay.opaque") == b"y"
    _check_overlay_snapshot(dest)


def test_overlay_mode_xattr_whiteouts_without_mknod(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real_mknod = os.mknod

    def no_mknod(path, mode=0o600, device=0, *, dir_fd=None):  # type: ignore[no-untyped-def]
        if stat.S_ISCHR(mode) and device == 0:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real_mknod(path, mode, device, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mknod", no_mknod)
    dest = tmp_path / "snap"
    try:
        extract_bytes(overlay_layer(), dest, whiteouts="overlay")
    except ArchiveError as exc:
        pytest.skip(f"filesystem refuses user.overlay xattrs: {exc}")
    node = dest / "etc/passwd"
    assert stat.S_ISREG(node.lstat().st_mode) and node.lstat().st_size == 0
    assert _xattr(node, "user.overlay.whiteout") is not None
    assert _xattr(dest / "etc", "user.overlay.whiteouts") is not None
    assert _xattr(dest / "etc", "user.overlay.opaque") == b"x"
    _check_overlay_snapshot(dest)


def test_invalid_whiteouts_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        extract_bytes(build(), tmp_path, whiteouts="merge")  # type: ignore[arg-type]
