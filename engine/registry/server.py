"""The embedded registry: the OCI distribution API over :class:`RegistryStorage`, served by tornado.

>>> from engine.registry.serving import ThreadedRegistry
>>> server = ThreadedRegistry(make_app("/tmp/ll-registry")).start()   # doctest: +SKIP
>>> server.url                                                        # doctest: +SKIP
'http://127.0.0.1:40321'

Routes (distribution-spec): ``GET /v2/``, ``GET|HEAD|DELETE /v2/<name>/blobs/<digest>``,
``POST /v2/<name>/blobs/uploads/`` (``?digest=`` monolithic, ``?mount=&from=`` cross-repository
mount), ``GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>``, ``GET|HEAD|PUT|DELETE
/v2/<name>/manifests/<reference>``, ``GET /v2/<name>/tags/list``, ``GET /v2/_catalog``. With
``hub=True`` also the hub's ``/token``, ``/v1/search`` and star/description endpoints
(:mod:`engine.registry.hub_http`). Every error is the spec's JSON ``{"errors": [...]}``; bodies are
streamed to disk, never held whole in memory.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import IO, Any

import tornado.web

from ..spec import DOCKER_FOREIGN_LAYER, DOCKER_LIST, DOCKER_MANIFEST, INDEX_TYPES, OCI_INDEX, OCI_MANIFEST
from ..values import field, value
from .server_auth import AccessDenied, HtpasswdAccess, HubAccess, OpenAccess, Scope
from .storage import (DIGEST_RE, RegistryStorage, StorageError, check_digest, check_name, check_tag,
                      paginate)

MAX_MANIFEST = 4 << 20
SMALL_BODY = 1 << 20        # a refused request's body up to this size is read (and dropped) first
CHUNK = 1 << 20
ACCEPTED_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST)
_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)$")


@value(frozen=False)
class Registry:
    """What the handlers share: storage, the access policy, the hub (hub mode) and the request log."""

    storage: RegistryStorage
    access: Any = field(default_factory=OpenAccess)
    hub: Any = None
    log: IO[str] | None = None
    busy_uploads: set[str] = field(default_factory=set)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: object = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail
        self.headers = headers or {}


def _blob_unknown(digest: str) -> ApiError:
    return ApiError(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})


def _manifest_unknown(reference: str) -> ApiError:
    return ApiError(404, "MANIFEST_UNKNOWN", "manifest unknown", {"reference": reference})


@tornado.web.stream_request_body
class Base(tornado.web.RequestHandler):
    """Common ground: spec errors as JSON, access checks, bodies up to 4 MiB kept in memory."""

    reg: Registry

    def initialize(self, reg: Registry) -> None:
        self.reg = reg
        self.body = bytearray()
        self.body_too_large = False
        self.deferred: Exception | None = None
        self.closing = False

    def prepare(self) -> None:
        """Runs :meth:`setup` before the body arrives; refusals are answered after a small body.

        Answering while the client still sends would make tornado close the connection (the only way
        not to read the rest), and a client reusing it would see "connection reset". So a refusal of a
        request with a small body waits for that body (dropped); a large or chunked one is answered at
        once with ``Connection: close``.
        """
        try:
            self.setup()
        except (ApiError, StorageError, AccessDenied) as e:
            headers = self.request.headers
            length = headers.get("Content-Length", "0")
            if "chunked" in headers.get("Transfer-Encoding", "").lower() or not length.isdigit() \
                    or int(length) > SMALL_BODY:
                self.closing = True
                raise
            self.deferred = e

    def setup(self) -> None:
        """Checks before the body is read (streaming handlers)."""

    def raise_deferred(self) -> None:
        if self.deferred is not None:
            raise self.deferred

    def set_default_headers(self) -> None:
        self.set_header("Docker-Distribution-API-Version", "registry/2.0")

    def data_received(self, chunk: bytes) -> None:
        if len(self.body) + len(chunk) > MAX_MANIFEST:
            self.body_too_large = True
        else:
            self.body += chunk

    @property
    def base_url(self) -> str:
        return f"{self.request.protocol}://{self.request.host}"

    def authorize(self, scope: Scope | None) -> None:
        self.reg.access.authorize(self.request.headers.get("Authorization"), self.base_url, scope)

    def repo_scope(self, name: str) -> Scope:
        method = self.request.method
        actions = ("pull",) if method in ("GET", "HEAD") else ("delete",) if method == "DELETE" else ("pull", "push")
        return Scope("repository", name, actions)

    def name(self) -> str:
        """The repository name of the URL, checked (NAME_INVALID) and authorized."""
        name = check_name(self.path_args[0])
        self.authorize(self.repo_scope(name))
        return name

    def send_json(self, obj: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(obj) + "\n")

    def send_error_json(self, status: int, code: str, message: str, detail: object = None,
                        headers: dict[str, str] | None = None) -> None:
        if self._finished:
            return
        self.clear()
        if self.closing:
            self.set_header("Connection", "close")
        for key, text in (headers or {}).items():
            self.set_header(key, text)
        error: dict[str, object] = {"code": code, "message": message}
        if detail is not None:
            error["detail"] = detail
        if self.request.method == "HEAD":
            self.set_status(status)
            self.finish()
        else:
            self.send_json({"errors": [error]}, status)

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ApiError):
            self.send_error_json(e.status, e.code, e.message, e.detail, e.headers)
        elif isinstance(e, StorageError):
            self.send_error_json(e.status, e.code, e.message, e.detail)
        elif isinstance(e, AccessDenied):
            headers = {"WWW-Authenticate": e.challenge} if e.challenge else {}
            self.send_error_json(e.status, e.code, e.message, e.detail, headers)
        else:
            super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        code = "UNSUPPORTED" if status_code in (404, 405) else "UNKNOWN"
        self.send_error_json(status_code, code, self._reason)

    async def blocking(self, fn, *args):
        """Run ``fn`` (hashing, renames) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


