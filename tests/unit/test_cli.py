"""The ``layerlab`` command: Docker's output, messages and exit codes."""
import io
import json
import os
import re
import subprocess
import sys

import pytest

from engine import Engine
from engine.cli import Streams, run

needs_busybox = pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static is not installed")


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(tmp_path):
    eng = Engine(tmp_path / "home")

    def call(*argv, stdin: bytes = b""):
        out, err = io.StringIO(), io.StringIO()
        binary = io.BytesIO()
        code = run(list(argv), Streams(stdout=out, stderr=err, stdin=io.BytesIO(stdin), stdout_binary=binary),
                   engine=eng)
        r = Result(code, out.getvalue(), err.getvalue())
        r.binary = binary.getvalue()
        return r

    call.engine = eng
    return call


@needs_busybox
def test_images_table_and_quiet(cli):
    assert cli("bootstrap").code == 0
    r = cli("images")
    lines = r.out.splitlines()
    assert lines[0] == "REPOSITORY    TAG       IMAGE ID       CREATED        SIZE" or \
        re.match(r"^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$", lines[0])
    assert re.match(r"^busybox +latest +[0-9a-f]{12} +\S.* ago +1\.\d\dMB$", [l for l in lines if "busybox" in l][0])
    q = cli("images", "-q").out.split()
    assert len(q) == 2 and all(re.fullmatch("[0-9a-f]{12}", x) for x in q)
    full = cli("images", "-q", "--no-trunc").out.split()
    assert all(x.startswith("sha256:") and len(x) == 71 for x in full)
    assert "DIGEST" in cli("images", "--digests").out.splitlines()[0]
    assert cli("images", "busybox").out.count("\n") == 2


@needs_busybox
def test_tag_rmi_output_and_errors(cli):
    cli("bootstrap")
    assert cli("tag", "busybox", "127.0.0.1:5000/whoami/bb:v1").code == 0
    r = cli("rmi", "127.0.0.1:5000/whoami/bb:v1")
    assert (r.code, r.out) == (0, "Untagged: 127.0.0.1:5000/whoami/bb:v1\n")
    r = cli("rmi", "nosuchimage")
    assert (r.code, r.err) == (1, "Error: No such image: nosuchimage\n")
    r = cli("tag", "busybox", "Bad")
    assert r.code == 1
    assert r.err == ('Error parsing reference: "Bad" is not a valid repository/tag: '
                     "invalid reference format: repository name must be lowercase\n")
    r = cli("tag", "nosuch", "x")
    assert (r.code, r.err) == (1, "Error response from daemon: No such image: nosuch\n")
    r = cli("rmi", "hello-world")
    assert r.out.splitlines()[0] == "Untagged: hello-world:latest"
    assert [l.split()[0] for l in r.out.splitlines()[1:]] == ["Deleted:", "Deleted:"]


def test_usage_errors_exit_125(cli):
    r = cli("images", "--bogus")
    assert (r.code, r.err) == (125, "unknown flag: --bogus\nSee 'layerlab images --help'.\n")
    r = cli("rmi")
    assert r.code == 125 and r.err.startswith('"layerlab rmi" requires at least 1 argument.')
    r = cli("frobnicate")
    assert r.code == 125


@needs_busybox
def test_history_matches_docker_layout(cli):
    cli("bootstrap")
    r = cli("history", "hello-world")
    lines = r.out.splitlines()
    assert re.match(r"^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$", lines[0])
    assert lines[1].split()[0] == cli.engine.image_id("hello-world")[7:19]
    assert "/bin/sh -c #(nop)  CMD [\"/hello\"]" in lines[1] and lines[1].rstrip().endswith("0B")
    assert lines[2].startswith("<missing>") and "COPY file:" in lines[2] and "…" in lines[2]
    assert len(cli("history", "--no-trunc", "hello-world").out.splitlines()[2]) > len(lines[2])
    assert cli("history", "-q", "hello-world").out.split()[1] == "<missing>"


@needs_busybox
def test_inspect_json_and_format(cli):
    cli("bootstrap")
    r = cli("inspect", "busybox")
    data = json.loads(r.out)
    assert data[0]["RepoTags"] == ["busybox:latest"] and data[0]["Config"]["Cmd"] == ["sh"]
    assert r.out.startswith("[\n    {\n        \"Id\": \"sha256:")
    assert cli("inspect", "-f", "{{.Config.Cmd}} {{json .RepoTags}}", "busybox").out == '[sh] ["busybox:latest"]\n'
    r = cli("inspect", "nosuch")
    assert (r.code, r.err, r.out) == (1, "Error: No such object: nosuch\n", "[]\n")
    r = cli("image", "inspect", "nosuch")
    assert r.err == "Error: No such image: nosuch\n"


def make_tar(tmp_path):
    import tarfile
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_text("imported\n")
    tar = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        tf.add(root, arcname=".")
    return tar


