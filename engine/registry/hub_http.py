"""The hub's own HTTP endpoints: the token server, Docker Hub's v1 search, stars and descriptions.

* ``GET /token?service=…&scope=repository:NAME:pull,push`` with optional Basic credentials (anonymous
  gets pull only) → ``{"token", "access_token", "expires_in", "issued_at"}``; wrong password → 401.
  ``POST /token`` (OAuth2 ``grant_type=password``) answers the same way.
* ``GET /v1/search?q=TERM&n=25`` → ``{"num_results", "query", "results": [{name, description,
  star_count, is_official, is_automated}], "page", "page_size", "num_pages"}``.
* ``GET /v1/_ping`` (``docker search`` checks it first).
* ``POST|DELETE /v1/repositories/NAME/star`` (Basic) → ``{"star_count": N}``;
  ``PUT /v1/repositories/NAME/description`` (Basic, owner or admin) with ``{"description": "…"}``.
"""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone

from . import tokens
from .hub import HubError
from .server import ApiError, Base
from .server_auth import AccessDenied, parse_basic
from .storage import check_name


class TokenHandler(Base):
    def _answer(self, header: str | None, scopes: list[str]) -> None:
        try:
            token = self.reg.access.issue(header, scopes)
        except AccessDenied:
            self.send_json({"details": "incorrect username or password"}, 401)
            return
        issued = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.send_json({"token": token, "access_token": token, "expires_in": tokens.LIFETIME,
                        "issued_at": issued})

    def get(self) -> None:
        self._answer(self.request.headers.get("Authorization"), self.get_arguments("scope"))

    def post(self) -> None:
        """OAuth2's password grant, which some clients prefer to GET with Basic credentials."""
        from urllib.parse import parse_qs

        form = {k: v[-1] for k, v in parse_qs(bytes(self.body).decode(errors="replace")).items()}
        if form.get("grant_type") != "password":
            self.send_json({"error": "unsupported_grant_type"}, 400)
            return
        credentials = f"{form.get('username', '')}:{form.get('password', '')}".encode()
        self._answer("Basic " + base64.b64encode(credentials).decode(), form.get("scope", "").split())


class SearchHandler(Base):
    def get(self) -> None:
        term = self.get_argument("q", "")
        try:
            limit = min(max(int(self.get_argument("n", "25")), 1), 100)
        except ValueError:
            raise ApiError(400, "UNSUPPORTED", "invalid value for n") from None
        total, results = self.reg.hub.search(term, limit)
        self.send_json({"num_results": total, "query": term, "page": 1, "page_size": limit,
                        "num_pages": max(1, -(-total // limit)), "results": [r.to_dict() for r in results]})


class PingHandler(Base):
    """The v1 ping ``docker search`` sends before searching a registry other than Docker Hub."""

    def get(self) -> None:
        self.set_header("X-Docker-Registry-Version", "0.6.0")
        self.set_header("X-Docker-Registry-Standalone", "true")
        self.send_json(True)


class _AccountHandler(Base):
    def account(self):
        creds = parse_basic(self.request.headers.get("Authorization"))
        account = self.reg.hub.authenticate(*creds) if creds else None
        if account is None:
            raise AccessDenied(401, "UNAUTHORIZED", "authentication required", 'Basic realm="layerlab-hub"')
        return account

    def _hub_call(self, fn, *args):
        try:
            return fn(*args)
        except HubError as e:
            raise ApiError(404, "NAME_UNKNOWN", str(e)) from None


class StarHandler(_AccountHandler):
    def post(self, name: str) -> None:
        account = self.account()
        self.send_json({"star_count": self._hub_call(self.reg.hub.star, check_name(name), account.name)})

    def delete(self, name: str) -> None:
        account = self.account()
        count = self._hub_call(lambda: self.reg.hub.star(check_name(name), account.name, on=False))
        self.send_json({"star_count": count})


class DescriptionHandler(_AccountHandler):
    def put(self, name: str) -> None:
        account = self.account()
        check_name(name)
        if not self.reg.hub.may_write(account, name):
            raise ApiError(403, "DENIED", f"only the owner of {name} or an administrator may describe it")
        try:
            text = str(json.loads(bytes(self.body))["description"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "UNSUPPORTED", 'expected JSON {"description": "..."}') from None
        self._hub_call(self.reg.hub.describe, name, text)
        self.send_json({"name": name, "description": text, "updated": int(time.time())})


def hub_routes() -> list:
    return [
        (r"/token", TokenHandler),
        (r"/v1/search", SearchHandler),
        (r"/v1/_ping", PingHandler),
        (r"/v1/repositories/(.+)/star", StarHandler),
        (r"/v1/repositories/(.+)/description", DescriptionHandler),
    ]