class VersionHandler(Base):
    def get(self) -> None:
        self.authorize(None)
        self.send_json({})


class CatalogHandler(Base):
    def get(self) -> None:
        self.authorize(Scope("registry", "catalog", ("*",)))
        n, last = _page_args(self)
        repos, more = paginate(self.reg.storage.repositories(), n, last)
        if more:
            self.set_header("Link", f'</v2/_catalog?last={repos[-1]}&n={n}>; rel="next"')
        self.send_json({"repositories": repos})


def _page_args(h: Base) -> tuple[int | None, str | None]:
    raw = h.get_argument("n", None)
    n = None
    if raw not in (None, ""):
        try:
            n = int(raw)
        except ValueError:
            raise ApiError(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested",
                           {"n": raw}) from None
        if n < 0:
            raise ApiError(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": raw})
    return n, h.get_argument("last", None) or None


class TagsHandler(Base):
    def get(self, _name: str) -> None:
        name = self.name()
        if not self.reg.storage.repo_exists(name):
            raise ApiError(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        n, last = _page_args(self)
        tags, more = paginate(self.reg.storage.tags(name), n, last)
        if more:
            self.set_header("Link", f'</v2/{name}/tags/list?last={tags[-1]}&n={n}>; rel="next"')
        self.send_json({"name": name, "tags": tags})


class BlobHandler(Base):
    async def _found(self, digest: str) -> Path:
        name = self.name()
        if not DIGEST_RE.match(digest):
            raise ApiError(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                           {"digest": digest})
        path = await self.blocking(self.reg.storage.blob_in_repo, name, digest)
        if path is None:
            raise _blob_unknown(digest)
        return path

    def _blob_headers(self, digest: str, size: int) -> None:
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(size))
        self.set_header("Docker-Content-Digest", digest)
        self.set_header("ETag", f'"{digest}"')
        self.set_header("Cache-Control", "max-age=31536000")

    async def head(self, _name: str, digest: str) -> None:
        path = await self._found(digest)
        self._blob_headers(digest, path.stat().st_size)
        self.finish()

    async def get(self, _name: str, digest: str) -> None:
        path = await self._found(digest)
        with open(path, "rb") as f:
            self._blob_headers(digest, path.stat().st_size)
            while chunk := f.read(CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()

    def delete(self, _name: str, digest: str) -> None:
        name = self.name()
        check_digest(digest)
        if not self.reg.storage.unlink_blob(name, digest):
            raise _blob_unknown(digest)
        self.set_status(202)
        self.set_header("Docker-Content-Digest", digest)
        self.finish()


class _UploadBody(Base):
    """Handlers whose request body goes to an upload session's file."""

    sink: IO[bytes] | None = None
    busy: str | None = None

    def open_sink(self, uuid: str) -> None:
        if uuid in self.reg.busy_uploads:
            raise ApiError(416, "BLOB_UPLOAD_INVALID", "another request is writing to this upload", {"uuid": uuid})
        self.reg.busy_uploads.add(uuid)
        self.busy = uuid
        self.sink = open(self.reg.storage.upload_data_path(uuid), "ab")

    def data_received(self, chunk: bytes) -> None:
        if self.sink is not None:
            self.sink.write(chunk)

    def close_sink(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        if self.busy is not None:
            self.reg.busy_uploads.discard(self.busy)
            self.busy = None

    def on_finish(self) -> None:
        self.close_sink()

    def on_connection_close(self) -> None:
        self.close_sink()  # a push killed midway: the session keeps what came, nothing is installed

    def upload_headers(self, name: str, uuid: str, size: int) -> None:
        self.set_header("Location", f"/v2/{name}/blobs/uploads/{uuid}")
        self.set_header("Range", f"0-{max(size - 1, 0)}")
        self.set_header("Docker-Upload-UUID", uuid)

    def check_range(self, name: str, uuid: str, size: int) -> None:
        """A chunk must start where the session ends (416 otherwise)."""
        header = self.request.headers.get("Content-Range")
        if header is None:
            return
        m = _RANGE_RE.match(header.strip())
        if not m or int(m.group(2)) < int(m.group(1)):
            raise ApiError(400, "BLOB_UPLOAD_INVALID", "blob upload invalid", {"Content-Range": header})
        length = self.request.headers.get("Content-Length")
        if int(m.group(1)) != size or (length is not None and int(length) != int(m.group(2)) - int(m.group(1)) + 1):
            headers = {"Location": f"/v2/{name}/blobs/uploads/{uuid}", "Range": f"0-{max(size - 1, 0)}",
                       "Docker-Upload-UUID": uuid}
            raise ApiError(416, "BLOB_UPLOAD_INVALID", "requested range not satisfiable: chunk out of order",
                           {"Content-Range": header, "size": size}, headers)

    def blob_created(self, name: str, digest: str) -> None:
        self.set_status(201)
        self.set_header("Location", f"/v2/{name}/blobs/{digest}")
        self.set_header("Docker-Content-Digest", digest)
        self.finish()


class UploadStartHandler(_UploadBody):
    def setup(self) -> None:
        self.repo = self.name()
        self.digest = self.get_argument("digest", None)
        self.mount = self.get_argument("mount", None)
        self.session = None
        if self.digest is not None and not self.mount:
            check_digest(self.digest)
            self.session = self.reg.storage.start_upload(self.repo)
            self.open_sink(self.session.uuid)

    async def post(self, _name: str) -> None:
        self.raise_deferred()
        storage = self.reg.storage
        source = self.get_argument("from", None)
        if self.mount and source and DIGEST_RE.match(self.mount):
            if await self.blocking(storage.mount_blob, self.repo, self.mount, source):
                return self.blob_created(self.repo, self.mount)
        if self.session is not None and self.digest is not None:
            self.close_sink()
            digest = await self.blocking(storage.finish_upload, self.repo, self.session.uuid, self.digest)
            return self.blob_created(self.repo, digest)
        session = storage.start_upload(self.repo)
        self.set_status(202)
        self.upload_headers(self.repo, session.uuid, 0)
        self.finish()


class UploadHandler(_UploadBody):
    def setup(self) -> None:
        self.repo = self.name()
        self.session = self.reg.storage.upload(self.repo, self.path_args[1])
        if self.request.method in ("PATCH", "PUT"):
            if self.request.method == "PUT":
                check_digest(self.get_argument("digest", ""))
            self.check_range(self.repo, self.session.uuid, self.session.size)
            self.open_sink(self.session.uuid)

    def get(self, _name: str, uuid: str) -> None:
        self.raise_deferred()
        self.set_status(204)
        self.upload_headers(self.repo, uuid, self.session.size)
        self.finish()

    def patch(self, _name: str, uuid: str) -> None:
        self.close_sink()
        self.raise_deferred()
        size = self.reg.storage.upload(self.repo, uuid).size
        self.set_status(202)
        self.upload_headers(self.repo, uuid, size)
        self.finish()

    async def put(self, _name: str, uuid: str) -> None:
        self.close_sink()
        self.raise_deferred()
        digest = await self.blocking(self.reg.storage.finish_upload, self.repo, uuid, self.get_argument("digest"))
        self.blob_created(self.repo, digest)

    def delete(self, _name: str, uuid: str) -> None:
        self.raise_deferred()
        self.reg.storage.cancel_upload(uuid)
        self.set_status(204)
        self.finish()


class ManifestHandler(Base):
    async def _stored(self, reference: str):
        name = self.name()
        found = await self.blocking(self.reg.storage.manifest, name, reference)
        if found is None:
            raise _manifest_unknown(reference)
        self.set_header("Content-Type", found.media_type)
        self.set_header("Docker-Content-Digest", found.digest)
        self.set_header("ETag", f'"{found.digest}"')
        self.set_header("Content-Length", str(len(found.data)))
        return found

    async def head(self, _name: str, reference: str) -> None:
        await self._stored(reference)
        self.finish()

    async def get(self, _name: str, reference: str) -> None:
        self.finish(bytes((await self._stored(reference)).data))

    async def put(self, _name: str, reference: str) -> None:
        name = self.name()
        if self.body_too_large:
            raise ApiError(413, "SIZE_INVALID", "manifest too large", {"limit": MAX_MANIFEST})
        data = bytes(self.body)
        media_type = self._media_type(data)
        tag = None if DIGEST_RE.match(reference) else check_tag(reference)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if tag is None and digest != reference:
            raise ApiError(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                           {"expected": reference, "actual": digest})
        await self.blocking(self._check_references, name, data, media_type)
        self.reg.storage.put_manifest(name, data, media_type, tag)
        self.set_status(201)
        self.set_header("Location", f"/v2/{name}/manifests/{digest}")
        self.set_header("Docker-Content-Digest", digest)
        self.finish()

    def _media_type(self, data: bytes) -> str:
        content_type = (self.request.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "MANIFEST_INVALID", "manifest invalid", {"reason": "not JSON"}) from None
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
            raise ApiError(400, "MANIFEST_INVALID", "manifest invalid", {"reason": "schemaVersion 2 expected"})
        declared = doc.get("mediaType")
        if declared is not None and declared != content_type:
            raise ApiError(400, "MANIFEST_INVALID", "manifest invalid",
                           {"reason": f"Content-Type {content_type!r} is not the manifest's mediaType {declared!r}"})
        if content_type not in ACCEPTED_MANIFESTS:
            raise ApiError(400, "MANIFEST_INVALID", "manifest invalid",
                           {"reason": f"unsupported manifest media type {content_type!r}"})
        return content_type

    def _check_references(self, name: str, data: bytes, media_type: str) -> None:
        doc = json.loads(data)
        storage = self.reg.storage
        try:
            if media_type in INDEX_TYPES:
                for m in doc["manifests"]:
                    if not DIGEST_RE.match(m["digest"]) or not storage.has_manifest(name, m["digest"]):
                        raise ApiError(400, "MANIFEST_BLOB_UNKNOWN", "manifest blob unknown to registry",
                                       {"digest": m["digest"]})
                return
            for d in [doc["config"], *doc["layers"]]:
                if d.get("mediaType") == DOCKER_FOREIGN_LAYER and d.get("urls"):
                    continue
                if not DIGEST_RE.match(str(d["digest"])) or storage.blob_in_repo(name, d["digest"]) is None:
                    raise ApiError(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", {"digest": d["digest"]})
        except (KeyError, TypeError) as e:
            raise ApiError(400, "MANIFEST_INVALID", "manifest invalid", {"reason": f"missing field {e}"}) from None

    def delete(self, _name: str, reference: str) -> None:
        name = self.name()
        storage = self.reg.storage
        deleted = storage.delete_manifest(name, reference) if DIGEST_RE.match(reference) \
            else storage.delete_tag(name, check_tag(reference))
        if not deleted:
            raise _manifest_unknown(reference)
        self.set_status(202)
        self.finish()


class NotFoundHandler(Base):
    def unsupported(self, *args: str) -> None:
        raise ApiError(404, "UNSUPPORTED", "The operation is unsupported.", {"path": self.request.path})

    get = head = post = put = patch = delete = options = unsupported


def make_app(root: str | Path, *, hub: bool = False, auth_file: str | Path | None = None,
             log: IO[str] | None = None) -> tornado.web.Application:
    """The tornado application of a registry (or, with ``hub``, a classroom hub) over ``root``."""
    storage = RegistryStorage(root)
    storage.purge_uploads()
    reg = Registry(storage, log=log)
    if hub:
        from .hub import Hub

        reg.hub = Hub(storage)
        reg.access = HubAccess(reg.hub)
    elif auth_file is not None:
        reg.access = HtpasswdAccess(auth_file)
    name = r"(.+)"
    routes: list = [
        (r"/v2/?", VersionHandler),
        (r"/v2/_catalog", CatalogHandler),
        (rf"/v2/{name}/tags/list", TagsHandler),
        (rf"/v2/{name}/manifests/([^/]+)", ManifestHandler),
        (rf"/v2/{name}/blobs/uploads/?", UploadStartHandler),
        (rf"/v2/{name}/blobs/uploads/([^/]+)", UploadHandler),
        (rf"/v2/{name}/blobs/([^/]+)", BlobHandler),
    ]
    if hub:
        from .hub_http import hub_routes

        routes += hub_routes()
    routes = [(pattern, handler, {"reg": reg}) for pattern, handler in routes]
    return tornado.web.Application(routes, default_handler_class=NotFoundHandler,
                                   default_handler_args={"reg": reg}, log_function=_log_request,
                                   registry=reg)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    reg = handler.application.settings["registry"]
    if reg.log is None:
        return
    r = handler.request
    reg.log.write(f'{r.remote_ip} "{r.method} {r.uri}" {handler.get_status()} '
                  f"{1000 * r.request_time():.1f}ms\n")
    reg.log.flush()
