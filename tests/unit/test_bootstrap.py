import io
import os
import platform
import shutil
import subprocess
import tarfile

import pytest

from engine import Engine
from engine.bootstrap import hello_program
from engine.images import load_config
from engine.spec import host_platform

pytestmark = pytest.mark.skipif(not (os.path.exists("/bin/busybox") or os.environ.get("LAYERLAB_BUSYBOX")),
                                reason="busybox-static is not installed")


def layer_members(eng, image):
    config = load_config(eng.store, eng.image_id(image))
    assert len(config.diff_ids) == 1
    with eng.store.open_blob(config.diff_ids[0]) as f:
        tf = tarfile.open(fileobj=io.BytesIO(f.read()))
        return {m.name: m for m in tf.getmembers()}, tf


def test_two_homes_give_the_same_image_ids(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    a, b = Engine(tmp_path / "a"), Engine(tmp_path / "b")
    ra, rb = a.bootstrap(), b.bootstrap()
    assert (ra.busybox, ra.hello_world) == (rb.busybox, rb.hello_world)
    assert ra.created and rb.created
    again = a.bootstrap()
    assert not again.created and again.busybox == ra.busybox
    assert len(a.images()) == 2 and a.check().ok


def test_same_binary_copied_elsewhere_gives_the_same_id_with_source_date_epoch(tmp_path, monkeypatch):
    copy = tmp_path / "busybox"
    shutil.copy("/bin/busybox", copy)  # a fresh mtime
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ids = Engine(tmp_path / "h1").bootstrap().busybox
    monkeypatch.setenv("LAYERLAB_BUSYBOX", str(copy))
    assert Engine(tmp_path / "h2").bootstrap().busybox == ids


def test_busybox_rootfs_skeleton(tmp_path):
    eng = Engine(tmp_path)
    eng.bootstrap()
    members, tf = layer_members(eng, "busybox")
    assert members["tmp"].mode == 0o1777 and members["tmp"].isdir()
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
    assert members["bin/busybox"].size == os.path.getsize("/bin/busybox")
    passwd = tf.extractfile(members["etc/passwd"]).read().decode()
    assert passwd.startswith("root:x:0:0:root:/root:/bin/sh\n") and "nobody:x:65534" in passwd
    assert "root:x:0:" in tf.extractfile(members["etc/group"]).read().decode()
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    config = load_config(eng.store, eng.image_id("busybox"))
    assert config.config.cmd == ("sh",)
    assert [h.comment for h in config.history] == ["Imported from -"]
    assert config.architecture == host_platform().architecture


@pytest.mark.skipif(platform.machine() != "x86_64", reason="runs the amd64 program natively")
def test_hello_world_program_runs_on_the_host(tmp_path):
    eng = Engine(tmp_path)
    eng.bootstrap()
    members, tf = layer_members(eng, "hello-world")
    assert list(members) == ["hello"] and members["hello"].mode == 0o755
    program = tmp_path / "hello"
    program.write_bytes(tf.extractfile(members["hello"]).read())
    program.chmod(0o755)
    out = subprocess.run([str(program)], capture_output=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout.startswith(b"\nHello from LayerLab!\n")
    assert load_config(eng.store, eng.image_id("hello-world")).config.cmd == ("/hello",)


def test_hello_program_for_arm64_is_a_valid_elf_header():
    prog = hello_program("arm64", b"hi\n")
    assert prog[:4] == b"\x7fELF" and prog[18] == 183 and prog.endswith(b"hi\n")
    with pytest.raises(Exception):
        hello_program("mips")
