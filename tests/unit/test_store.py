import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest

from engine import Engine
from engine.errors import DigestMismatch
from engine.store import Store

LAYERLAB = [sys.executable, "-m", "engine.cli"]


def small_tar(seed: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = f"file {seed}\n".encode()
        ti = tarfile.TarInfo(f"f{seed}")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_blobs_are_content_addressed_immutable_and_verified(tmp_path):
    store = Store(tmp_path)
    d = store.put_blob(b"hello")
    path = store.blob_path(d)
    assert path.read_bytes() == b"hello"
    assert not os.access(path, os.W_OK) or os.geteuid() == 0
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    assert store.put_blob(b"hello") == d
    with pytest.raises(DigestMismatch):
        store.put_blob(b"other", expected=d)
    with store.blob_writer() as w:
        w.write(b"partial")
    assert list(store.tmp_dir.iterdir()) == []  # an aborted writer leaves nothing


def test_metadata_is_sqlite_wal(tmp_path):
    store = Store(tmp_path)
    mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_default_home_follows_layerlab_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "h"))
    assert Engine().home == tmp_path / "h"
    monkeypatch.delenv("LAYERLAB_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert Engine().home == tmp_path / ".local" / "share" / "layerlab"


WORKER = textwrap.dedent("""
    import io, sys, tarfile
    from engine import Engine
    proc, n = sys.argv[1], int(sys.argv[2])
    eng = Engine()
    for i in range(n):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            data = f"{proc}-{i}".encode()
            ti = tarfile.TarInfo(f"file-{proc}-{i}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        buf.seek(0)
        r = eng.import_image(buf, f"conc/{proc}:v{i}")
        eng.tag(r.image_id, f"shared:{proc}-{i}")
""")


def test_two_processes_import_and_tag_at_once_lose_nothing(tmp_path):
    env = dict(os.environ, LAYERLAB_HOME=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, name, "50"], env=env) for name in ("a", "b")]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    eng = Engine(tmp_path)
    tags = {t for s in eng.images() for t in s.repo_tags}
    for proc in ("a", "b"):
        for i in range(50):
            assert f"conc/{proc}:v{i}" in tags
            assert f"shared:{proc}-{i}" in tags
    assert len(eng.images()) == 100
    report = eng.check()
    assert report.ok, report.problems


def test_kill_9_in_the_middle_of_an_import_leaves_the_store_clean(tmp_path):
    env = dict(os.environ, LAYERLAB_HOME=str(tmp_path))
    proc = subprocess.Popen(LAYERLAB + ["import", "-", "halfway:latest"], stdin=subprocess.PIPE, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    header = tarfile.TarInfo("big")
    header.size = 50_000_000
    proc.stdin.write(header.tobuf())
    proc.stdin.write(os.urandom(4_000_000))
    proc.stdin.flush()
    deadline = time.time() + 30
    while time.time() < deadline and not list((tmp_path / "tmp").glob("blob-*")):
        time.sleep(0.05)
    assert list((tmp_path / "tmp").glob("blob-*")), "the import never started writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    eng = Engine(tmp_path)
    assert eng.images() == []
    report = eng.check()
    assert report.ok, report.problems
    # and the store keeps working
    eng.import_image(io.BytesIO(small_tar(1)), "after:kill")
    assert eng.check().ok
    cli = subprocess.run(LAYERLAB + ["system", "check"], env=env, capture_output=True, text=True)
    assert cli.returncode == 0 and cli.stdout.startswith("OK:"), cli.stdout
