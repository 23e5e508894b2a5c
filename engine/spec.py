"""OCI/Docker image values: media types, descriptors, manifests, configs, history.

Values are frozen dataclasses; ``to_json`` gives canonical bytes (sorted keys, compact), and
``from_json`` accepts both OCI and Docker schema2 spellings. An image ID is the digest of the
exact config bytes, so configs read from elsewhere are kept as the bytes they came in.
"""
from __future__ import annotations

import json

from .errors import EngineError
from .values import field, replace, value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER)
GZIP_LAYER_TYPES = (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER)
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SpecError(EngineError):
    """A manifest or config is malformed."""


def canonical_json(obj: Any) -> bytes:
    """Compact JSON with sorted keys: the bytes LayerLab writes for configs and manifests."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load_json(data: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object or raise :class:`SpecError`."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise SpecError(f"invalid {what}: {e}") from None
    if not isinstance(obj, dict):
        raise SpecError(f"invalid {what}: not a JSON object")
    return obj


@value
class Platform:
    """An OCI platform (``architecture``, ``os``, ``variant``), as in an index entry."""

    architecture: str
    os: str = "linux"
    variant: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d


@value
class Descriptor:
    """An OCI content descriptor: what a manifest or index says about one blob."""

    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform:
            d["platform"] = self.platform.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Descriptor":
        try:
            plat = d.get("platform")
            return cls(
                media_type=str(d.get("mediaType", "")),
                digest=str(d["digest"]),
                size=int(d["size"]),
                annotations=tuple(sorted((d.get("annotations") or {}).items())),
                platform=Platform(plat["architecture"], plat.get("os", "linux"), plat.get("variant")) if plat else None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SpecError(f"invalid descriptor: {e}") from None

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)


@value
class Manifest:
    """An image manifest (OCI or Docker schema2): the config descriptor and the layers, bottom first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = OCI_MANIFEST

    def to_json(self) -> bytes:
        return canonical_json({
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        })

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        d = load_json(data, "manifest")
        if d.get("schemaVersion") != 2 or "config" not in d or not isinstance(d.get("layers"), list):
            raise SpecError("invalid manifest: schemaVersion 2 with config and layers expected")
        return cls(Descriptor.from_dict(d["config"]), tuple(Descriptor.from_dict(x) for x in d["layers"]),
                   d.get("mediaType") or OCI_MANIFEST)


@value
class History:
    """One entry of an image config's ``history`` (``empty_layer`` when it made no layer)."""

    created: str | None = None
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.created:
            d["created"] = self.created
        if self.created_by:
            d["created_by"] = self.created_by
        if self.author:
            d["author"] = self.author
        if self.comment:
            d["comment"] = self.comment
        if self.empty_layer:
            d["empty_layer"] = True
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        return cls(d.get("created"), d.get("created_by") or "", d.get("author") or "", d.get("comment") or "",
                   bool(d.get("empty_layer")))


# Container config keys in Docker's order; values are JSON-compatible (lists/dicts/str/None).
CONTAINER_CONFIG_KEYS = (
    "User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
    "StopSignal", "OnBuild", "Healthcheck", "Shell", "ArgsEscaped",
)