def test_import_with_changes_and_message(cli, tmp_path):
    tar = make_tar(tmp_path)
    r = cli("import", "-c", 'CMD ["cat", "/etc/motd"]', "-c", "ENV A=1", "-m", "my import", str(tar), "imp:v1")
    assert r.code == 0 and re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.out)
    info = json.loads(cli("inspect", "imp:v1").out)[0]
    assert info["Config"]["Cmd"] == ["cat", "/etc/motd"] and info["Config"]["Env"] == ["A=1"]
    assert cli("history", "imp:v1").out.splitlines()[1].rstrip().endswith("my import")
    r = cli("import", "-", "fromstdin", stdin=tar.read_bytes())
    assert r.code == 0
    assert "Imported from -" in cli("history", "fromstdin").out
    r = cli("import", "-c", "ADD x /", str(tar))
    assert r.code == 1 and "ADD is not a valid change command" in r.err
    r = cli("import", str(tmp_path / "missing.tar"))
    assert r.code == 1 and "no such file or directory" in r.err
    r = cli("import", str(tar), "Bad:Name")
    assert r.code == 1 and "invalid reference format" in r.err
    assert {s.repo_tags for s in cli.engine.images()} == {("imp:v1",), ("fromstdin:latest",)}


@needs_busybox
def test_system_check_reports_a_corrupt_blob(cli):
    cli("bootstrap")
    assert cli("system", "check").code == 0
    layer = cli.engine.store.image_diff_ids(cli.engine.image_id("hello-world"))[0]
    path = cli.engine.store.blob_path(layer)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF
    path.write_bytes(bytes(data))
    r = cli("system", "check")
    assert r.code == 1
    assert f"corrupt-blob: {layer}: content hashes to sha256:" in r.out
    cli.engine.store.set_tag("docker.io/library/ghost:latest", "docker.io/library/ghost", "sha256:" + "0" * 64)
    r = cli("system", "check")
    assert "dangling-tag: docker.io/library/ghost:latest" in r.out


@needs_busybox
def test_image_prune_prompts_and_respects_no(cli):
    cli("bootstrap")
    from engine.format import human_size
    total = sum(s.size for s in cli.engine.images())
    r = cli("image", "prune", stdin=b"n\n")
    assert r.out.startswith("WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ")
    r = cli("image", "prune", "-a", "-f")
    assert r.out.startswith("Deleted Images:\nuntagged: ")
    assert r.out.endswith(f"\nTotal reclaimed space: {human_size(total)}\n")
    assert cli("images", "-q").out == ""


@needs_busybox
def test_console_script_runs_as_a_process(tmp_path):
    env = dict(os.environ, LAYERLAB_HOME=str(tmp_path))
    exe = os.path.join(os.path.dirname(sys.executable), "layerlab")
    assert subprocess.run([exe, "bootstrap", "-q"], env=env).returncode == 0
    r = subprocess.run([exe, "images", "-q"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and len(r.stdout.split()) == 2
    r = subprocess.run([exe, "rmi", "nosuch"], env=env, capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (1, "Error: No such image: nosuch\n")


@needs_busybox
def test_save_and_export_check_the_output_path_first(cli, tmp_path):
    cli.engine.bootstrap()
    r = cli("save", "-o", str(tmp_path / "missing" / "x.tar"), "busybox")
    assert (r.code, r.out) == (1, "")
    assert r.err == f'Error: failed to save image: invalid output path: directory "{tmp_path / "missing"}" does not exist\n'
    r = cli("save", "-o", "/dev/null", "busybox")
    assert r.code == 1 and 'invalid output path: "/dev/null" must be a directory or a regular file' in r.err
    assert not (tmp_path / "missing").exists()
    r = cli("create", "--name", "exp", "busybox")
    assert r.code == 0
    r = cli("export", "-o", str(tmp_path / "nowhere" / "c.tar"), "exp")
    assert r.code == 1 and r.err.startswith("Error: failed to export container: invalid output path: directory")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("image, resolves_to, no_trunc, shown", [
    ("busybox", "ID", False, "busybox"),                                   # as typed
    ("busybox:latest", "ID", False, "busybox:latest"),
    ("docker.io/library/busybox:latest", "ID", False, "busybox:latest"),   # familiar form
    ("busybox@sha256:" + "ab" * 32, "ID", False, "busybox"),               # digest dropped
    ("ID", "ID", False, "52e32dc12edb"),                                   # a builder's container: short ID
    ("52e32dc12edb", "ID", False, "52e32dc12edb"),
    ("mybox:v1", None, False, "52e32dc12edb"),                             # the tag is gone: the ID
    ("mybox:v1", "sha256:" + "cd" * 32, False, "52e32dc12edb"),            # the tag moved: the ID
    ("mybox:v1", None, True, "ID"),
    ("docker.io/library/busybox:latest", "ID", True, "docker.io/library/busybox:latest"),
])
def test_ps_image_column_follows_moby_and_docker_cli(image, resolves_to, no_trunc, shown):
    from engine.cli_containers import ps_image

    image_id = "sha256:52e32dc12edb" + "0" * 52
    sub = {"ID": image_id}
    assert ps_image(sub.get(image, image), image_id, sub.get(resolves_to, resolves_to), no_trunc) == \
        sub.get(shown, shown)
