"""Detached containers, ports, logs, exec, stop/kill/wait, interrupts and leaks, through the CLI."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from engine import Engine

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static is not installed")]


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    eng = Engine(h)
    eng.bootstrap()
    yield h
    for c in Engine(h).containers(all=True):  # a failed test must not leave containers running
        Engine(h).remove_container(c.id, force=True)


def ll(home, *argv, check=True, timeout=60, **kw):
    env = dict(os.environ, LAYERLAB_HOME=str(home))
    r = subprocess.run([sys.executable, "-m", "engine.cli", *argv], env=env, capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"layerlab {' '.join(argv)} failed ({r.returncode}): {r.stderr}")
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port: int, path: str = "/") -> str:
    deadline = time.time() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def namespaces(home) -> set[str]:
    """The pid namespaces of this home's containers (read from their state while they exist)."""
    import json

    out = set()
    for state in (home / "containers").glob("*/state/state.json"):
        out.add(json.loads(state.read_text())["pidns"])
    return out


def pids_in(spaces: set[str]) -> list[int]:
    """Host pids of every process living in one of the pid namespaces ``spaces``."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") in spaces:
                out.append(int(pid))
        except OSError:
            continue
    return out


def test_published_port_serves_a_page_over_loopback(home):
    port = free_port()
    cid = ll(home, "run", "-d", "-p", f"127.0.0.1:{port}:80", "--name", "web", "busybox",
             "sh", "-c", "mkdir -p /www && echo '<h1>inside</h1>' > /www/index.html && httpd -f -p 80 -h /www").stdout.strip()
    assert len(cid) == 64
    assert fetch(port) == "<h1>inside</h1>\n"
    ps = ll(home, "ps").stdout.splitlines()
    assert f"127.0.0.1:{port}->80/tcp" in ps[1] and ps[1].endswith("web") and "Up " in ps[1]
    assert ll(home, "port", "web").stdout == f"80/tcp -> 127.0.0.1:{port}\n"
    ll(home, "rm", "-f", "web")
    with socket.socket() as s:  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_two_containers_listen_on_80_published_on_different_ports(home):
    p1, p2 = free_port(), free_port()
    for name, port in (("one", p1), ("two", p2)):
        ll(home, "run", "-d", "-p", f"127.0.0.1:{port}:80", "--name", name, "busybox", "sh", "-c",
           f"mkdir /w && echo {name} > /w/index.html && httpd -f -p 80 -h /w")
    assert fetch(p1) == "one\n" and fetch(p2) == "two\n"
    ll(home, "rm", "-f", "one", "two")


def test_port_in_use_is_refused_and_leaves_nothing(home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = ll(home, "run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f", check=False)
    assert r.returncode == 125
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in r.stderr
    assert r.stderr.count("\n") == 1
    assert ll(home, "ps", "-aq").stdout == ""


def test_publish_all_uses_exposed_ports(home):
    ll(home, "run", "-d", "-P", "--expose", "80", "--name", "web2", "busybox", "httpd", "-f", "-p", "80")
    line = ll(home, "port", "web2").stdout.strip()
    assert line.startswith("80/tcp -> 0.0.0.0:")
    port = int(line.rsplit(":", 1)[1])
    assert "404" in fetch_status(port)
    ll(home, "rm", "-f", "web2")


def fetch_status(port: int) -> str:
    try:
        fetch(port, "/missing")
    except urllib.error.HTTPError as e:
        return str(e.code)
    return "200"


def test_logs_exec_stop_wait_kill(home):
    ll(home, "run", "-d", "--name", "talker", "busybox", "sh", "-c",
       "trap 'echo bye; exit 0' TERM; echo one; echo two >&2; echo three; while true; do sleep 0.1; done")
    deadline = time.time() + 10
    while "three" not in ll(home, "logs", "talker").stdout and time.time() < deadline:
        time.sleep(0.05)
    r = ll(home, "logs", "talker")
    assert r.stdout == "one\nthree\n" and r.stderr == "two\n"
    last = ll(home, "logs", "--tail", "1", "talker")  # the last line, whichever stream it came on
    assert last.stdout + last.stderr in ("three\n", "two\n")
    r = ll(home, "exec", "talker", "sh", "-c", "echo pid1=$(cat /proc/1/comm); exit 5", check=False)
    assert (r.returncode, r.stdout) == (5, "pid1=sh\n")
    r = ll(home, "exec", "-e", "X=from-exec", "-w", "/tmp", "talker", "sh", "-c", "echo $X $(pwd)")
    assert r.stdout == "from-exec /tmp\n"
    assert ll(home, "stop", "-t", "5", "talker").stdout == "talker\n"
    assert ll(home, "wait", "talker").stdout == "0\n"
    assert "bye" in ll(home, "logs", "talker").stdout
    assert ll(home, "ps", "-a").stdout.splitlines()[1].split("   ")[4].startswith("Exited (0)")
    r = ll(home, "exec", "talker", "true", check=False)
    assert r.returncode == 1 and "is not running" in r.stderr
    ll(home, "start", "talker")
    ll(home, "kill", "talker")
    assert ll(home, "wait", "talker").stdout == "137\n"
    r = ll(home, "kill", "talker", check=False)
    assert r.returncode == 1 and "is not running" in r.stderr


def test_detached_container_outlives_the_process_that_started_it(home):
    ll(home, "run", "-d", "--name", "survivor", "busybox", "sleep", "100")
    time.sleep(0.2)
    eng = Engine(home)
    assert eng.container("survivor").running
    ll(home, "rm", "-f", "survivor")


def test_rm_f_leaves_no_process_and_system_check_is_clean(home):
    ll(home, "run", "-d", "--name", "aa", "busybox", "sh", "-c", "sleep 100 & sleep 100 & wait")
    ll(home, "run", "-d", "--name", "bb", "busybox", "httpd", "-f", "-p", "80")
    time.sleep(0.2)
    spaces = namespaces(home)
    assert len(spaces) == 2 and len(pids_in(spaces)) >= 4
    r = ll(home, "rm", "web", check=False)
    assert r.stderr == "Error: No such container: web\n"
    r = ll(home, "rm", "aa", check=False)
    assert r.returncode == 1 and "You cannot remove a running container" in r.stderr
    ll(home, "rm", "-f", "aa", "bb")
    deadline = time.time() + 2
    while pids_in(spaces) and time.time() < deadline:
        time.sleep(0.05)
    assert pids_in(spaces) == []
    check = ll(home, "system", "check", check=False)
    assert check.returncode == 0, check.stdout
    assert os.listdir(home / "containers") == []


def test_system_check_reports_leftovers(home):
    (home / "containers" / ("0" * 64)).mkdir(parents=True)
    r = ll(home, "system", "check", check=False)
    assert r.returncode == 1 and "leftover-container-dir" in r.stdout


def test_interrupt_kills_the_whole_foreground_container_within_a_second(home):
    env = dict(os.environ, LAYERLAB_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "busybox", "sh", "-c",
                             "sleep 100 & sleep 100 & echo ready; wait"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    spaces = namespaces(home)
    assert len(spaces) == 1 and len(pids_in(spaces)) >= 3
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    while pids_in(spaces) and time.monotonic() - start < 1.0:
        time.sleep(0.02)
    assert pids_in(spaces) == [], "container processes survived the interrupt"
    assert proc.wait(timeout=10) == 130


def test_start_attach_and_create(home):
    cid = ll(home, "create", "--name", "c1", "busybox", "echo", "from create").stdout.strip()
    ps = ll(home, "ps", "-a").stdout.splitlines()[1]
    assert ps.startswith(cid[:12]) and " Created " in ps
    r = ll(home, "start", "-a", "c1")
    assert (r.returncode, r.stdout) == (0, "from create\n")
    r = ll(home, "start", "-a", "nonexistent", check=False)
    assert r.returncode == 1
    assert r.stderr == ("Error response from daemon: No such container: nonexistent\n"
                        "Error: failed to start containers: nonexistent\n")


def test_logs_follow_streams_until_the_container_ends(home):
    ll(home, "run", "-d", "--name", "ticker", "busybox", "sh", "-c",
       "for i in 1 2 3; do echo tick $i; sleep 0.2; done")
    r = ll(home, "logs", "-f", "ticker", timeout=30)  # returns only once the container has ended
    assert r.stdout == "tick 1\ntick 2\ntick 3\n"
    assert not Engine(home).container("ticker").running


def test_export_to_a_file_and_kill_with_a_signal_name(home, tmp_path):
    import tarfile

    ll(home, "run", "-d", "--name", "exp", "busybox", "sh", "-c",
       "echo kept > /kept; trap 'exit 42' USR1; while true; do sleep 0.1; done")
    time.sleep(0.3)
    assert ll(home, "kill", "-s", "USR1", "exp").stdout == "exp\n"
    assert ll(home, "wait", "exp").stdout == "42\n"
    out = tmp_path / "exp.tar"
    ll(home, "export", "-o", str(out), "exp")
    with tarfile.open(out) as tf:
        assert tf.extractfile("kept").read() == b"kept\n"
        assert "bin/busybox" in tf.getnames()
    r = ll(home, "kill", "-s", "NOSUCH", "exp", check=False)
    assert r.returncode != 0 and "Invalid signal" in r.stderr


def test_wait_right_after_a_detached_run_gets_the_real_exit_code(home):
    """Between pid 1's end and its shim writing ``exit_code`` the container is still finishing, not
    lost: ``wait`` (and any ``ps`` meanwhile) must not record 137. Checked from a process with a
    second thread, as a Jupyter kernel is."""
    from engine.runtime.manager import RunOptions

    eng = Engine(home)
    eng.bootstrap()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        codes = []
        for _ in range(8):
            c = eng.run_detached(RunOptions(image="busybox", command=("sh", "-c", "echo ran; exit 3")))
            codes.append(eng.wait(c.id))
            codes.append(eng.container(c.id).exit_code)
            eng.remove_container(c.id)
    finally:
        stop.set()
    assert codes == [3] * 16
