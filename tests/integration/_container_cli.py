"""The ``layerlab`` CLI as a subprocess, as real root or as an unprivileged user, plus host-side probes.

:class:`LayerLab` runs ``python -m engine.cli`` with a ``LAYERLAB_HOME`` of its own:

* ``root``: the project's interpreter (``sys.executable``) from the repository root, as the suite runs;
* ``rootless``: ``/usr/bin/python3`` (>= 3.11) as the ``unprivileged_user`` fixture's user, through
  ``setpriv``, on a copy of the ``engine`` package in a temporary directory that user can read (the
  project's venv lives under ``/root``, mode 0700).

:class:`Sentinel` is a host directory outside every container, with known files whose listing,
contents, modes, owners, link counts and times (``ctime`` included, which no process can set back)
are compared with a snapshot taken right after it was made.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
OLD_MTIME_NS = 1_000_000_000 * 10**9  # 2001: whatever writes to a sentinel makes its mtime "now"


@dataclass
class Result:
    code: int
    out: str
    err: str
    argv: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"layerlab {' '.join(self.argv)} -> {self.code}\nstdout: {self.out!r}\nstderr: {self.err!r}"


@dataclass
class LayerLab:
    """One way of invoking ``layerlab`` (as root or as the unprivileged user) with its own home."""

    name: str
    home: Path
    uid: int
    gid: int
    python: str
    env: dict[str, str]
    cwd: str
    setpriv: tuple[str, ...] = ()
    cleanup_paths: list[Path] = field(default_factory=list)

    @property
    def rootless(self) -> bool:
        return self.uid != 0

    def argv(self, *args: str) -> list[str]:
        return [*self.setpriv, self.python, "-m", "engine.cli", *args]

    def __call__(self, *args: str, check: bool = False, timeout: float = 30, input: str | None = None) -> Result:
        proc = subprocess.run(self.argv(*args), env=self.env, cwd=self.cwd, capture_output=True, text=True,
                              timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
        result = Result(proc.returncode, proc.stdout, proc.stderr, tuple(args))
        if check and proc.returncode != 0:
            raise AssertionError(f"command failed: {result}")
        return result

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("env", self.env)
        kwargs.setdefault("cwd", self.cwd)
        return subprocess.Popen(self.argv(*args), **kwargs)

    # --- containers -----------------------------------------------------------------------------

    def container_ids(self) -> list[str]:
        return self("ps", "-aq", "--no-trunc", check=True).out.split()

    def container_dirs(self) -> list[str]:
        d = self.home / "containers"
        return sorted(os.listdir(d)) if d.is_dir() else []

    def state(self, cid: str) -> dict:
        """``state.json`` of the running container ``cid`` (full id): host pids, pid namespace …"""
        return json.loads((self.home / "containers" / cid / "state" / "state.json").read_text())

    def remove_all(self) -> None:
        ids = self.container_ids()
        if ids:
            self("rm", "-f", *ids, timeout=60)

    def host_process(self, argv: Sequence[str], *, argv0: str | None = None) -> subprocess.Popen:
        """A host process (outside every container) running as this runner's user; ``argv0`` replaces
        ``argv[0]`` in its command line (``/proc/<pid>/cmdline``)."""
        extra = {"user": self.uid, "group": self.gid, "extra_groups": []} if self.rootless else {}
        return subprocess.Popen([argv0 or argv[0], *argv[1:]], executable=argv[0], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                **extra)

    def make_dir(self, prefix: str) -> Path:
        """A fresh directory under /tmp owned by this runner's user (removed at teardown)."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        os.chmod(path, 0o755)
        os.chown(path, self.uid, self.gid)
        self.cleanup_paths.append(path)
        return path

    def sentinel(self, prefix: str = "ll-sentinel-", *, volume: str | None = None) -> Sentinel:
        return Sentinel.create(self.make_dir(prefix), self.uid, self.gid, volume=volume)


def make_root_runner(base: Path) -> LayerLab:
    home = base / "home"
    home.mkdir(parents=True)
    env = dict(os.environ, LAYERLAB_HOME=str(home))
    return LayerLab("root", home, 0, 0, sys.executable, env, str(ROOT), cleanup_paths=[home])


