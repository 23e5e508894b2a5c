"""engine.extract against a corpus of hostile layer tars.

Every case extracts into ``outer/dest`` next to ``outer/sentinel``; the whole tree outside
``dest`` (contents, modes, owners, link counts, mtimes, ctimes, xattrs) must be unchanged
afterwards, whether the entry was refused or contained. Refusals must name the offending member.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from engine import extract
from engine.errors import ArchiveError, UnsafeArchive
from engine.extract import extract_layer

REAL_ROOT = extract._privilege().real_root
OLD = 1_500_000_000


# --------------------------------------------------------------------------- tar builders


def _info(name: str, kind: bytes, mode: int = 0o644, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, OLD
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def reg(name: str, data: bytes = b"pwned", mode: int = 0o644, **attrs: object):
    info = _info(name, tarfile.REGTYPE, mode, **attrs)
    info.size = len(data)
    return info, data


def dir_(name: str, mode: int = 0o755):
    return _info(name, tarfile.DIRTYPE, mode), None


def sym(name: str, target: str):
    return _info(name, tarfile.SYMTYPE, 0o777, linkname=target), None


def hard(name: str, target: str):
    return _info(name, tarfile.LNKTYPE, linkname=target), None


def dev(name: str, kind: bytes, major: int = 0, minor: int = 0):
    return _info(name, kind, 0o666, devmajor=major, devminor=minor), None


def pax(entry, headers: dict[str, str]):
    info, data = entry
    info.pax_headers = headers
    return info, data


def tar(*entries, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member_offsets(raw: bytes) -> list[tuple[str, int, int]]:
    """(name, header offset, data offset) of every member."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        return [(m.name, m.offset, m.offset_data) for m in archive.getmembers()]


def huge_size_claim() -> bytes:
    info = _info("big", tarfile.REGTYPE)
    info.size = 10 * 1024**3
    return info.tobuf(tarfile.PAX_FORMAT) + b"A" * 5000


def truncated_data() -> bytes:
    raw = tar(reg("first", b"1"), reg("victim", os.urandom(100_000)))
    _, _, data_at = member_offsets(raw)[1]
    return raw[: data_at + 50_000]


def truncated_header() -> bytes:
    raw = tar(reg("first", b"1"), reg("second", b"2"))
    _, header_at, _ = member_offsets(raw)[1]
    return raw[: header_at + 300]


def corrupt_checksum() -> bytes:
    raw = bytearray(tar(reg("first", b"1"), reg("second", b"2"), reg("third", b"3")))
    _, header_at, _ = member_offsets(bytes(raw))[1]
    raw[header_at] ^= 0x20  # 's' -> 'S' without fixing the checksum
    return bytes(raw)


