"""Registry credentials in Docker's ``config.json`` (``auths.<server>.auth`` = base64 ``user:password``).

The file is ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``, as docker-cli reads it;
other keys in it are kept. It is written atomically (temp file + rename) with mode 0600.
Docker Hub's key is ``https://index.docker.io/v1/``.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from pathlib import Path

from ..errors import EngineError
from ..values import value

HUB_SERVER = "https://index.docker.io/v1/"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", HUB_SERVER, "https://index.docker.io/v1")


@value
class Credentials:
    username: str
    password: str


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(base) / "config.json"


def server_key(server: str | None) -> str:
    """The ``auths`` key for a server argument (Docker Hub's URL for none), as docker-cli normalises it."""
    if not server or server in _HUB_ALIASES:
        return HUB_SERVER
    for prefix in ("http://", "https://"):
        if server.startswith(prefix):
            server = server[len(prefix):]
    return server.split("/", 1)[0]


def _read() -> dict:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise EngineError(f"loading config file: {path}: {e}") from None
    if not isinstance(data, dict):
        raise EngineError(f"loading config file: {path}: not a JSON object")
    return data


def _write(data: dict) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.json.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent="\t") + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _lookup_keys(registry_host: str, hub: bool) -> list[str]:
    if hub:
        return [HUB_SERVER, "index.docker.io", "docker.io"]
    return [registry_host, f"http://{registry_host}", f"https://{registry_host}"]


def get(registry_host: str, *, hub: bool = False) -> Credentials | None:
    """Stored credentials for a registry host (``hub`` for Docker Hub), or None."""
    auths = _read().get("auths") or {}
    for key in _lookup_keys(registry_host, hub):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                continue
            return Credentials(user, password)
        if entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password") or ""))
    return None


def store(key: str, creds: Credentials) -> Path:
    """Save credentials under ``key``; return the file written."""
    data = _read()
    auths = data.setdefault("auths", {})
    auths[key] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    _write(data)
    return config_path()


def logout_keys(server: str | None) -> list[str]:
    """The ``auths`` keys docker-cli's logout tries (older clients saved some with a scheme)."""
    key = server_key(server)
    if key == HUB_SERVER:
        return [HUB_SERVER]
    return list(dict.fromkeys([server or key, key, f"http://{key}", f"https://{key}"]))


def erase(key: str | list[str]) -> bool:
    """Remove the credentials under ``key`` (or each of several keys); False when there were none."""
    keys = [key] if isinstance(key, str) else key
    data = _read()
    auths = data.get("auths") or {}
    found = [k for k in keys if k in auths]
    if not found:
        return False
    for k in found:
        del auths[k]
    _write(data)
    return True
