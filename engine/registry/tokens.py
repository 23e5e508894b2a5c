"""Bearer tokens of the classroom hub: JSON Web Tokens signed with HS256 (an HMAC secret).

The secret lives in ``<registry root>/hub/token-secret`` (created on first use, mode 0600), so tokens
stay valid across restarts of the hub and are shared by every process serving the same root.
A token carries its subject (``""`` for anonymous) and the access it grants, as Docker's token
server does::

    {"sub": "alice", "access": [{"type": "repository", "name": "alice/web", "actions": ["pull", "push"]}],
     "iat": 1700000000, "exp": 1700000300, "iss": "layerlab-hub", "aud": "layerlab-hub"}
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

from ..values import value

ISSUER = "layerlab-hub"
LIFETIME = 300  # seconds, like Docker Hub's tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(root: Path) -> bytes:
    """The hub's HMAC secret, created atomically (0600) if missing."""
    path = root / "hub" / "token-secret"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".secret-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # first writer wins; everyone reads the winner's secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


@value
class Grant:
    """What a token allows: ``actions`` on resource ``type``:``name``."""

    type: str
    name: str
    actions: tuple[str, ...]


@value
class Claims:
    subject: str
    grants: tuple[Grant, ...]
    expires: int

    def allows(self, type_: str, name: str, action: str) -> bool:
        return any(g.type == type_ and g.name == name and (action in g.actions or "*" in g.actions)
                   for g in self.grants)


class InvalidToken(Exception):
    """A token is malformed, wrongly signed or expired."""


def issue(secret: bytes, subject: str, grants: tuple[Grant, ...], *, now: float | None = None,
          lifetime: int = LIFETIME) -> str:
    """A signed JWT for ``subject`` granting ``grants``."""
    issued = int(now if now is not None else time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"iss": ISSUER, "aud": ISSUER, "sub": subject, "iat": issued, "nbf": issued - 1,
               "exp": issued + lifetime, "jti": secrets.token_hex(8),
               "access": [{"type": g.type, "name": g.name, "actions": list(g.actions)} for g in grants]}
    signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}." \
                    f"{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def verify(secret: bytes, token: str, *, now: float | None = None) -> Claims:
    """The claims of a valid token; :class:`InvalidToken` otherwise."""
    try:
        head, body, sig = token.split(".")
        expected = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(sig)):
            raise InvalidToken("bad signature")
        if json.loads(_unb64(head)).get("alg") != "HS256":
            raise InvalidToken("unexpected algorithm")
        payload = json.loads(_unb64(body))
        grants = tuple(Grant(str(a["type"]), str(a["name"]), tuple(str(x) for x in a["actions"]))
                       for a in payload.get("access") or ())
        claims = Claims(str(payload.get("sub", "")), grants, int(payload["exp"]))
    except InvalidToken:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidToken(f"malformed token: {e}") from None
    if claims.expires < (now if now is not None else time.time()):
        raise InvalidToken("token expired")
    return claims
