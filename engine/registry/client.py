"""An HTTP client for one registry (OCI Distribution API), on :mod:`requests`.

Hostile-by-default: no proxies from the environment (``trust_env=False``), timeouts on every
request, redirects followed by hand (http/https only, TLS verified, to hosts the settings allow,
credentials dropped when the host changes), every body read with a size bound. Errors become
:class:`~engine.errors.RegistryError` with Docker's wording (``manifest unknown: manifest unknown``).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..errors import RegistryError
from ..spec import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from .auth import TOKEN_RESPONSE_LIMIT, Authenticator
from .credentials import Credentials
from .search import SearchResult
from .settings import Settings

MANIFEST_LIMIT = 4 << 20            # bytes of a manifest or index
ERROR_BODY_LIMIT = 64 << 10
SEARCH_LIMIT = 4 << 20
TIMEOUT = (10, 120)                 # connect, read (seconds)
MAX_REDIRECTS = 5
MAX_CONNECTIONS = 8                 # kept open per host (transfers run a few blobs at once)
CHUNK = 1 << 20
TICK = 4 << 20                      # bytes between progress reports of an upload
ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST))
USER_AGENT = "layerlab/0.1 (docker/20.10-compatible)"


_BODILESS = {401: ("UNAUTHORIZED", "authentication required"),
             403: ("DENIED", "requested access to the resource is denied")}


def registry_error(resp: requests.Response, what: str = "") -> RegistryError:
    """Docker's text for an error response: the first ``code: message`` of its JSON errors."""
    try:
        body = read_limited(resp, ERROR_BODY_LIMIT, what="error response")
    except RegistryError:
        body = b""
    code, message = "", ""
    try:
        errors = json.loads(body).get("errors") or []
        if errors and isinstance(errors[0], dict):
            code = str(errors[0].get("code") or "")
            message = str(errors[0].get("message") or "")
    except (ValueError, AttributeError):
        pass
    if not code and resp.status_code in _BODILESS:   # a HEAD answer, or a registry that sends no errors
        code, message = _BODILESS[resp.status_code]
    if code:
        text = f"{code.lower().replace('_', ' ')}: {message}"
    else:
        text = f"{what + ': ' if what else ''}unexpected status from {resp.request.method} request to " \
               f"{resp.url}: {resp.status_code} {resp.reason or ''}".rstrip()
    return RegistryError(text, status=resp.status_code, code=code)