def system_python_ok(user) -> str | None:
    """Why ``/usr/bin/python3`` cannot run the engine as ``user`` (None when it can)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} is missing"
    probe = user([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info >= (3, 11))"], timeout=30)
    if probe.returncode != 0 or probe.stdout.strip() != "True":
        return f"{SYSTEM_PYTHON} is older than 3.11 or not executable by {user.name}: {probe.stderr.strip()}"
    return None


def make_rootless_runner(user) -> LayerLab:
    """``layerlab`` as ``user`` (tests.fixtures.tools.UnprivilegedUser), on a private copy of the engine."""
    code = Path(tempfile.mkdtemp(prefix="ll-engine-", dir="/tmp"))
    os.chmod(code, 0o755)
    shutil.copytree(ROOT / "engine", code / "engine", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for dirpath, dirnames, filenames in os.walk(code):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    home = Path(tempfile.mkdtemp(prefix="ll-rootless-home-", dir="/tmp"))
    os.chmod(home, 0o755)
    os.chown(home, user.uid, user.gid)
    env = user.base_env()
    env.update(LAYERLAB_HOME=str(home), PYTHONPATH=str(code), PYTHONDONTWRITEBYTECODE="1")
    setpriv = (shutil.which("setpriv") or "setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups",
               "--")
    runner = LayerLab("rootless", home, user.uid, user.gid, SYSTEM_PYTHON, env, str(user.home), setpriv)
    runner.cleanup_paths.extend([code, home])
    return runner


def teardown(runner: LayerLab) -> None:
    try:
        runner.remove_all()
    finally:
        for path in runner.cleanup_paths:
            remove_tree(path)


def remove_tree(path: Path) -> None:
    """rm -rf, also through directories without permissions (overlayfs' work/work is mode 000)."""
    if not os.path.lexists(path):
        return
    if not path.is_dir() or path.is_symlink():
        path.unlink()
        return
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)
    shutil.rmtree(path, ignore_errors=True)


# --- host-side sentinels ------------------------------------------------------------------------

def _describe(path: str) -> tuple:
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    extra: object = None
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            extra = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        extra = os.readlink(path)
    return (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size, st.st_nlink, st.st_ino,
            st.st_mtime_ns, st.st_ctime_ns, extra)


def snapshot(top: Path, exclude: Iterable[str] = ()) -> dict[str, tuple]:
    """Every entry under ``top`` (itself included) → (type, mode, uid, gid, size, nlink, inode, mtime, ctime,
    sha256 or link target); ``exclude``\\ d names directly under ``top`` are left out with their contents."""
    skip = set(exclude)
    out = {".": _describe(str(top))}
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        for name in dirnames + filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            out[rel] = _describe(os.path.join(dirpath, name))
    return out


@dataclass
class Sentinel:
    """A host directory with known files (``secret`` 0600, ``public`` 0644, ``sub/nested``, ``link``)."""

    path: Path
    secret: str
    baseline: dict[str, tuple]
    volume: Path | None = None

    @classmethod
    def create(cls, path: Path, uid: int, gid: int, *, volume: str | None = None) -> Sentinel:
        secret = f"TOP-SECRET-{uuid.uuid4().hex}"
        (path / "secret").write_text(secret + "\n")
        (path / "public").write_text("public data\n")
        (path / "sub").mkdir()
        (path / "sub" / "nested").write_text("nested data\n")
        os.symlink("public", path / "link")
        os.chmod(path / "secret", 0o600)
        os.chmod(path / "public", 0o644)
        os.chmod(path / "sub", 0o755)
        os.chmod(path / "sub" / "nested", 0o644)
        vol = None
        if volume:
            vol = path / volume
            vol.mkdir()
            os.chmod(vol, 0o777)
        for p in [path / "secret", path / "public", path / "sub" / "nested", path / "sub", path / "link",
                  *([vol] if vol else []), path]:
            os.chown(p, uid, gid, follow_symlinks=False)
            os.utime(p, ns=(OLD_MTIME_NS, OLD_MTIME_NS), follow_symlinks=False)
        return cls(path, secret, snapshot(path, exclude=[volume] if volume else []), vol)

    def changes(self) -> list[str]:
        now = snapshot(self.path, exclude=[self.volume.name] if self.volume else [])
        out = []
        for rel in sorted(set(now) | set(self.baseline)):
            before, after = self.baseline.get(rel), now.get(rel)
            if before != after:
                out.append(f"{rel}: {before} -> {after}")
        return out

    def assert_unchanged(self, context: object = "") -> None:
        changes = self.changes()
        assert not changes, f"host sentinel {self.path} changed:\n  " + "\n  ".join(changes) + f"\n{context}"


# --- host-side process and mount probes ---------------------------------------------------------

def pids_in_namespace(pidns: str) -> list[int]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") == pidns:
                out.append(int(pid))
        except OSError:
            continue
    return out


def alive(pid: int, start: int) -> bool:
    """Whether the process ``pid`` that started at ``start`` (field 22 of its stat) still runs; a
    zombie does not (a shim is reparented to the host's init, which may reap it only later)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X") and int(fields[19]) == start


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def mountinfo() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return set(f.read().splitlines())


def suspicious_mounts(added: Iterable[str], paths: Sequence[str]) -> list[str]:
    """New host mounts that could come from a container (unrelated mounts by other processes ignored)."""
    out = []
    for line in added:
        fields, _, rest = line.partition(" - ")
        mountpoint = fields.split()[4]
        fstype, source = (rest.split() + ["", ""])[:2]
        if (mountpoint in ("/", "/proc", "/sys", "/dev", "/tmp", "/etc") or mountpoint.startswith("/mnt")
                or fstype in ("proc", "sysfs", "devpts", "mqueue") or (fstype == "tmpfs" and source == "none")
                or any(p in line for p in paths)):
            out.append(line)
    return out


def kill_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
    proc.wait(10)

