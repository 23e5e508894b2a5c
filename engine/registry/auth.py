"""The registry auth challenge (distribution-spec / Docker token auth).

A request answered ``401`` carries ``WWW-Authenticate``: ``Basic realm=…`` (retry with the stored
credentials) or ``Bearer realm=…,service=…,scope=…`` (GET the realm, with Basic credentials when
there are any, read ``token``/``access_token``, retry with ``Authorization: Bearer``). Tokens are
cached per (realm, service, scope) for one operation (:class:`Authenticator` lives as long as it).
"""
from __future__ import annotations

import base64
import re
import threading

from ..errors import RegistryError
from ..values import value
from .credentials import Credentials

_PARAM_RE = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
TOKEN_RESPONSE_LIMIT = 1 << 20


@value
class Challenge:
    scheme: str                         # "basic" or "bearer" (lower case)
    params: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str:
        return dict(self.params).get(key, "")


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header, or None when there is none."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: list[tuple[str, str]] = []
    pos = 0
    while pos < len(rest):
        m = _PARAM_RE.match(rest, pos)
        if not m or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else (m.group(3) or "")
        params.append((m.group(1).lower(), re.sub(r"\\(.)", r"\1", value)))
        pos = m.end()
    return Challenge(scheme.lower(), tuple(params))


def basic_header(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


class Authenticator:
    """Answers challenges for one operation against one registry; remembers what worked."""

    def __init__(self, creds: Credentials | None, fetch_token) -> None:
        # fetch_token(realm, params, headers) -> (status, body bytes); supplied by the client (its session)
        self.creds = creds
        self._fetch_token = fetch_token
        self._tokens: dict[tuple[str, str, str], str] = {}
        self._header: str | None = None           # the Authorization value of the last success
        self._lock = threading.Lock()              # a transfer's threads share one token per scope

    @property
    def header(self) -> str | None:
        return self._header

    def answer(self, challenge_header: str, scope_hint: str = "") -> str:
        """The Authorization value to retry with after a 401; RegistryError when there is none."""
        with self._lock:
            return self._answer(challenge_header, scope_hint)

    def _answer(self, challenge_header: str, scope_hint: str) -> str:
        ch = parse_challenge(challenge_header)
        if ch is None:
            raise RegistryError("unauthorized: authentication required", status=401, code="UNAUTHORIZED")
        if ch.scheme == "basic":
            if self.creds is None:
                raise RegistryError("no basic auth credentials", status=401, code="UNAUTHORIZED")
            self._header = basic_header(self.creds)
            return self._header
        if ch.scheme != "bearer":
            raise RegistryError(f"unsupported authentication scheme {ch.scheme!r}", status=401)
        realm = ch.get("realm")
        if not realm.startswith(("http://", "https://")):
            raise RegistryError(f"invalid token realm {realm!r}", status=401)
        scope = ch.get("scope") or scope_hint
        key = (realm, ch.get("service"), scope)
        if key not in self._tokens:
            self._tokens[key] = self._token(realm, ch.get("service"), scope)
        self._header = "Bearer " + self._tokens[key]
        return self._header

    def _token(self, realm: str, service: str, scope: str) -> str:
        import json

        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        for s in scope.split():
            params.append(("scope", s))
        headers = {"Authorization": basic_header(self.creds)} if self.creds else {}
        status, body = self._fetch_token(realm, params, headers)
        if status == 401:
            raise RegistryError("unauthorized: incorrect username or password", status=401, code="UNAUTHORIZED")
        if status != 200:
            raise RegistryError(f"token request to {realm} failed with status: {status}", status=status)
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise RegistryError(f"invalid token response from {realm}", status=status)
        return token
