import gzip
import io
import os
import tarfile
import zlib

import pytest

from engine.digest import chain_ids, sha256_bytes
from engine.layer import Entry, decompressed, gzip_stream, measure_tar, tar_directory, write_tar


def make_tree(root):
    (root / "etc").mkdir()
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(1000))
    os.chmod(root / "bin" / "tool", 0o755)
    (root / "bin" / "link").symlink_to("/bin/tool")
    os.link(root / "bin" / "tool", root / "bin" / "hard")
    long_dir = root / ("d" * 120)
    long_dir.mkdir()
    (long_dir / ("f" * 120)).write_text("long")
    return root


def test_same_tree_gives_same_digest_and_mtimes_do_not_matter_when_clamped(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    os.utime(b / "etc" / "hosts", (2_000_000_000, 2_000_000_000))
    one, two = io.BytesIO(), io.BytesIO()
    d1 = tar_directory(a, one, epoch=1000)
    d2 = tar_directory(b, two, epoch=1000)
    assert d1 == d2
    assert one.getvalue() == two.getvalue()
    assert d1.diff_id == sha256_bytes(one.getvalue())
    assert d1.tar_size == len(one.getvalue())
    # without clamping, the changed mtime changes the digest
    assert tar_directory(a, None).diff_id != tar_directory(b, None).diff_id


def test_tar_is_sorted_normalised_and_readable(tmp_path):
    root = make_tree(tmp_path)
    buf = io.BytesIO()
    result = tar_directory(root, buf, epoch=1234)
    buf.seek(0)
    members = tarfile.open(fileobj=buf).getmembers()
    names = [m.name for m in members]
    assert names[0] == "bin" and "etc/hosts" in names
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == "" for m in members)
    assert all(m.mtime <= 1234 for m in members)
    by_name = {m.name: m for m in members}
    assert by_name["bin/link"].issym() and by_name["bin/link"].linkname == "/bin/tool"
    hard = [m for m in members if m.islnk()]
    assert len(hard) == 1 and hard[0].linkname in ("bin/hard", "bin/tool")
    assert ("d" * 120) + "/" + ("f" * 120) in names  # PAX long name
    assert by_name["bin/tool"].mode == 0o755
    # Docker's layer size counts regular file bytes only (hard links once)
    assert result.size == len("127.0.0.1 localhost\n") + 1004 + 4


def test_whiteouts_are_written_in_oci_form():
    entries = [Entry("etc", "dir", 0o755), Entry("etc/gone", "whiteout"), Entry("var/cache", "opaque")]
    buf = io.BytesIO()
    write_tar(entries, buf)
    buf.seek(0)
    names = [m.name for m in tarfile.open(fileobj=buf)]
    assert names == ["etc", "etc/.wh.gone", "var/cache/.wh..wh..opq"]


def test_xattrs_travel_as_pax_headers():
    e = Entry("f", "file", 0o644, size=1, data=b"x", xattrs=(("user.note", b"hello"),))
    buf = io.BytesIO()
    write_tar([e], buf)
    buf.seek(0)
    member = tarfile.open(fileobj=buf).getmembers()[0]
    assert member.pax_headers["SCHILY.xattr.user.note"] == "hello"


def test_measure_tar_matches_writer_and_detects_truncation(tmp_path):
    root = make_tree(tmp_path)
    buf = io.BytesIO()
    written = tar_directory(root, buf)
    assert measure_tar(io.BytesIO(buf.getvalue())) == written
    from engine.errors import ArchiveError
    with pytest.raises(ArchiveError):
        measure_tar(io.BytesIO(buf.getvalue()[:1500]))


def test_gzip_is_reproducible_with_zero_mtime():
    data = os.urandom(300_000)
    out1, out2 = io.BytesIO(), io.BytesIO()
    d1, n1 = gzip_stream(io.BytesIO(data), out1)
    d2, _ = gzip_stream(io.BytesIO(data), out2)
    assert d1 == d2 == sha256_bytes(out1.getvalue()) and n1 == len(out1.getvalue())
    raw = out1.getvalue()
    assert raw[4:8] == b"\0\0\0\0"  # header mtime 0
    assert gzip.decompress(raw) == data


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, lambda b: __import__("bz2").compress(b),
                                      lambda b: __import__("lzma").compress(b)])
def test_decompressed_detects_compression(compress):
    data = b"tar-ish content " * 1000
    assert decompressed(io.BytesIO(compress(data))).read() == data


def test_chain_ids_follow_the_spec():
    a, b, c = (sha256_bytes(x) for x in (b"a", b"b", b"c"))
    ab = sha256_bytes(f"{a} {b}".encode())
    assert chain_ids([a, b, c]) == [a, ab, sha256_bytes(f"{ab} {c}".encode())]
    assert chain_ids([]) == []
