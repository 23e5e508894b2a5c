"""The classroom hub: accounts, namespaces, stars, descriptions and search, like a small Docker Hub.

Everything lives under ``<registry root>/hub/``: ``accounts.json`` (bcrypt hashes, admin flags),
``repositories.json`` (descriptions and who starred what) and ``token-secret`` (see
:mod:`engine.registry.tokens`). Files are replaced atomically under an flock, so the CLI
(``layerlab hub adduser``) and a running hub can change them at the same time.

Namespaces follow Docker Hub: ``alice`` may push ``alice/…`` only; names without a user part are
"root" repositories (``library/busybox``, or a bare ``busybox``) and only an administrator may push
them. Everyone, even anonymous, may pull.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

from ..errors import EngineError
from ..values import value
from .search import SearchResult
from .storage import RegistryStorage, atomic_write, check_name

USER_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
RESERVED_USERS = frozenset({"library", "root", "admin-token"})
OFFICIAL_PREFIX = "library/"


class HubError(EngineError):
    """A hub account or repository operation was refused; the message says why."""


@value
class Account:
    name: str
    admin: bool


def is_root_repository(name: str) -> bool:
    """``busybox`` or ``library/busybox``: a name without a user namespace."""
    return "/" not in name or name.startswith(OFFICIAL_PREFIX)


def denial_message(user: str, name: str) -> str:
    """Why ``user`` may not push ``name``: one line a student can act on."""
    base = name[len(OFFICIAL_PREFIX):] if name.startswith(OFFICIAL_PREFIX) else name.split("/")[-1]
    if is_root_repository(name):
        return (f'requested access to the resource is denied: impossible to push a "root" repository '
                f'({name}); only the hub administrator may push official images. '
                f"Please rename your repository to {user}/{base}, e.g. with `tag {base} {user}/{base}`")
    owner = name.split("/", 1)[0]
    return (f"requested access to the resource is denied: {name} is in the namespace of {owner!r}; "
            f"you ({user}) may push only to {user}/..., e.g. {user}/{base}")


class Hub:
    """Accounts and repository metadata of one registry root."""

    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage
        self.dir = storage.root / "hub"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.accounts_path = self.dir / "accounts.json"
        self.meta_path = self.dir / "repositories.json"
        self._checked: dict[str, str] = {}  # sha256(user\0password) -> hash it was checked against
        self._lock = threading.Lock()

    # --- files -------------------------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _update(self, path: Path, change) -> dict:
        with self.storage.locked(f"hub-{path.stem}"):
            data = self._read(path)
            change(data)
            atomic_write(path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")
            return data

    # --- accounts ------------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, *, admin: bool = False) -> Account:
        """Create (or update the password and admin flag of) account ``name``."""
        import bcrypt

        if not USER_RE.match(name) or not 2 <= len(name) <= 30 or name in RESERVED_USERS:
            raise HubError(f"invalid user name {name!r}: 2 to 30 lower-case letters, digits and . _ - "
                           f"(not {', '.join(sorted(RESERVED_USERS))})")
        if len(password) < 4:
            raise HubError("the password must have at least 4 characters")
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()

        def change(data: dict) -> None:
            data.setdefault("users", {})[name] = {"password": hashed, "admin": admin}
        self._update(self.accounts_path, change)
        return Account(name, admin)

    def accounts(self) -> list[Account]:
        users = self._read(self.accounts_path).get("users", {})
        return [Account(n, bool(u.get("admin"))) for n, u in sorted(users.items())]

    def account(self, name: str) -> Account | None:
        user = self._read(self.accounts_path).get("users", {}).get(name)
        return Account(name, bool(user.get("admin"))) if user else None

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is right, else None (bcrypt; successes are remembered)."""
        import bcrypt

        user = self._read(self.accounts_path).get("users", {}).get(name)
        if not user:
            return None
        hashed = user["password"]
        key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        with self._lock:
            known = self._checked.get(key) == hashed
        if not known:
            if not bcrypt.checkpw(password.encode(), hashed.encode()):
                return None
            with self._lock:
                self._checked[key] = hashed
        return Account(name, bool(user.get("admin")))

    # --- access policy -----------------------------------------------------------------------------------

    @staticmethod
    def may_write(account: Account | None, name: str) -> bool:
        if account is None:
            return False
        if account.admin:
            return True
        return not is_root_repository(name) and name.split("/", 1)[0] == account.name

    def granted(self, account: Account | None, type_: str, name: str, wanted: tuple[str, ...]) -> tuple[str, ...]:
        """The subset of ``wanted`` actions ``account`` (None: anonymous) gets on ``type_:name``."""
        if type_ == "registry" and name == "catalog":
            return tuple(a for a in wanted if a == "*")
        if type_ != "repository":
            return ()
        ok = {"pull"} | ({"push", "delete", "*"} if self.may_write(account, name) else set())
        return tuple(a for a in wanted if a in ok)

    # --- stars, descriptions, search ----------------------------------------------------------------------

    def _known_repo(self, name: str) -> str:
        check_name(name)
        if name not in self.storage.repositories():
            raise HubError(f"repository {name} not found on this hub")
        return name

    def star(self, name: str, user: str, *, on: bool = True) -> int:
        """Star (or unstar) ``name`` as ``user``; returns the new star count."""
        self._known_repo(name)

        def change(data: dict) -> None:
            entry = data.setdefault(name, {})
            stars = set(entry.get("stars", []))
            stars.add(user) if on else stars.discard(user)
            entry["stars"] = sorted(stars)
        return len(self._update(self.meta_path, change)[name]["stars"])

    def description(self, name: str) -> str:
        return str(self._read(self.meta_path).get(name, {}).get("description", ""))

    def describe(self, name: str, text: str) -> None:
        self._known_repo(name)
        if len(text) > 100:
            raise HubError("a short description has at most 100 characters")

        def change(data: dict) -> None:
            data.setdefault(name, {})["description"] = text
        self._update(self.meta_path, change)

    def search(self, term: str, limit: int = 25) -> tuple[int, list[SearchResult]]:
        """(total matches, first ``limit`` results): by stars, then name, like Docker Hub's ranking."""
        meta = self._read(self.meta_path)
        term = term.strip().lower()
        found = []
        for repo in self.storage.repositories():
            entry = meta.get(repo, {})
            description = str(entry.get("description", ""))
            official = repo.startswith(OFFICIAL_PREFIX) and repo.count("/") == 1
            shown = repo[len(OFFICIAL_PREFIX):] if official else repo
            if term and term not in shown and term not in description.lower():
                continue
            found.append(SearchResult(shown, description, len(entry.get("stars", [])), official))
        found.sort(key=lambda r: (-r.star_count, not r.is_official, r.name))
        return len(found), found[:limit]
