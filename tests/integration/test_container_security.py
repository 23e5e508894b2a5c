"""Escape attempts through the ``layerlab`` CLI, each checked on the host side, as root and rootless.

Every test runs twice: ``root`` (the project's interpreter as real root, the way CI runs the suite)
and ``rootless`` (the ``unprivileged_user`` fixture's user running ``/usr/bin/python3 -m engine.cli``
on a private copy of the engine).  A container must not create or change a file outside its rootfs
and its volumes, see or signal host processes, change the host's hostname, mount anything visible on
the host, write ``/sys`` or ``/proc/sysrq-trigger``, or outlive ``rm -f``.  Files are checked with a
:class:`~tests.integration._container_cli.Sentinel`: a host directory owned by the invoking user
(so a rootless escape could write it) whose listing, contents, modes, link counts and times must
not change.  Run/create errors must be one Docker-style line, a non-zero exit and leave nothing.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import socket
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration._container_cli import (
    LayerLab,
    alive,
    kill_process,
    make_root_runner,
    make_rootless_runner,
    mountinfo,
    pids_in_namespace,
    suspicious_mounts,
    system_python_ok,
    teardown,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static is not installed")]


@pytest.fixture(scope="module", params=["root", "rootless"])
def ll(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LayerLab]:
    """``layerlab`` as real root or as the unprivileged user, with a bootstrapped home of its own."""
    if os.geteuid() != 0:
        pytest.skip("the root and rootless variants both need the suite to run as root")
    if request.param == "root":
        runner = make_root_runner(tmp_path_factory.mktemp("security-root"))
    else:
        user = request.getfixturevalue("unprivileged_user")
        why = system_python_ok(user)
        if why:
            pytest.skip(why)
        runner = make_rootless_runner(user)
    try:
        runner("bootstrap", check=True, timeout=60)
        yield runner
    finally:
        teardown(runner)


@pytest.fixture(autouse=True)
def _no_container_survives(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "ll" in request.fixturenames:
        request.getfixturevalue("ll").remove_all()


@pytest.fixture
def marker() -> str:
    return f"llmark{uuid.uuid4().hex[:12]}"


def sh(ll: LayerLab, script: str, *options: str):
    """``layerlab run --rm [options] busybox sh -c script``."""
    return ll("run", "--rm", *options, "busybox", "sh", "-c", script)


def detached(ll: LayerLab, script: str, *options: str) -> str:
    """Full id of a ``run -d`` container running ``sh -c script``."""
    cid = ll("run", "-d", *options, "busybox", "sh", "-c", script, check=True).out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), cid
    return cid


def wait_for_log(ll: LayerLab, cid: str, text: str, timeout: float = 10) -> str:
    out = ""

    def seen() -> bool:
        nonlocal out
        out = ll("logs", cid).out
        return text in out

    assert wait_until(seen, timeout, 0.05), f"{text!r} never appeared in the logs: {out!r}"
    return out


# --- files outside the rootfs and the volumes ----------------------------------------------------

def test_write_through_proc_self_root_dotdot(ll: LayerLab) -> None:
    s = ll.sentinel()
    p = s.path
    r = sh(ll, f"""
        mkdir -p {p}/sub
        echo pwn > /proc/self/root/../../{p}/pwned
        echo pwn > /proc/self/root/../../..{p}/public
        echo pwn >> /proc/self/root/../../../../../../..{p}/secret
        chmod 777 /proc/self/root/..{p}/secret
        touch /proc/self/cwd/../../..{p}/touched
        rm -f /proc/self/root/../..{p}/sub/nested
        mkdir -p /proc/self/root/../..{p}/sub/newdir
        cat /proc/self/root/../../{p}/pwned
        echo done""")
    assert r.code == 0 and r.out.endswith("pwn\ndone\n"), r  # the writes happened, inside the container
    s.assert_unchanged(r)


def test_write_through_proc_pid_root_and_cwd(ll: LayerLab) -> None:
    s = ll.sentinel()
    p = s.path
    cid = detached(ll, "sleep 60")
    script = f"""
        for d in /proc/[0-9]*; do
            n=${{d#/proc/}}
            echo pwn > $d/root{p}/pwned-$n
            echo pwn > $d/root/../../..{p}/public
            echo pwn > $d/cwd/../../..{p}/cwd-$n
            ln -s / $d/root{p}/link-$n
        done
        echo pwn >> /proc/1/root{p}/secret
        ls /proc/1/root{p}
        echo done"""
    r = ll("exec", cid, "sh", "-c", script)
    assert r.code == 0 and r.out.endswith("done\n"), r
    assert s.secret not in r.out + r.err
    s.assert_unchanged(r)


def test_write_through_symlinks_to_the_root(ll: LayerLab) -> None:
    s = ll.sentinel()
    v = ll.sentinel("ll-volparent-", volume="vol")
    p = s.path
    r = sh(ll, f"""
        mkdir -p {p}/sub
        ln -s / /hostroot
        ln -s {p} /sdir
        ln -s ../../../../../../../../../../.. /up
        echo pwn > /hostroot{p}/pwned
        echo pwn >> /sdir/public
        echo pwn > /up{p}/up-pwned
        mkdir -p /sdir/sub/newdir
        cp /etc/passwd /sdir/
        ln -s {p} /vol/out
        ln -s / /vol/root
        echo pwn > /vol/out/via-volume
        echo pwn > /vol/root{p}/via-volume-root
        cat /hostroot{p}/secret /sdir/secret /vol/out/secret
        cat /hostroot{p}/pwned
        echo done""", "-v", f"{v.volume}:/vol")
    assert r.code == 0 and r.out.endswith("pwn\ndone\n"), r
    assert s.secret not in r.out + r.err
    s.assert_unchanged(r)
    v.assert_unchanged(r)


def test_dotdot_chains_from_the_root_and_from_a_volume(ll: LayerLab) -> None:
    v = ll.sentinel("ll-volparent-", volume="vol")
    p = v.path
    r = sh(ll, f"""
        cd / && echo pwn > ../../../../../../..{p}/pwned
        cd /tmp && echo pwn > ../../../../../../..{p}/public
        cd /vol && echo pwn > ../secret && echo pwn > ../../../..{p}/secret
        echo pwn > /vol/../../../../..{p}/pwned2
        mkdir -p /vol/../../../..{p}/sub/newdir
        cat /vol/../secret
        cd /vol && cat ../../../../..{p}/public
        echo done""", "-v", f"{v.volume}:/vol")
    assert r.code == 0 and r.out.endswith("done\n"), r
    assert v.secret not in r.out + r.err
    assert "public data" not in r.out
    v.assert_unchanged(r)


def test_hardlinks_to_the_volume_parent_fail_or_stay_inside(ll: LayerLab) -> None:
    v = ll.sentinel("ll-volparent-", volume="vol")
    p = v.path
    r = sh(ll, f"""
        ln /vol/../secret /vol/hl1
        ln {p}/secret /vol/hl2
        ln /proc/self/root{p}/secret /vol/hl3
        ln /proc/1/root/../secret /vol/hl4
        cd /vol && ln ../secret hl5
        ln -s {p}/secret /vol/sym && ln /vol/sym /vol/hl6
        ln /vol/../../../..{p}/public /vol/hl7
        ln /vol/hl6 /hl8
        cat /vol/* /hl8
        echo done""", "-v", f"{v.volume}:/vol")
    assert r.code == 0 and r.out.endswith("done\n"), r
    assert v.secret not in r.out + r.err
    v.assert_unchanged(r)  # secret's and public's link counts (and ctimes) included
    outside = {(st.st_dev, st.st_ino) for st in (os.lstat(p / "secret"), os.lstat(p / "public"))}
    for entry in v.volume.iterdir():
        st = os.lstat(entry)
        assert (st.st_dev, st.st_ino) not in outside, f"{entry} is a hard link to a host file outside the volume"
        if entry.is_file() and not entry.is_symlink():
            assert v.secret not in entry.read_text(errors="replace")


# --- docker cp and container symlinks --------------------------------------------------------------

def _leaks(dest: Path, secret: str) -> list[str]:
    """Regular files at or under ``dest`` holding the host secret (symlinks are not followed)."""
    if dest.is_symlink() or not dest.exists():
        return []
    paths = [str(dest)] if dest.is_file() else [
        os.path.join(dirpath, name) for dirpath, _, names in os.walk(dest) for name in names]
    out = []
    for path in paths:
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                if secret.encode() in f.read():
                    out.append(path)
    return out


def test_cp_from_a_symlink_in_a_volume_reads_nothing_outside_it(ll: LayerLab) -> None:
    v = ll.sentinel("ll-volparent-", volume="vol")
    dest = ll.make_dir("ll-cpdest-")
    p = v.path
    cid = detached(ll, f"ln -s {p}/secret /vol/link; ln -s / /vol/root; ln -s .. /vol/parent; echo ready; sleep 60",
                   "-v", f"{v.volume}:/vol")
    wait_for_log(ll, cid, "ready")
    results = [ll("cp", f"{cid}:{src}", str(dest / name)) for src, name in (
        ("/vol/link", "a"), (f"/vol/root{p}/secret", "b"), ("/vol/parent/secret", "c"), ("/vol", "d"),
        ("/vol/root/", "e"))]
    assert _leaks(dest, v.secret) == [], "\n".join(map(str, results))
    link = dest / "a"
    if os.path.lexists(link):  # Docker copies the link itself
        assert link.is_symlink() and os.readlink(link) == f"{p}/secret", "\n".join(map(str, results))
    v.assert_unchanged()


def test_cp_of_container_symlinks_never_reads_host_files(ll: LayerLab) -> None:
    """``docker cp`` resolves a container's symlinks inside the container, never on the host."""
    s = ll.sentinel()
    dest = ll.make_dir("ll-cpdest-")
    p = s.path
    name = f"cpout-{uuid.uuid4().hex[:8]}"
    ll("run", "--name", name, "busybox", "sh", "-c", f"""
        ln -s {p}/secret /link
        ln -s / /hostroot
        ln -s {p} /sdir
        ln -s ../../../../../../../../../../../../.. /up
        mkdir -p {p} && echo container-own > {p}/secret""", check=True)
    attempts = {
        "link": "/link",                                      # the link itself (or the container's file)
        "parent-link-to-root": f"/hostroot{p}/secret",
        "parent-link-to-dir": "/sdir/secret",
        "relative-parent-link": f"/up{p}/secret",
        "dotdot-path": f"/../../../../../../../../../../../..{p}/secret",
        "dir-through-link": f"/hostroot{p}",
    }
    results = {}
    for label, src in attempts.items():
        results[label] = ll("cp", f"{name}:{src}", str(dest / label))
    leaked = {label: str(results[label]) for label in attempts if _leaks(dest / label, s.secret)}
    assert leaked == {}, "host secret copied out through:\n" + "\n".join(leaked.values())
    link = dest / "link"
    assert link.is_symlink() and os.readlink(link) == f"{p}/secret", results["link"]
    s.assert_unchanged()


def test_cp_into_container_symlinks_never_writes_host_files(ll: LayerLab) -> None:
    s = ll.sentinel()
    src_dir = ll.make_dir("ll-cpsrc-")
    src = src_dir / "intruder"
    src.write_text("intruder\n")
    os.chown(src, ll.uid, ll.gid)
    p = s.path
    name = f"cpin-{uuid.uuid4().hex[:8]}"
    ll("run", "--name", name, "busybox", "sh", "-c", f"""
        ln -s {p} /sdir
        ln -s / /hostroot
        ln -s ../../../../../../../../../../../../.. /up""", check=True)
    results = [ll("cp", str(src), f"{name}:{dst}") for dst in (
        "/sdir/pwned1", f"/hostroot{p}/pwned2", f"/up{p}/pwned3", f"/hostroot{p}/public", "/sdir/sub/")]
    s.assert_unchanged("\n".join(map(str, results)))


# --- processes, hostname, mounts -----------------------------------------------------------------

def test_host_processes_are_invisible(ll: LayerLab, marker: str) -> None:
    host = ll.host_process(["/bin/sleep", "120"], argv0=marker)
    try:
        assert wait_until(lambda: marker.encode() in Path(f"/proc/{host.pid}/cmdline").read_bytes())
        script = (f"ps -o pid,args; cat /proc/[0-9]*/cmdline | tr '\\0' ' '; ls /proc; ls /proc/{host.pid}; "
                  f"kill -0 {host.pid} && echo SIG''NALLED; echo done")
        r = sh(ll, script)
        cid = detached(ll, "sleep 60")
        e = ll("exec", cid, "sh", "-c", script)
        for result in (r, e):
            assert result.code == 0 and result.out.endswith("done\n"), result
            assert "sh -c" in result.out  # it does see its own processes...
            assert marker not in result.out + result.err  # ... and none of the host's
            assert "SIGNALLED" not in result.out
        assert host.poll() is None
    finally:
        kill_process(host)


def _hostname() -> tuple[str, str]:
    with open("/proc/sys/kernel/hostname") as f:
        return socket.gethostname(), f.read()


@pytest.mark.parametrize("network", ["private", "host"])
def test_hostname_change_does_not_reach_the_host(ll: LayerLab, marker: str, network: str) -> None:
    before = _hostname()
    r = sh(ll, f"""
        hostname {marker}-a
        echo {marker}-b > /proc/sys/kernel/hostname
        unshare -u hostname {marker}-c
        unshare -Uru sh -c 'hostname {marker}-d'
        hostname; echo done""", "--network", network)
    try:
        assert r.code == 0 and r.out.endswith("done\n"), r
        assert _hostname() == before
    finally:
        if _hostname() != before:  # put it back before anything else notices
            socket.sethostname(before[0])


def test_mounts_are_refused_or_invisible_on_the_host(ll: LayerLab) -> None:
    before = mountinfo()
    attempts = """
        mkdir -p /mnt/a /mnt/b /mnt/c /mnt/d
        mount -t tmpfs none /mnt/a && echo mounted-tmpfs
        mount --bind / /mnt/b && echo mounted-bind
        mount -t proc proc /mnt/c && echo mounted-proc
        mount -o remount,rw /sys && echo remounted-sys
        mount --make-shared / && echo made-shared
        unshare -Urm sh -c 'mount --make-rshared /; mount -t tmpfs none /mnt/d && echo nested-mounted; sleep 30' \\
            >/tmp/nested.out 2>&1 &
        sleep 0.3
    """
    cid = detached(ll, attempts + "echo ready; sleep 60")
    log = wait_for_log(ll, cid, "ready")
    e = ll("exec", cid, "sh", "-c", attempts + "echo done")
    assert e.code == 0 and e.out.endswith("done\n"), e
    for word in ("mounted-tmpfs", "mounted-bind", "mounted-proc", "remounted-sys", "made-shared"):
        assert word not in log + e.out  # no CAP_SYS_ADMIN, as in Docker
    added = mountinfo() - before  # while the container (and its nested namespace) still runs
    assert suspicious_mounts(added, [str(ll.home)]) == [], e
    ll("rm", "-f", cid, check=True)
    assert suspicious_mounts(mountinfo() - before, [str(ll.home)]) == []


def test_readonly_volume_refuses_writes(ll: LayerLab) -> None:
    s = ll.sentinel()
    r = sh(ll, """
        cat /ro/public
        echo pwn > /ro/public
        echo pwn >> /ro/secret
        echo pwn > /ro/sub/nested
        touch /ro/new
        rm -f /ro/public
        rm -rf /ro/sub
        mkdir /ro/d
        chmod 777 /ro/public
        chown 1:1 /ro/public
        ln -s x /ro/l
        ln /ro/public /ro/hl
        mv /ro/public /ro/moved
        touch -d 2020-01-01 /ro/public
        mount -o remount,rw /ro
        unshare -Urm sh -c 'mount -o remount,rw,bind /ro; echo pwn > /ro/public'
        echo done""", "-v", f"{s.path}:/ro:ro")
    assert r.code == 0 and r.out == "public data\ndone\n", r
    assert "Read-only file system" in r.err
    s.assert_unchanged(r)


def test_rm_f_leaves_no_process(ll: LayerLab) -> None:
    cid = detached(ll, "trap '' TERM HUP INT; setsid sleep 1000 & (sleep 1000 &); sleep 1000 & echo ready; wait")
    wait_for_log(ll, cid, "ready")
    state = ll.state(cid)
    pidns, shim_pid, shim_start = state["pidns"], state["shim_pid"], state["shim_start"]
    execd = ll.popen("exec", cid, "sleep", "1000")  # an exec'd process, its CLI still attached
    try:
        assert wait_until(lambda: len(pids_in_namespace(pidns)) >= 5), pids_in_namespace(pidns)
        assert os.readlink(f"/proc/{state['pid']}/ns/pid") == pidns and alive(state["pid"], state["pid_start"])
        ll("rm", "-f", cid, check=True)
        assert wait_until(lambda: not pids_in_namespace(pidns), 3), \
            f"processes left in {pidns}: {pids_in_namespace(pidns)}"
        assert not alive(state["pid"], state["pid_start"])
        assert wait_until(lambda: not alive(shim_pid, shim_start), 3), "the container's shim survived rm -f"
        assert execd.wait(10) != 0
        assert cid not in ll.container_ids()
        assert cid not in ll.container_dirs()
    finally:
        kill_process(execd)
    check = ll("system", "check")
    assert check.code == 0, check


def test_detached_container_cannot_signal_host_processes(ll: LayerLab, marker: str) -> None:
    host = ll.host_process(["/bin/sleep", "120"], argv0=marker)
    try:
        cid = detached(ll, f"kill -9 {host.pid}; echo kill=$?; kill -9 -1; kill -TERM {host.pid}; "
                           f"kill -0 {host.pid} && echo visible; echo ready; exec sleep 60")  # immune to kill -1
        out = wait_for_log(ll, cid, "ready")
        assert "kill=0" not in out and "visible" not in out, out
        e = ll("exec", cid, "sh", "-c", f"kill -9 {host.pid} || echo refused; kill -9 -1; echo done")
        assert e.out == "refused\ndone\n", e
        time.sleep(0.2)
        assert host.poll() is None, "a host process was killed from inside a container"
    finally:
        kill_process(host)


def _sys_attribute() -> tuple[str, str] | None:
    """A harmless, root-writable global /sys attribute and a different value for it."""
    for path, values in (("/sys/module/printk/parameters/time", ("Y", "N")),
                         ("/sys/kernel/mm/transparent_hugepage/defrag", ("madvise", "never")),
                         ("/sys/kernel/rcu_expedited", ("0", "1"))):
        try:
            with open(path) as f:
                current = f.read().strip()
        except OSError:
            continue
        if os.access(path, os.W_OK):
            chosen = re.search(r"\[(\w+)\]", current)
            now = chosen.group(1) if chosen else current
            return path, values[1] if now == values[0] else values[0]
    return None


def test_sys_and_sysrq_writes_fail(ll: LayerLab, marker: str) -> None:
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read()
    attribute = _sys_attribute()
    sys_before = Path(attribute[0]).read_text() if attribute else None
    sys_write = f"echo {attribute[1]} > {attribute[0]} && echo wrote-sys" if attribute else ""
    r = sh(ll, f"""
        echo h > /proc/sysrq-trigger && echo wrote-sysrq
        echo '|/bin/false {marker}' > /proc/sys/kernel/core_pattern && echo wrote-core
        {sys_write}
        echo add > /sys/kernel/uevent_helper && echo wrote-uevent
        unshare -Urmpf --mount-proc sh -c 'echo h > /proc/sysrq-trigger && echo nested-sysrq'
        mkdir -p /mnt/s /mnt/p
        unshare -Urmn sh -c 'mount -t sysfs sysfs /mnt/s && echo nested-sysfs
                             mount -t proc proc /mnt/p && echo nested-proc'
        echo done""")
    try:
        assert r.code == 0 and r.out.endswith("done\n"), r
        for word in ("wrote-sysrq", "wrote-core", "wrote-sys", "wrote-uevent", "nested-sysrq", "nested-sysfs",
                     "nested-proc"):
            assert word not in r.out, r
        with open("/proc/sys/kernel/core_pattern") as f:
            assert f.read() == core_pattern
        if attribute:
            assert Path(attribute[0]).read_text() == sys_before
    finally:
        with open("/proc/sys/kernel/core_pattern") as f:
            if f.read() != core_pattern:
                Path("/proc/sys/kernel/core_pattern").write_text(core_pattern)
        if attribute and Path(attribute[0]).read_text() != sys_before:
            chosen = re.search(r"\[(\w+)\]", sys_before)
            Path(attribute[0]).write_text(chosen.group(1) if chosen else sys_before.strip())


# --- an interactive terminal ---------------------------------------------------------------------

def _read_until(fd: int, proc, wanted: bytes | None, timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wanted is not None and wanted in out:
            break
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError as e:
                if e.errno == errno.EIO:
                    break
                raise
            if not data:
                break
            out += data
        elif wanted is None and proc.poll() is not None:
            break
    return out


def test_run_it_under_a_real_terminal(ll: LayerLab) -> None:
    master, slave = os.openpty()
    try:
        if ll.rootless:
            os.fchown(slave, ll.uid, -1)  # the user's own terminal, as after a login
        saved = termios.tcgetattr(master)  # the slave's settings (the slave is hung up when the session ends)

        def controlling_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = ll.popen("run", "-it", "--rm", "busybox", "sh", stdin=slave, stdout=slave, stderr=slave,
                        preexec_fn=controlling_terminal)
        try:
            out = _read_until(master, proc, b"# ", 15)
            assert b"# " in out, out
            os.write(master, b"tty; echo $((6*7)); exit 3\r")
            out += _read_until(master, proc, None, 15)
            code = proc.wait(10)
        finally:
            kill_process(proc)
        text = out.decode(errors="replace")
        assert re.search(r"^/dev/(pts/\d+|console)\r?$", text, re.M), text
        assert re.search(r"^42\r?$", text, re.M), text
        assert code == 3, text
        assert termios.tcgetattr(master) == saved  # the terminal left as it was found (raw mode undone)
    finally:
        os.close(master)
        os.close(slave)
    assert ll.container_ids() == []


# --- run/create errors: one line, non-zero exit, nothing left behind ------------------------------

ERRORS = {
    "missing-image": (["--pull", "never", "nosuch-image-ll"], 125,
                      r"layerlab: Error response from daemon: No such image: nosuch-image-ll:latest"),
    "bad-publish-port": (["-p", "99999:80", "busybox", "true"], 125,
                         r"layerlab: Error response from daemon: Invalid hostPort: 99999"),
    "bad-publish-syntax": (["-p", "1:2:3:4", "busybox", "true"], 125,
                           r"layerlab: Error response from daemon: invalid published port: 1:2:3:4"),
    "unknown-user": (["-u", "nosuchuser", "busybox", "true"], 125,
                     r"layerlab: Error response from daemon: unable to find user nosuchuser: .*"),
    "command-not-found": (["busybox", "nosuchcmd"], 127,
                          r'layerlab: Error response from daemon: .*exec: "nosuchcmd": executable file not found '
                          r"in \$PATH.*"),
    "port-in-use": (["-p", "127.0.0.1:{port}:80", "busybox", "true"], 125,
                    r"layerlab: Error response from daemon: .*Bind for 127\.0\.0\.1:{port} failed: "
                    r"port is already allocated"),
}


@pytest.mark.parametrize("detach", [False, True], ids=["fg", "detach"])
@pytest.mark.parametrize("case", list(ERRORS))
def test_run_error_is_one_line_and_leaves_nothing(ll: LayerLab, case: str, detach: bool) -> None:
    args, code, pattern = ERRORS[case]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [a.format(port=port) for a in args]
        pattern = pattern.replace("{port}", str(port))
        name = f"err-{case}"
        before_ids, before_dirs = ll.container_ids(), ll.container_dirs()
        r = ll("run", *(["-d"] if detach else []), "--name", name, *args)
    assert r.code == code, r
    assert r.out == "", r
    assert r.err.count("\n") == 1 and r.err.endswith("\n"), r
    assert re.fullmatch(pattern, r.err.rstrip("\n")), r
    assert ll.container_ids() == before_ids
    assert ll.container_dirs() == before_dirs
    if (ll.home / "tmp").is_dir():
        assert list((ll.home / "tmp").iterdir()) == []
    again = ll("run", "--rm", "--name", name, "busybox", "true")  # the name was not kept either
    assert again.code == 0, again