def read_limited(resp: requests.Response, limit: int, *, what: str = "response") -> bytes:
    """The whole body, refusing more than ``limit`` bytes (announced or sent)."""
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        resp.close()
        raise RegistryError(f"{what} too large: {length} bytes (limit {limit})")
    parts, n = [], 0
    for chunk in resp.iter_content(CHUNK):
        n += len(chunk)
        if n > limit:
            resp.close()
            raise RegistryError(f"{what} too large: more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


class _Slice:
    """``length`` bytes of an open file from ``offset``: a request body with a known length.

    ``progress(n)`` is told the bytes handed to the socket so far (every ``TICK`` and at the end);
    a set ``cancelled`` event aborts the request at the next read."""

    def __init__(self, f: BinaryIO, offset: int, length: int, *, progress: Callable[[int], None] | None = None,
                 cancelled: Any = None) -> None:
        self.f, self.offset, self.left = f, offset, length
        self.length = length
        self.progress, self.cancelled = progress, cancelled
        self.next_tick = TICK
        f.seek(offset)

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if self.cancelled is not None and self.cancelled.is_set():
            raise RegistryError("upload cancelled")
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(min(n, CHUNK))
        self.left -= len(data)
        if self.progress is not None:
            done = self.length - self.left
            if done >= self.next_tick or self.left <= 0:
                self.next_tick = done + TICK
                self.progress(done)
        return data


class _Adapter(HTTPAdapter):
    """requests' adapter with urllib3 sending request bodies in ``CHUNK`` blocks (not 16 KiB)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = CHUNK
        super().init_poolmanager(*args, **kwargs)


class RegistryClient:
    """Requests to one registry host for one operation (tokens are cached for its lifetime)."""

    def __init__(self, host: str, settings: Settings, creds: Credentials | None = None) -> None:
        self.host = host
        self.settings = settings
        self.base = settings.base_url(host)
        self.session = requests.Session()
        self.session.trust_env = False          # no proxies, no .netrc
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.max_redirects = MAX_REDIRECTS
        adapter = _Adapter(pool_maxsize=MAX_CONNECTIONS)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.auth = Authenticator(creds, self._fetch_token)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------------

    def _check_target(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise RegistryError(f"refusing redirect to {url!r}: only http and https are followed")
        if not self.settings.may_contact(parts.netloc):
            raise RegistryError(f"refusing to contact {parts.netloc}: not loopback and allow_internet is off")
        if parts.scheme == "http" and not self.settings.is_insecure(parts.netloc):
            raise RegistryError(f"refusing plain http to {parts.netloc}: not an insecure registry")

    def _send(self, method: str, url: str, *, headers: dict[str, str], data: Any, params: Any,
              stream: bool) -> requests.Response:
        """One request, redirects followed by hand."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_target(url)
            body = data() if callable(data) else data
            try:
                resp = self.session.request(method, url, headers=headers, data=body, params=params, stream=stream,
                                            timeout=TIMEOUT, allow_redirects=False, verify=True)
            except requests.exceptions.SSLError as e:
                raise RegistryError(f"{method} {url}: TLS error: {e}") from None
            except requests.RequestException as e:
                raise RegistryError(f'Get "{url}": {_reason(e, url)}') from None
            if resp.status_code not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                return resp
            target = urljoin(resp.url, resp.headers["Location"])
            resp.close()
            if urlsplit(target).netloc != urlsplit(url).netloc:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method != "HEAD"):
                method, data = ("GET" if method != "HEAD" else "HEAD"), None
            url, params = target, None
        raise RegistryError(f"{method} {url}: too many redirects")

    def request(self, method: str, url: str, *, scope: str = "", headers: dict[str, str] | None = None,
                data: Any = None, params: Any = None, stream: bool = False) -> requests.Response:
        """A request with the auth challenge answered (once); ``data`` may be a callable making the body."""
        if not url.startswith(("http://", "https://")):
            url = self.base + url
        hdrs = dict(headers or {})
        same_host = urlsplit(url).netloc == self.host      # credentials go to the registry only
        if self.auth.header and same_host:
            hdrs["Authorization"] = self.auth.header
        resp = self._send(method, url, headers=hdrs, data=data, params=params, stream=stream)
        if resp.status_code != 401:
            return resp
        challenge = resp.headers.get("WWW-Authenticate", "")
        first = registry_error(resp)
        answer = self.auth.answer(challenge, scope) if challenge and same_host else None
        if answer is None or answer == hdrs.get("Authorization"):
            raise first
        hdrs["Authorization"] = answer
        resp = self._send(method, url, headers=hdrs, data=data, params=params, stream=stream)
        if resp.status_code == 401:
            raise registry_error(resp)
        return resp

    def _fetch_token(self, realm: str, params: list[tuple[str, str]], headers: dict[str, str]) -> tuple[int, bytes]:
        resp = self._send("GET", realm, headers=headers, data=None, params=params, stream=True)
        with resp:
            return resp.status_code, read_limited(resp, TOKEN_RESPONSE_LIMIT, what="token response")

    # --- API -------------------------------------------------------------------------------------

    @staticmethod
    def scope(repo: str, actions: str = "pull") -> str:
        return f"repository:{repo}:{actions}"

    def ping(self, headers: dict[str, str] | None = None) -> requests.Response:
        """``GET /v2/`` without answering challenges (login does that itself)."""
        resp = self._send("GET", self.base + "/v2/", headers=headers or {}, data=None, params=None, stream=True)
        resp.close()
        return resp

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        """Manifest or index bytes and their media type (content negotiation over OCI and Docker types)."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scope=self.scope(repo),
                            headers={"Accept": ACCEPT}, stream=True)
        with resp:
            if resp.status_code != 200:
                raise registry_error(resp)
            data = read_limited(resp, MANIFEST_LIMIT, what="manifest")
            return data, resp.headers.get("Content-Type", "").split(";")[0].strip()

    def blob_exists(self, repo: str, digest: str, actions: str = "pull") -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=self.scope(repo, actions))
        resp.close()
        if resp.status_code == 200:
            return True
        if resp.status_code in (403, 404):   # unknown, or not for us to know: the upload will say which
            return False
        raise registry_error(resp)

    def open_blob(self, repo: str, digest: str) -> requests.Response:
        """A streaming response with the blob (the caller verifies the digest and closes it)."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=self.scope(repo), stream=True)
        if resp.status_code != 200:
            with resp:
                raise registry_error(resp)
        return resp

    def mount(self, repo: str, digest: str, source: str) -> tuple[bool, str | None]:
        """Cross-repository mount: (True, None) when mounted, else (False, upload location)."""
        query = urlencode({"mount": digest, "from": source})
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?{query}",
                            scope=f"{self.scope(repo, 'pull,push')} {self.scope(source)}",
                            headers={"Content-Length": "0"})
        resp.close()
        if resp.status_code == 201:
            return True, None
        if resp.status_code == 202:
            return False, self._location(resp)
        raise registry_error(resp)

    def start_upload(self, repo: str) -> str:
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=self.scope(repo, "pull,push"),
                            headers={"Content-Length": "0"})
        resp.close()
        if resp.status_code != 202:
            raise registry_error(resp)
        return self._location(resp)

    def _location(self, resp: requests.Response) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(f"registry answered {resp.status_code} without an upload location")
        return urljoin(resp.url, loc)

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        return location + ("&" if "?" in location else "?") + "digest=" + quote(digest, safe="")

    def upload(self, repo: str, location: str, f: BinaryIO, size: int, digest: str, *,
               chunk_threshold: int | None = None, chunk_size: int = 32 << 20,
               progress: Callable[[int], None] | None = None, cancelled: Any = None) -> None:
        """Upload a blob: one monolithic PUT streamed from ``f`` (what ``curl -T`` does), or, for
        blobs of ``chunk_threshold`` bytes or more, PATCHes of ``chunk_size`` with ``Content-Range``
        and a closing PUT. ``progress(bytes sent so far)`` is called while it goes."""
        scope = self.scope(repo, "pull,push")
        if chunk_threshold is None or size < chunk_threshold:
            resp = self.request("PUT", self._with_digest(location, digest), scope=scope,
                                headers={"Content-Type": "application/octet-stream"},
                                data=lambda: _Slice(f, 0, size, progress=progress, cancelled=cancelled))
            resp.close()
            if resp.status_code != 201:
                raise registry_error(resp)
            return
        offset = 0
        while offset < size:
            n = min(chunk_size, size - offset)
            start = offset
            resp = self.request("PATCH", location, scope=scope,
                                headers={"Content-Type": "application/octet-stream",
                                         "Content-Range": f"{start}-{start + n - 1}"},
                                data=lambda: _Slice(f, start, n, cancelled=cancelled))
            resp.close()
            if resp.status_code != 202:
                raise registry_error(resp)
            location = self._location(resp)
            offset += n
            if progress is not None:
                progress(offset)
        resp = self.request("PUT", self._with_digest(location, digest), scope=scope,
                            headers={"Content-Length": "0"})
        resp.close()
        if resp.status_code != 201:
            raise registry_error(resp)

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str | None:
        """PUT a manifest; return the registry's ``Docker-Content-Digest``."""
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", scope=self.scope(repo, "pull,push"),
                            headers={"Content-Type": media_type}, data=data)
        resp.close()
        if resp.status_code not in (200, 201):
            raise registry_error(resp)
        return resp.headers.get("Docker-Content-Digest")

    def tags(self, repo: str) -> list[str]:
        """All tags of a repository (following ``Link`` pagination)."""
        out: list[str] = []
        url: str | None = f"/v2/{repo}/tags/list"
        for _ in range(1000):
            if url is None:
                break
            resp = self.request("GET", url, scope=self.scope(repo), stream=True)
            with resp:
                if resp.status_code != 200:
                    raise registry_error(resp)
                body = read_limited(resp, MANIFEST_LIMIT, what="tag list")
                link = resp.links.get("next", {}).get("url")
            try:
                tags = json.loads(body).get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError("invalid tag list") from None
            out += [t for t in tags if isinstance(t, str)]
            url = urljoin(resp.url, link) if link else None
        return out

    def search(self, term: str, limit: int) -> list[SearchResult]:
        resp = self.request("GET", "/v1/search", params={"q": term, "n": str(limit)}, stream=True)
        with resp:
            if resp.status_code != 200:
                raise registry_error(resp)
            body = read_limited(resp, SEARCH_LIMIT, what="search response")
        try:
            results = json.loads(body).get("results") or []
        except (ValueError, AttributeError):
            raise RegistryError("invalid search response") from None
        return [SearchResult.from_dict(r) for r in results if isinstance(r, dict)]


def _reason(e: requests.RequestException, url: str = "") -> str:
    text = str(e)
    if "Connection refused" in text:   # Go's net error, as docker prints it
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"dial tcp {'[' + host + ']' if ':' in host else host}:{port}: connect: connection refused"
    if isinstance(e, requests.Timeout):
        return "timeout"
    return text
