"""Where registry traffic goes: the classroom's Docker Hub mirror, plain-HTTP registries, the Internet switch.

``docker.io`` (Docker Hub) never leaves loopback unless the user opts in: by default its images
come from ``hub_mirror`` (``127.0.0.1:5000``; ``$LAYERLAB_HUB_MIRROR`` overrides, the value is kept
in ``$LAYERLAB_HOME/settings.json``). Only with ``allow_internet`` does ``docker.io`` mean
``registry-1.docker.io`` (and search ``index.docker.io``).

Plain HTTP is used where Docker allows it without TLS: ``localhost``, ``127.0.0.0/8``, ``::1``
and the ``insecure_registries`` listed here; everything else is ``https``.
"""
from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

from ..values import field, replace, value

DEFAULT_HUB_MIRROR = "127.0.0.1:5000"
HUB_REGISTRY = "registry-1.docker.io"
HUB_INDEX = "index.docker.io"
HUB_DOMAIN = "docker.io"
SETTINGS_FILE = "settings.json"


def split_host(host: str) -> tuple[str, str]:
    """``("127.0.0.1", "5000")`` from ``127.0.0.1:5000``; brackets of IPv6 literals removed."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":")
    name, _, port = host.partition(":") if host.count(":") == 1 else (host, "", "")
    return name, port


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1`` (with or without a port)."""
    name, _ = split_host(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@value
class Settings:
    """The registry settings of one LayerLab home."""

    hub_mirror: str = DEFAULT_HUB_MIRROR
    insecure_registries: tuple[str, ...] = ()
    allow_internet: bool = False
    env_mirror: bool = field(default=False, compare=False)  # hub_mirror came from $LAYERLAB_HUB_MIRROR

    def registry_host(self, domain: str) -> str:
        """The host:port to contact for a reference's domain."""
        if domain == HUB_DOMAIN:
            return HUB_REGISTRY if self.allow_internet else self.hub_mirror
        return domain

    def index_host(self) -> str:
        """Where ``search`` asks (Docker Hub's index, or the mirror)."""
        return HUB_INDEX if self.allow_internet else self.hub_mirror

    def is_insecure(self, host: str) -> bool:
        return is_loopback(host) or host in self.insecure_registries or split_host(host)[0] in self.insecure_registries

    def scheme(self, host: str) -> str:
        return "http" if self.is_insecure(host) else "https"

    def base_url(self, host: str) -> str:
        return f"{self.scheme(host)}://{host}"

    def may_contact(self, host: str) -> bool:
        """Whether a (redirect) target may be contacted: anything with ``allow_internet``, else loopback
        and the configured registries only."""
        return self.allow_internet or self.is_insecure(host) or host == self.hub_mirror

    def to_json(self) -> dict:
        return {"hub_mirror": self.hub_mirror, "insecure_registries": list(self.insecure_registries),
                "allow_internet": self.allow_internet}


def _path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / SETTINGS_FILE


def load(home: str | os.PathLike[str]) -> Settings:
    """The settings kept in ``home`` (defaults when none), with ``$LAYERLAB_HUB_MIRROR`` applied."""
    data: dict = {}
    try:
        raw = json.loads(_path(home).read_text())
        data = raw if isinstance(raw, dict) else {}
    except (OSError, ValueError):
        pass
    s = Settings(
        hub_mirror=str(data.get("hub_mirror") or DEFAULT_HUB_MIRROR),
        insecure_registries=tuple(str(x) for x in data.get("insecure_registries") or ()),
        allow_internet=data.get("allow_internet") is True,
    )
    env = os.environ.get("LAYERLAB_HUB_MIRROR", "").strip()
    return replace(s, hub_mirror=env, env_mirror=True) if env else s


def save(home: str | os.PathLike[str], settings: Settings) -> None:
    """Persist ``settings`` atomically in ``home/settings.json``."""
    path = _path(home)
    tmp = path.with_name(f".{SETTINGS_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(settings.to_json(), indent=2) + "\n")
    os.replace(tmp, path)


def update(home: str | os.PathLike[str], **changes: object) -> Settings:
    """Change some settings (``hub_mirror=``, ``insecure_registries=``, ``allow_internet=``) and save them."""
    current = load(home)
    if "insecure_registries" in changes:
        changes["insecure_registries"] = tuple(changes["insecure_registries"])  # type: ignore[arg-type]
    new = replace(current, **changes)  # type: ignore[arg-type]
    stored = new if current.env_mirror is False or "hub_mirror" in changes else \
        replace(new, hub_mirror=_stored_mirror(home))
    save(home, stored)
    return new


def _stored_mirror(home: str | os.PathLike[str]) -> str:
    try:
        return str(json.loads(_path(home).read_text()).get("hub_mirror") or DEFAULT_HUB_MIRROR)
    except (OSError, ValueError, AttributeError):
        return DEFAULT_HUB_MIRROR