@value
class ContainerConfig:
    """The ``config`` part of an image config (what a container starts with)."""

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    on_build: tuple[str, ...] = ()
    healthcheck: tuple[tuple[str, Any], ...] | None = None
    shell: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.user:
            d["User"] = self.user
        if self.exposed_ports:
            d["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.env:
            d["Env"] = list(self.env)
        if self.entrypoint is not None:
            d["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            d["Cmd"] = list(self.cmd)
        if self.volumes:
            d["Volumes"] = {v: {} for v in self.volumes}
        if self.working_dir:
            d["WorkingDir"] = self.working_dir
        if self.labels:
            d["Labels"] = dict(self.labels)
        if self.stop_signal:
            d["StopSignal"] = self.stop_signal
        if self.on_build:
            d["OnBuild"] = list(self.on_build)
        if self.healthcheck is not None:
            d["Healthcheck"] = dict(self.healthcheck)
        if self.shell is not None:
            d["Shell"] = list(self.shell)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "ContainerConfig":
        d = d or {}

        def seq(v: Any) -> tuple[str, ...] | None:
            if v is None:
                return None
            if isinstance(v, str):
                return (v,)
            return tuple(str(x) for x in v)

        return cls(
            user=d.get("User") or "",
            exposed_ports=tuple(sorted((d.get("ExposedPorts") or {}).keys())),
            env=tuple(d.get("Env") or ()),
            entrypoint=seq(d.get("Entrypoint")),
            cmd=seq(d.get("Cmd")),
            volumes=tuple(sorted((d.get("Volumes") or {}).keys())),
            working_dir=d.get("WorkingDir") or "",
            labels=tuple(sorted((d.get("Labels") or {}).items())),
            stop_signal=d.get("StopSignal") or "",
            on_build=tuple(d.get("OnBuild") or ()),
            healthcheck=tuple(sorted(d["Healthcheck"].items())) if d.get("Healthcheck") else None,
            shell=seq(d.get("Shell")),
        )

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def with_env(self, key: str, value: str) -> "ContainerConfig":
        """Set or replace one variable, keeping Docker's order (replace in place, else append)."""
        env = list(self.env)
        for i, item in enumerate(env):
            if item.partition("=")[0] == key:
                env[i] = f"{key}={value}"
                break
        else:
            env.append(f"{key}={value}")
        return replace(self, env=tuple(env))


@value
class ImageConfig:
    """An image config (the JSON whose digest is the image ID)."""

    architecture: str
    os: str
    created: str | None
    config: ContainerConfig
    diff_ids: tuple[str, ...]
    history: tuple[History, ...] = ()
    author: str = ""
    variant: str | None = None
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def to_json(self) -> bytes:
        d: dict[str, Any] = dict(self.extra)
        d.update({
            "architecture": self.architecture,
            "os": self.os,
            "config": self.config.to_dict(),
            "rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)},
            "history": [h.to_dict() for h in self.history],
        })
        if self.created:
            d["created"] = self.created
        if self.author:
            d["author"] = self.author
        if self.variant:
            d["variant"] = self.variant
        return canonical_json(d)

    @classmethod
    def from_json(cls, data: bytes) -> "ImageConfig":
        d = load_json(data, "image config")
        rootfs = d.get("rootfs") or {}
        diff_ids = rootfs.get("diff_ids")
        if rootfs.get("type") != "layers" or not isinstance(diff_ids, list):
            raise SpecError("invalid image config: rootfs.type must be 'layers' with diff_ids")
        known = {"architecture", "os", "created", "config", "rootfs", "history", "author", "variant"}
        try:
            return cls(
                architecture=str(d.get("architecture", "")),
                os=str(d.get("os", "")),
                created=d.get("created"),
                config=ContainerConfig.from_dict(d.get("config")),
                diff_ids=tuple(str(x) for x in diff_ids),
                history=tuple(History.from_dict(h) for h in d.get("history") or ()),
                author=d.get("author") or "",
                variant=d.get("variant"),
                extra=tuple(sorted((k, v) for k, v in d.items() if k not in known)),
            )
        except (TypeError, AttributeError) as e:
            raise SpecError(f"invalid image config: {e}") from None

    def layer_history(self) -> list[tuple[History, str | None]]:
        """History entries paired with the DiffID they created (None for empty layers)."""
        out: list[tuple[History, str | None]] = []
        ids = iter(self.diff_ids)
        for h in self.history:
            out.append((h, None if h.empty_layer else next(ids, None)))
        rest = list(ids)
        out.extend((History(), d) for d in rest)  # configs without history for some layers
        return out


def host_platform() -> Platform:
    """The platform of this machine in OCI terms."""
    import platform as _p

    m = _p.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
            "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)
    variant = "v8" if arch == "arm64" else ("v7" if arch == "arm" else None)
    return Platform(arch, "linux", variant)
