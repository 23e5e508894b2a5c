"""Helpers for the registry-server tests: LayerLab's registry on a thread, raw pushes with ``requests``.

``LayerLabRegistry`` serves :func:`engine.registry.server.make_app` over a temp root on a free
loopback port (in this process, on a thread) and has the same ``url``/``host`` as the Docker
registry fixture's servers, so one test can run against both.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests

from engine.registry.server import make_app
from engine.registry.serving import ThreadedRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LayerLabRegistry:
    """LayerLab's registry on a thread of the test process; ``stop()`` when done."""

    kind = "layerlab"

    def __init__(self, root: Path | None = None, *, hub: bool = False, auth_file: str | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="ll-srv-"))
        self.server = ThreadedRegistry(make_app(self.root, hub=hub, auth_file=auth_file)).start()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1]

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Client:
    """Raw distribution-API calls against ``url`` (relative Locations resolved)."""

    url: str
    session: requests.Session

    def abs(self, location: str) -> str:
        return self.url + location if location.startswith("/") else location

    def request(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(method, self.abs(path) if path.startswith(("/", "http")) else path, **kw)

    def push_blob(self, repo: str, data: bytes) -> str:
        """POST + PUT (the monolithic upload every registry supports); returns the digest."""
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        digest = digest_of(data)
        r = self.session.put(self.abs(r.headers["Location"]), params={"digest": digest}, data=data,
                             headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return digest

    def push_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> requests.Response:
        return self.request("PUT", f"/v2/{repo}/manifests/{reference}", data=data,
                            headers={"Content-Type": media_type})

    def push_image(self, repo: str, tag: str, *, layer: bytes = b"layer bytes", config: bytes | None = None,
                   media_type: str = OCI_MANIFEST) -> tuple[str, bytes]:
        """One config + one layer + a manifest; returns (manifest digest, manifest bytes)."""
        config = config if config is not None else json.dumps({"architecture": "amd64", "os": "linux",
                                                               "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        config_type, layer_type = (OCI_CONFIG, OCI_LAYER) if media_type == OCI_MANIFEST else (DOCKER_CONFIG,
                                                                                               DOCKER_LAYER_GZIP)
        c = self.push_blob(repo, config)
        lay = self.push_blob(repo, layer)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": c, "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": lay, "size": len(layer)}],
        }, indent=3).encode()  # indented: a registry must keep the exact bytes
        r = self.push_manifest(repo, tag, manifest, media_type)
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == digest_of(manifest)
        return digest_of(manifest), manifest


def error_codes(response: requests.Response) -> list[str]:
    """The spec's error JSON: ``{"errors": [{"code", "message", "detail"?}]}``; returns the codes."""
    body = response.json()
    assert isinstance(body.get("errors"), list) and body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["code"], str) and isinstance(error["message"], str), error
        assert set(error) <= {"code", "message", "detail"}, error
    return [e["code"] for e in body["errors"]]