def truncated_gzip() -> bytes:
    packed = gzip.compress(tar(reg("first", b"1"), reg("victim", os.urandom(200_000))))
    return packed[: len(packed) // 2]


def pax_header_bomb() -> bytes:
    info = _info("././@PaxHeader", tarfile.XHDTYPE)
    info.size = 64 * 1024 * 1024
    return info.tobuf(tarfile.USTAR_FORMAT) + b"30 path=" + b"a" * 4000


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Refused:
    """UnsafeArchive naming ``member``."""

    member: str


@dataclass(frozen=True)
class Broken:
    """ArchiveError whose message names ``member`` (and contains ``detail``)."""

    member: str
    detail: str = ""


@dataclass(frozen=True)
class Contained:
    """Extraction succeeds; ``check(dest, sentinel)`` asserts what was written inside dest."""

    check: Callable[[Path, Path], None] = lambda dest, sentinel: None


@dataclass(frozen=True)
class Case:
    id: str
    layers: Callable[[str], list[bytes]]  # sentinel path -> layer tars, applied in order
    expect: object
    whiteouts: str = "apply"
    unprivileged: bool = False
    notes: str = field(default="", compare=False)


def one(*entries, **kwargs) -> Callable[[str], list[bytes]]:
    return lambda s: [tar(*entries, **kwargs)]


def _is_file(rel: str, content: bytes | None = None) -> Callable[[Path, Path], None]:
    def check(dest: Path, sentinel: Path) -> None:
        path = dest / rel
        assert stat.S_ISREG(path.lstat().st_mode)
        if content is not None:
            assert path.read_bytes() == content
    return check


def _is_node(rel: str, test: Callable[[int], bool]) -> Callable[[Path, Path], None]:
    def check(dest: Path, sentinel: Path) -> None:
        assert test((dest / rel).lstat().st_mode)
    return check


def _absolute_contained(dest: Path, sentinel: Path) -> None:
    assert (dest / str(sentinel).lstrip("/") / "secret.txt").read_bytes() == b"pwned"


def _device_case(case_id: str, entry, test: Callable[[int], bool]) -> list[Case]:
    privileged = Contained(_is_node("node", test)) if REAL_ROOT else Refused("node")
    return [Case(case_id, one(entry), privileged),
            Case(case_id + "-unprivileged", one(entry), Refused("node"), unprivileged=True)]


CASES: list[Case] = [
    Case("dotdot-prefix", one(reg("../evil")), Refused("../evil")),
    Case("dotdot-deep", one(reg("a/../../evil")), Refused("a/../../evil")),
    Case("dotdot-into-sentinel", one(reg("../sentinel/secret.txt")),
         Refused("../sentinel/secret.txt")),
    Case("dot-slash-dotdot", one(reg("./../evil")), Refused("./../evil")),
    Case("absolute-dotdot", one(reg("/../evil")), Refused("/../evil")),
    Case("absolute-name-into-sentinel",
         lambda s: [tar(reg(f"{s}/secret.txt"))], Contained(_absolute_contained)),
    Case("gnu-longname-escape", one(reg("../" + "x" * 150), fmt=tarfile.GNU_FORMAT),
         Refused("../" + "x" * 150)),
    Case("pax-path-overrides-benign-name", one(pax(reg("innocent"), {"path": "../evil"})),
         Refused("../evil")),
    Case("symlink-absolute-then-write-through",
         lambda s: [tar(sym("link", s), reg("link/pwned"))], Refused("link/pwned")),
    Case("symlink-absolute-then-overwrite-file",
         lambda s: [tar(sym("x", f"{s}/secret.txt"), reg("x", b"mine"))],
         Contained(_is_file("x", b"mine"))),
    Case("symlink-dotdot-chain",
         one(sym("up", ".."), sym("up2", "up/.."), reg("up2/sentinel/secret.txt")),
         Refused("up2/sentinel/secret.txt")),
    Case("symlink-relative-escape",
         one(dir_("a"), dir_("a/b"), sym("a/b/c", "../../.."), reg("a/b/c/sentinel/pwned")),
         Refused("a/b/c/sentinel/pwned")),
    Case("symlink-loop", one(sym("l1", "l2"), sym("l2", "l1"), reg("l1/x")), Refused("l1/x")),
    Case("symlink-to-dir-inside-dest-not-followed",
         one(dir_("real"), sym("alias", "real"), reg("alias/x")), Refused("alias/x")),
    Case("symlink-swap-of-directory",
         lambda s: [tar(dir_("d"), reg("d/a"), sym("d", s), reg("d/x"))], Refused("d/x")),
    Case("symlink-swap-of-deep-directory",
         lambda s: [tar(dir_("a"), dir_("a/b"), dir_("a/b/c"), reg("a/b/c/f"), sym("a/b", s),
                        reg("a/b/c/g"))], Refused("a/b/c/g")),
    Case("deferred-dir-mode-after-symlink-swap",
         lambda s: [tar(dir_("d", 0o777), sym("d", s))], Contained()),
    Case("dir-entry-replaces-symlink",
         lambda s: [tar(sym("d", s), dir_("d", 0o777), reg("d/f", b"in"))],
         Contained(_is_file("d/f", b"in"))),
    Case("root-entry-as-symlink", lambda s: [tar(sym(".", s))], Refused(".")),
    Case("root-entry-as-file", one(reg(".")), Refused(".")),
    Case("empty-name", one(reg("")), Refused("")),
    Case("nul-in-name", one(pax(reg("placeholder"), {"path": "a\x00b"})), Refused("a\x00b")),
    Case("nul-in-symlink-target",
         one(pax(sym("s", "placeholder"), {"linkpath": "/etc\x00x"})), Refused("s")),
    Case("hardlink-to-absolute-outside-file",
         lambda s: [tar(hard("h", f"{s}/secret.txt"))], Refused("h")),
    Case("hardlink-dotdot", one(hard("h", "../sentinel/secret.txt")), Refused("h")),
    Case("hardlink-through-symlink",
         lambda s: [tar(sym("s", s), hard("h", "s/secret.txt"))], Refused("h")),
    Case("hardlink-to-symlink",
         lambda s: [tar(sym("s", f"{s}/secret.txt"), hard("h", "s"))], Refused("h")),
    Case("hardlink-to-directory", one(dir_("d"), hard("h", "d")), Refused("h")),
    Case("hardlink-replaces-symlink",
         lambda s: [tar(reg("a", b"A"), sym("s", f"{s}/secret.txt"), hard("s", "a"))],
         Contained(_is_file("s", b"A"))),
    *_device_case("char-device", dev("node", tarfile.CHRTYPE, 1, 3), stat.S_ISCHR),
    *_device_case("block-device", dev("node", tarfile.BLKTYPE, 7, 250), stat.S_ISBLK),
    *_device_case("fifo", dev("node", tarfile.FIFOTYPE), stat.S_ISFIFO),
    Case("whiteout-of-dotdot", one(reg("a/.wh...")), Refused("a/.wh...")),
    Case("whiteout-of-dot", one(reg(".wh..")), Refused(".wh..")),
    Case("whiteout-of-empty-name", one(reg(".wh.")), Refused(".wh.")),
    Case("whiteout-with-slash", one(reg(".wh.../sentinel/secret.txt")),
         Refused(".wh.../sentinel/secret.txt")),
    Case("whiteout-of-dotdot-overlay", one(reg(".wh...")), Refused(".wh..."),
         whiteouts="overlay"),
    Case("whiteout-through-symlink",
         lambda s: [tar(sym("s", s), reg("s/.wh.secret.txt"))], Refused("s/.wh.secret.txt")),
    Case("whiteout-through-symlink-overlay",
         lambda s: [tar(sym("s", s), reg("s/.wh.secret.txt"))], Refused("s/.wh.secret.txt"),
         whiteouts="overlay"),
    Case("opaque-through-symlink",
         lambda s: [tar(sym("s", s), reg("s/.wh..wh..opq"))], Refused("s/.wh..wh..opq")),
    Case("opaque-through-symlink-overlay",
         lambda s: [tar(sym("s", s), reg("s/.wh..wh..opq"))], Refused("s/.wh..wh..opq"),
         whiteouts="overlay"),
    Case("opaque-after-directory-swapped-to-symlink",
         lambda s: [tar(dir_("d"), sym("d", s), reg("d/.wh..wh..opq"))],
         Refused("d/.wh..wh..opq")),
    Case("opaque-root-keeps-symlink-contents",
         lambda s: [tar(reg("lower")), tar(sym("s", s), reg(".wh..wh..opq"))],
         Contained(lambda dest, sentinel: None)),
    Case("lower-layer-symlink-then-write",
         lambda s: [tar(sym("etc", s)), tar(reg("etc/passwd"))], Refused("etc/passwd")),
    Case("lower-layer-symlink-then-whiteout",
         lambda s: [tar(sym("etc", s)), tar(reg("etc/.wh.secret.txt"))],
         Refused("etc/.wh.secret.txt")),
    Case("lower-layer-symlink-replaced-by-directory",
         lambda s: [tar(sym("etc", s)), tar(dir_("etc"), reg("etc/x", b"inside"))],
         Contained(_is_file("etc/x", b"inside"))),
    Case("huge-size-claim", lambda s: [huge_size_claim()],
         Broken("big", "declares 10737418240 bytes")),
    Case("truncated-data", lambda s: [truncated_data()], Broken("victim", "declares 100000")),
    Case("truncated-header", lambda s: [truncated_header()], Broken("first")),
    Case("corrupt-header-checksum", lambda s: [corrupt_checksum()], Broken("first")),
    Case("truncated-gzip", lambda s: [truncated_gzip()], Broken("victim")),
    Case("pax-header-bomb", lambda s: [pax_header_bomb()], Broken("1 MiB")),
    Case("setuid-file-kept-inside",
         one(reg("bin/su", b"#!", 0o6755)),
         Contained(_is_node("bin/su", lambda mode: stat.S_IMODE(mode) == 0o6755))),
    Case("overlay-xattr-smuggling",
         one(pax(reg("f"), {"SCHILY.xattr.user.overlay.redirect": "/../../sentinel",
                            "SCHILY.xattr.trusted.overlay.metacopy": ""})),
         Contained(lambda dest, sentinel: None), whiteouts="overlay"),
]


# --------------------------------------------------------------------------- harness


def snapshot(root: Path, skip: Path) -> dict[str, tuple]:
    """Everything observable about every entry below ``root`` except the subtree ``skip``."""
    seen: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in [".", *dirnames, *filenames]:
            path = here / name if name != "." else here
            st = path.lstat()
            xattrs = {}
            if not stat.S_ISLNK(st.st_mode):
                xattrs = {x: os.getxattr(path, x) for x in os.listxattr(path)}
            content: object = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            seen[str(path.relative_to(root))] = (
                st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size, st.st_rdev,
                st.st_mtime_ns, st.st_ctime_ns, content, tuple(sorted(xattrs.items())))
    return seen


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path, Path]:
    outer = tmp_path / "outer"
    sentinel = outer / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "secret.txt").write_bytes(b"the sentinel secret\n")
    (sentinel / "sub" / "inner.txt").write_bytes(b"inner\n")
    os.chmod(sentinel / "secret.txt", 0o640)
    for path in (sentinel / "sub" / "inner.txt", sentinel / "secret.txt", sentinel / "sub",
                 sentinel):
        os.utime(path, (OLD, OLD))
    dest = outer / "dest"
    dest.mkdir()
    return tmp_path, dest, sentinel


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_tar(case: Case, sandbox: tuple[Path, Path, Path],
                     monkeypatch: pytest.MonkeyPatch) -> None:
    top, dest, sentinel = sandbox
    layers = case.layers(str(sentinel))
    if case.unprivileged:
        monkeypatch.setattr(extract, "_privilege",
                            lambda: extract._Privilege(ns_root=False, real_root=False))
    before = snapshot(top, dest)
    mode = case.whiteouts
    for lower in layers[:-1]:
        extract_layer(io.BytesIO(lower), dest, whiteouts=mode)  # type: ignore[arg-type]
    error: Exception | None = None
    try:
        extract_layer(io.BytesIO(layers[-1]), dest, whiteouts=mode)  # type: ignore[arg-type]
    except (UnsafeArchive, ArchiveError) as exc:
        error = exc

    assert snapshot(top, dest) == before, "something outside dest changed"
    expect = case.expect
    if isinstance(expect, Refused):
        assert isinstance(error, UnsafeArchive), f"expected a refusal, got {error!r}"
        assert error.member == expect.member
    elif isinstance(expect, Broken):
        assert isinstance(error, ArchiveError) and not isinstance(error, UnsafeArchive), error
        assert expect.member in str(error) and expect.detail in str(error)
    else:
        assert error is None, f"unexpected error: {error}"
        assert isinstance(expect, Contained)
        expect.check(dest, sentinel)


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 15
    assert len({case.id for case in CASES}) == len(CASES)
