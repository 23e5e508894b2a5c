"""Container verbs end to end on the real sandbox: run, ps, rm, diff, commit, cp, export, errors."""
import io
import json
import os
import re
import tarfile

import pytest

from engine import Engine
from engine.cli import Streams, run

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static is not installed")]


class Out:
    def __init__(self, code, out, err, binary):
        self.code, self.out, self.err, self.binary = code, out, err, binary


@pytest.fixture(params=["auto", "copy"])
def cli(request, tmp_path, monkeypatch):
    if request.param == "copy":
        monkeypatch.setenv("LAYERLAB_ROOTFS", "copy")
    eng = Engine(tmp_path / "home")
    eng.bootstrap()

    def call(*argv, stdin=b""):
        out, err = io.StringIO(), io.StringIO()
        bout, berr = io.BytesIO(), io.BytesIO()
        code = run(list(argv), Streams(stdout=out, stderr=err, stdin=io.BytesIO(stdin), stdout_binary=bout,
                                      stderr_binary=berr), engine=eng)
        return Out(code, out.getvalue() + bout.getvalue().decode(), err.getvalue() + berr.getvalue().decode(),
                   bout.getvalue())

    call.engine = eng
    call.mode = request.param
    return call


def test_run_streams_output_and_returns_the_exit_code(cli):
    r = cli("run", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.code, r.out, r.err) == (3, "out\n", "err\n")
    r = cli("run", "--rm", "hello-world")
    assert r.code == 0 and "Hello from LayerLab!" in r.out
    assert len(cli.engine.containers(all=True)) == 1  # --rm removed the second one


def test_env_workdir_user_entrypoint_hostname(cli):
    r = cli("run", "--rm", "-e", "A=1", "-e", "PATH=/usr/bin:/bin", "-h", "myhost", "busybox", "env")
    lines = r.out.splitlines()
    assert lines[:3] == ["PATH=/usr/bin:/bin", "HOSTNAME=myhost", "A=1"] and "HOME=/root" in lines
    assert cli("run", "--rm", "-w", "/tmp/work", "busybox", "pwd").out == "/tmp/work\n"
    assert cli("run", "--rm", "-u", "nobody", "busybox", "id").out.startswith("uid=65534(nobody) gid=65534")
    assert cli("run", "--rm", "-u", "1234:50", "busybox", "id", "-u").out == "1234\n"
    assert cli("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b").out == "a b\n"
    r = cli("run", "--rm", "busybox", "hostname")
    assert re.fullmatch(r"[0-9a-f]{12}\n", r.out)


def test_env_file_and_interactive_stdin(cli, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\n")
    assert "FROM_FILE=yes" in cli("run", "--rm", "--env-file", str(env_file), "busybox", "env").out
    r = cli("run", "--rm", "-i", "busybox", "sh", stdin=b"echo from stdin; exit 4\n")
    assert (r.code, r.out) == (4, "from stdin\n")


def test_ps_shows_dockers_columns(cli):
    cli("run", "--name", "web1", "busybox", "sh", "-c", "echo committed > /committed.txt")
    r = cli("ps", "-a")
    header, row = r.out.splitlines()[:2]
    assert re.match(r"CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES", header)
    ago = r"(Less than a second|\d+ seconds?) ago"
    assert re.match(rf"[0-9a-f]{{12}} +busybox +\"sh -c 'echo committ…\" +{ago} +Exited \(0\) {ago} +web1$", row)
    assert cli("ps").out.splitlines()[1:] == []
    assert cli("ps", "-aq").out.strip() == cli.engine.container("web1").short_id
    r = cli("ps", "-a", "--no-trunc")
    assert cli.engine.container("web1").id in r.out


def test_generated_names_look_like_dockers(cli):
    cli("run", "busybox", "true")
    name = cli.engine.containers(all=True)[0].name
    assert re.fullmatch(r"[a-z]+_[a-z]+\d?", name)


def test_diff_and_commit_as_in_the_transcript(cli):
    cli("run", "--name", "web1", "busybox", "sh", "-c", "echo committed > /committed.txt; rm /etc/group; "
        "mkdir -p /var/www && echo x > /var/www/i")
    diff = cli("diff", "web1").out.splitlines()
    assert diff == ["A /committed.txt", "C /etc", "D /etc/group", "C /var", "A /var/www", "A /var/www/i"] or \
        diff == ["A /committed.txt", "C /etc", "D /etc/group", "C /var", "C /var/www", "A /var/www/i"]
    r = cli("commit", "-m", "add committed.txt", "-a", "whoami", "web1", "mycommit:v1")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.out)
    hist = cli("history", "mycommit:v1").out.splitlines()
    assert re.match(r"[0-9a-f]{12} .* sh -c echo committed > /committed.txt; rm /e… +\d+B +add committed.txt$",
                    hist[1])
    info = json.loads(cli("inspect", "mycommit:v1").out)[0]
    assert info["Author"] == "whoami" and info["Config"]["Cmd"][0] == "sh"
    assert info["Parent"] == cli.engine.image_id("busybox")
    out = cli("run", "--rm", "mycommit:v1", "sh", "-c", "cat /committed.txt; ls /etc/group 2>&1; cat /var/www/i")
    assert out.out.startswith("committed\n") and "No such file" in out.out and out.out.endswith("x\n")
    # committing an unchanged container adds no layer (the classic builder's metadata steps)
    cli("run", "--name", "quiet", "busybox", "true")
    image = cli("commit", "-c", "CMD [\"echo\", \"changed\"]", "quiet").out.strip()
    cfg = json.loads(cli("inspect", image).out)[0]
    assert cfg["RootFS"]["Layers"] == json.loads(cli("inspect", "busybox").out)[0]["RootFS"]["Layers"]
    assert cli("run", "--rm", image).out == "changed\n"


