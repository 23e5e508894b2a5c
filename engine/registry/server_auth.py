"""Who may do what on the embedded registry: nobody checked, htpasswd (Basic) or hub tokens (Bearer).

Each policy's :meth:`authorize` gets the request's ``Authorization`` header, the registry's base URL
and the scope wanted (``repository``, name, actions); it returns nothing when allowed and raises
:class:`AccessDenied` (status, error code, message, ``WWW-Authenticate`` challenge) otherwise,
exactly as the Docker registry (Basic) or Docker Hub (Bearer) answer.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from pathlib import Path

from ..values import value
from . import tokens
from .hub import Hub, denial_message


class AccessDenied(Exception):
    def __init__(self, status: int, code: str, message: str, challenge: str | None = None,
                 detail: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.challenge = challenge
        self.detail = detail


@value
class Scope:
    type: str            # "repository" or "registry"
    name: str            # repository name, or "catalog"
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class OpenAccess:
    """No authentication, like ``docker run registry``."""

    def authorize(self, header: str | None, base_url: str, scope: Scope | None) -> None:
        return None


class HtpasswdAccess:
    """HTTP Basic against an htpasswd file with bcrypt hashes (the only kind the Docker registry takes)."""

    def __init__(self, path: str | Path, realm: str = "layerlab-registry") -> None:
        self.path = Path(path)
        self.realm = realm
        self._ok: set[str] = set()
        self._lock = threading.Lock()
        self.users()  # fail early on an unreadable file

    def users(self) -> dict[str, str]:
        users = {}
        for line in self.path.read_text().splitlines():
            name, sep, hashed = line.strip().partition(":")
            if sep and hashed.startswith(("$2y$", "$2b$", "$2a$")):
                users[name] = hashed
        return users

    def check(self, user: str, password: str) -> bool:
        import bcrypt

        hashed = self.users().get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).hexdigest()
        with self._lock:
            if key in self._ok:
                return True
        if not bcrypt.checkpw(password.encode(), hashed.replace("$2y$", "$2b$", 1).encode()):
            return False
        with self._lock:
            self._ok.add(key)
        return True

    def authorize(self, header: str | None, base_url: str, scope: Scope | None) -> None:
        creds = parse_basic(header)
        if creds is None or not self.check(*creds):
            raise AccessDenied(401, "UNAUTHORIZED", "authentication required",
                               f'Basic realm="{self.realm}"')


class HubAccess:
    """Docker Hub's token flow: 401 + Bearer challenge, tokens from ``<base>/token``."""

    service = "layerlab-hub"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.secret = tokens.load_secret(hub.storage.root)

    def challenge(self, base_url: str, scope: Scope | None, error: str | None = None) -> str:
        text = f'Bearer realm="{base_url}/token",service="{self.service}"'
        if scope is not None:
            text += f',scope="{scope}"'
        if error:
            text += f',error="{error}"'
        return text

    def authorize(self, header: str | None, base_url: str, scope: Scope | None) -> None:
        if not header or not header.lower().startswith("bearer "):
            raise AccessDenied(401, "UNAUTHORIZED", "authentication required", self.challenge(base_url, scope))
        try:
            claims = tokens.verify(self.secret, header[7:].strip())
        except tokens.InvalidToken as e:
            raise AccessDenied(401, "UNAUTHORIZED", f"authentication required ({e})",
                               self.challenge(base_url, scope, "invalid_token")) from None
        if scope is None:
            return
        missing = [a for a in scope.actions if not claims.allows(scope.type, scope.name, a)]
        if not missing:
            return
        account = self.hub.account(claims.subject) if claims.subject else None
        if account is not None and scope.type == "repository" \
                and set(self.hub.granted(account, scope.type, scope.name, tuple(missing))) != set(missing):
            # a new token would not help either: say why, the way Docker Hub does (403 DENIED)
            raise AccessDenied(403, "DENIED", denial_message(claims.subject, scope.name),
                               detail=[{"Type": "repository", "Name": scope.name, "Action": a} for a in missing])
        # anonymous, or a token asked for less than the account may have: ask for a better token
        raise AccessDenied(401, "UNAUTHORIZED", "authentication required",
                           self.challenge(base_url, scope, "insufficient_scope"),
                           detail=[{"Type": scope.type, "Name": scope.name, "Action": a} for a in missing])

    def issue(self, header: str | None, scopes: list[str]) -> str:
        """A token for the Basic credentials in ``header`` (anonymous without); AccessDenied if wrong."""
        account = None
        creds = parse_basic(header)
        if creds is not None:
            account = self.hub.authenticate(*creds)
            if account is None:
                raise AccessDenied(401, "UNAUTHORIZED", "incorrect username or password")
        grants = []
        for text in scopes:
            parts = text.split(":")
            if len(parts) < 3:
                continue
            type_, name, actions = parts[0].split("(")[0], ":".join(parts[1:-1]), tuple(parts[-1].split(","))
            allowed = self.hub.granted(account, type_, name, actions)
            if allowed:
                grants.append(tokens.Grant(type_, name, allowed))
        return tokens.issue(self.secret, account.name if account else "", tuple(grants))
