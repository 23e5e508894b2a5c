"""``docker login``, ``logout`` and ``search``.

Login verifies the credentials against the registry's ``/v2/`` (answering a Basic or Bearer
challenge with them) before writing them to Docker's ``config.json``; the texts are Docker's.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import RegistryError
from .auth import basic_header, parse_challenge
from .client import RegistryClient
from .credentials import HUB_SERVER, Credentials, erase, logout_keys, server_key, store
from .search import SearchResult
from .settings import HUB_DOMAIN, Settings


def _host_for(key: str, settings: Settings) -> str:
    return settings.registry_host(HUB_DOMAIN) if key == HUB_SERVER else key


def login(settings: Settings, server: str | None, username: str, password: str) -> tuple[str, Path]:
    """Verify and store credentials; return ``"Login Succeeded"`` and the config file written."""
    key = server_key(server)
    host = _host_for(key, settings)
    creds = Credentials(username, password)
    with RegistryClient(host, settings, creds) as client:
        url = f"{client.base}/v2/"
        resp = client.ping()
        if resp.status_code == 401:
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            if challenge is not None and challenge.scheme == "bearer":
                try:
                    client.auth.answer(resp.headers["WWW-Authenticate"])
                except RegistryError as e:
                    raise RegistryError(f'Get "{url}": {e}', status=e.status, code=e.code) from None
            else:
                resp = client.ping({"Authorization": basic_header(creds)})
                if resp.status_code != 200:
                    raise RegistryError(f"login attempt to {url} failed with status: {resp.status_code} "
                                        f"{resp.reason}", status=resp.status_code)
        elif resp.status_code != 200:
            raise RegistryError(f"login attempt to {url} failed with status: {resp.status_code} {resp.reason}",
                                status=resp.status_code)
    return "Login Succeeded", store(key, creds)


def logout(server: str | None) -> str:
    """Forget stored credentials: Docker's ``Removing login credentials for …`` / ``Not logged in to …``."""
    key = server_key(server)
    if erase(logout_keys(server)):
        return f"Removing login credentials for {key}"
    return f"Not logged in to {key}"


def search(settings: Settings, term: str, limit: int = 25) -> list[SearchResult]:
    """``docker search``: the Hub's (mirror's) ``/v1/search``."""
    if not 1 <= limit <= 100:
        raise RegistryError(f"Limit {limit} is outside the range of [1, 100]")
    from .credentials import get

    host, term, hub = _search_index(settings, term)
    with RegistryClient(host, settings, get(host, hub=hub)) as client:
        return client.search(term, limit)[:limit]


def _search_index(settings: Settings, term: str) -> tuple[str, str, bool]:
    """Docker's ``splitReposSearchTerm``: ``host[:port]/term`` searches that registry, else the Hub."""
    index, _, rest = term.partition("/")
    if rest and ("." in index or ":" in index or index == "localhost"):
        return index, rest, False
    return settings.index_host(), term, True