def test_cp_both_ways_and_export(cli, tmp_path):
    cli("run", "--name", "box", "busybox", "sh", "-c", "mkdir /data && echo inside > /data/f")
    dest = tmp_path / "out"
    dest.mkdir()
    assert cli("cp", "box:/data", str(dest)).code == 0
    assert (dest / "data" / "f").read_text() == "inside\n"
    assert cli("cp", "box:/data/f", str(tmp_path / "renamed")).code == 0
    assert (tmp_path / "renamed").read_text() == "inside\n"
    src = tmp_path / "host.txt"
    src.write_text("from host\n")
    assert cli("cp", str(src), "box:/data/").code == 0
    assert "A /data/host.txt" in cli("diff", "box").out
    buf = io.BytesIO()
    cli.engine.export("box", buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        names = set(tf.getnames())
        assert {"bin/busybox", "data/f", "data/host.txt", "etc/passwd"} <= names
        assert tf.extractfile("data/host.txt").read() == b"from host\n"


def test_volumes_rw_and_ro(cli, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("host data\n")
    r = cli("run", "--rm", "-v", f"{vol}:/mnt/v", "busybox", "sh", "-c", "cat /mnt/v/in; echo new > /mnt/v/out")
    assert r.out == "host data\n" and (vol / "out").read_text() == "new\n"
    r = cli("run", "--rm", "-v", f"{vol}:/mnt/v:ro", "busybox", "sh", "-c", "echo no > /mnt/v/x")
    assert r.code != 0 and not (vol / "x").exists()


@pytest.mark.parametrize("argv, code, message", [
    (["run", "--pull", "never", "nosuchimage"], 125, "No such image: nosuchimage:latest"),
    (["run", "-p", "80x", "busybox", "true"], 125, "Invalid containerPort: 80x"),
    (["run", "-u", "nosuchuser", "busybox", "true"], 125,
     "unable to find user nosuchuser: no matching entries in passwd file"),
    (["run", "busybox", "nosuchcmd"], 127, 'exec: "nosuchcmd": executable file not found in $PATH'),
    (["run", "busybox", "/etc/passwd"], 126, "permission denied"),
    (["run", "--name", "bad name!", "busybox", "true"], 125, "Invalid container name"),
    (["run", "--network", "nosuchnet", "busybox", "true"], 125, "network nosuchnet not found"),
])
def test_bad_input_gives_one_line_and_leaves_nothing(cli, argv, code, message):
    before = {c.id for c in cli.engine.containers(all=True)}
    r = cli(*argv)
    assert r.code == code
    assert message in r.err and r.err.count("\n") == 1, r.err
    assert {c.id for c in cli.engine.containers(all=True)} == before
    cdir = cli.engine.home / "containers"
    assert sorted(os.listdir(cdir) if cdir.exists() else []) == sorted(before)


def test_name_conflict_and_rm(cli):
    cli("run", "--name", "web1", "busybox", "true")
    first = cli.engine.container("web1").id
    r = cli("run", "--name", "web1", "busybox", "true")
    assert r.code == 125
    assert r.err == (f'layerlab: Error response from daemon: Conflict. The container name "/web1" is already in use '
                     f'by container "{first}". You have to remove (or rename) that container to be able to reuse '
                     "that name.\n")
    removed = cli("rm", "web1")
    assert (removed.code, removed.out) == (0, "web1\n")
    again = cli("rm", "web1")
    assert (again.code, again.err) == (1, "Error: No such container: web1\n")
    assert not (cli.engine.home / "containers" / first).exists()


def test_rmi_refuses_an_image_a_container_uses(cli):
    cli("run", "--name", "web1", "busybox", "true")
    r = cli("rmi", "busybox")
    assert r.code == 1
    assert r.err == ('Error response from daemon: conflict: unable to remove repository reference "busybox" '
                     f"(must force) - container {cli.engine.container('web1').short_id} is using its referenced "
                     f"image {cli.engine.image_id('busybox')[7:19]}\n")
    cli("rm", "web1")
    assert cli("rmi", "busybox").code == 0


def test_rmi_removes_snapshots_no_image_or_container_needs(cli):
    cli("run", "--name", "maker", "busybox", "sh", "-c", "echo x > /x")
    image = cli("commit", "maker", "made:v1").out.strip()
    cli("run", "--rm", "made:v1", "true")  # extracts the new layer's snapshot
    snapshots = cli.engine.home / "snapshots"
    before = set(os.listdir(snapshots))
    assert len(before) == 2
    cli("rm", "maker")
    assert cli("rmi", "made:v1").code == 0
    after = set(os.listdir(snapshots))
    assert len(after) == 1 and after < before  # busybox's snapshot stays: busybox still exists
    assert not cli.engine.store.has_image(image)
