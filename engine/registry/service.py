"""``layerlab registry start|stop|status``: the registry as a background process with a pid file.

The pid file (``$LAYERLAB_HOME/registry.json``) records the process (pid and start time, so a reused
pid is never mistaken for ours), its address, mode and root. ``start`` waits until the new process
says it listens (a ready file it writes after binding) and ``/v2/`` answers; a process that fails
(port taken, bad htpasswd file) is reported with the end of its log.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import EngineError
from ..values import value

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@value
class RegistryStatus:
    """Whether LayerLab's registry runs in the background, and where."""

    running: bool
    url: str
    port: int
    pid: int | None
    hub: bool
    root: str


def default_root(home: Path) -> Path:
    return home / "registry"


def _pidfile(home: Path) -> Path:
    return home / "registry.json"


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (None when gone or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _record(home: Path) -> dict | None:
    try:
        data = json.loads(_pidfile(home).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(record: dict) -> bool:
    return _start_time(int(record["pid"])) == record.get("start_time")


def status(home: Path) -> RegistryStatus:
    record = _record(home)
    if record is None or not _alive(record):
        if record is not None:
            _pidfile(home).unlink(missing_ok=True)  # stale: the process is gone
        return RegistryStatus(False, "", 0, None, False, str(default_root(home)))
    return RegistryStatus(True, f"http://{record['host']}:{record['port']}", int(record["port"]), int(record["pid"]),
                          bool(record.get("hub")), str(record["root"]))


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _probe(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/v2/", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def start(home: Path, *, port: int = 5000, host: str = "127.0.0.1", hub: bool = False, auth: str | None = None,
          root: str | None = None) -> RegistryStatus:
    """Start ``layerlab registry serve`` in the background; returns once it answers."""
    current = status(home)
    if current.running:
        raise EngineError(f"a registry is already running at {current.url} (pid {current.pid}); "
                          "stop it with `layerlab registry stop`")
    root_path = Path(root).resolve() if root else default_root(home)
    root_path.mkdir(parents=True, exist_ok=True)
    if auth is not None and not Path(auth).is_file():
        raise EngineError(f"htpasswd file {auth} not found")
    log_path = root_path / "registry.log"
    ready = root_path / f".ready-{os.getpid()}-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "engine.cli", "registry", "serve", "--port", str(port), "--host", host,
            "--root", str(root_path), "--ready-file", str(ready)]
    if hub:
        argv.append("--hub")
    if auth:
        argv += ["--auth", str(Path(auth).resolve())]
    env = dict(os.environ, LAYERLAB_HOME=str(home))
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd="/",
                                   start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    process.kill()
                process.wait()
                raise EngineError(f"the registry did not start:\n{_log_tail(log_path)}".rstrip())
            time.sleep(0.05)
    finally:
        ready.unlink(missing_ok=True)
    url = f"http://{host}:{port}"
    if _probe(url) not in (200, 401):
        process.kill()
        process.wait()
        raise EngineError(f"the registry at {url} does not answer /v2/:\n{_log_tail(log_path)}".rstrip())
    record = {"pid": process.pid, "start_time": _start_time(process.pid), "host": host, "port": port,
              "hub": hub, "root": str(root_path), "auth": auth}
    tmp = _pidfile(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, _pidfile(home))
    return status(home)


def stop(home: Path) -> RegistryStatus:
    """Stop the background registry (SIGTERM, then SIGKILL); a no-op when none runs."""
    record = _record(home)
    if record is not None and _alive(record):
        pid = int(record["pid"])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(record) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _alive(record):
            os.kill(pid, signal.SIGKILL)
            while _alive(record):
                _reap(pid)
                time.sleep(0.05)
    if record is not None:
        _reap(int(record["pid"]))  # also a registry that died on its own while we are its parent
    _pidfile(home).unlink(missing_ok=True)
    return status(home)


def _reap(pid: int) -> None:
    """Collect the exit status when the registry is this process's child (started in-process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
