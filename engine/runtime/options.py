"""Parsing of ``run``/``create`` options into values: ``-p``, ``-P``, ``-v``, ``-e``, ``--env-file``.

Every function raises :class:`~engine.errors.ContainerError` with Docker's message (exit 125)
before anything is created.
"""
from __future__ import annotations

import os
import re

from ..errors import ContainerError
from ..values import value


@value
class PortSpec:
    """One ``-p``: host address and port (0 = any free port) to a container port."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str = "tcp"


@value
class VolumeSpec:
    """One ``-v host:container[:ro]`` bind mount."""

    source: str
    target: str
    readonly: bool = False


def _port(text: str, what: str, value: str) -> int:
    if not text:
        raise ContainerError(f"No port specified: {value}<empty>")
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ContainerError(f"Invalid {what}: {text}")
    return int(text)


def parse_publish(value: str) -> list[PortSpec]:
    """``[ip:]hostPort:containerPort[/proto]``, ``ip::containerPort``, ``containerPort`` (ranges allowed)."""
    rest, _, proto = value.partition("/")
    proto = proto or "tcp"
    if proto != "tcp":
        raise ContainerError(f"invalid proto: {proto} (only tcp is supported)")
    ip = ""
    if rest.startswith("["):
        end = rest.find("]")
        ip, rest = rest[1:end], rest[end + 2:]
    else:
        parts = rest.split(":")
        if len(parts) == 3:
            ip, rest = parts[0], ":".join(parts[1:])
        elif len(parts) > 3:
            raise ContainerError(f"invalid published port: {value}")
    host, _, container = rest.rpartition(":") if ":" in rest else ("", "", rest)
    if ip and not re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", ip):
        raise ContainerError(f"Invalid ip address: {ip}")
    c_lo, _, c_hi = container.partition("-")
    h_lo, _, h_hi = host.partition("-")
    cl = _port(c_lo, "containerPort", value)
    ch = _port(c_hi, "containerPort", value) if c_hi else cl
    hl = _port(h_lo, "hostPort", value) if h_lo else 0
    hh = _port(h_hi, "hostPort", value) if h_hi else (hl + ch - cl if hl else 0)
    if ch < cl or (hl and hh - hl != ch - cl):
        raise ContainerError(f"invalid port range: {value}")
    return [PortSpec(ip or "0.0.0.0", hl + i if hl else 0, cl + i, proto) for i in range(ch - cl + 1)]


def parse_volume(value: str) -> VolumeSpec:
    """``-v /host/path:/container/path[:ro|rw]``; named volumes are not supported."""
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ContainerError(f"invalid volume specification: '{value}'")
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ContainerError(f"invalid mode: {mode}")
    source, target = parts[0], parts[1]
    if not os.path.isabs(source):
        raise ContainerError(f"invalid volume specification: '{value}': named volumes are not supported; "
                             "use an absolute host path")
    if not os.path.isabs(target):
        raise ContainerError(f"invalid volume specification: '{value}': invalid mount config for type "
                             f"\"bind\": invalid mount path: '{target}' mount path must be absolute")
    if not os.path.exists(source):
        os.makedirs(source, exist_ok=True)  # as Docker creates a missing host directory
    return VolumeSpec(os.path.realpath(source), os.path.normpath(target), mode == "ro")


def parse_env(values: list[str] | tuple[str, ...], env_files: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``--env-file`` lines then ``-e`` values; ``-e NAME`` takes the value from the caller's env."""
    out: list[str] = []
    for path in env_files:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise ContainerError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            out.append(_env_item(line))
    for v in values:
        item = _env_item(v)
        if item:
            out.append(item)
    return out


def _env_item(text: str) -> str:
    name, eq, value = text.partition("=")
    if not name:
        raise ContainerError(f"invalid environment variable: {text}")
    if eq:
        return f"{name}={value}"
    return f"{name}={os.environ[name]}" if name in os.environ else ""


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: replace in place by name, else append."""
    out = list(base)
    index = {item.partition("=")[0]: i for i, item in enumerate(out)}
    for item in overrides:
        name = item.partition("=")[0]
        if name in index:
            out[index[name]] = item
        else:
            index[name] = len(out)
            out.append(item)
    return out


_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def check_name(name: str) -> str:
    """A valid container name (without Docker's leading ``/``)."""
    if not _NAME_RE.match(name):
        raise ContainerError(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")
