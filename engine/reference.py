"""Image references: ``[host[:port]/]name[:tag][@digest]`` with Docker Hub defaults.

Grammar from distribution/reference: a domain is the first component when it contains ``.`` or
``:``, is ``localhost``, or has upper-case letters; otherwise the domain is ``docker.io`` and a
single-component name gets the ``library/`` prefix.

>>> parse("busybox").string
'docker.io/library/busybox:latest'
>>> parse("127.0.0.1:5000/whoami/web").familiar
'127.0.0.1:5000/whoami/web:latest'
"""
from __future__ import annotations

import re

from .errors import InvalidReference
from .values import value

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE_RE = re.compile(rf"^((?:{_DOMAIN}/)?{_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_REPO_PATH_RE = re.compile(rf"^{_PATH}$")
_ID_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{64}$")
_SHORT_ID_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{1,64}$")


@value
class Reference:
    """A normalized image reference."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """Fully qualified repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """Repository as Docker prints it: ``busybox``, ``user/app``, ``host:5000/user/app``."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
                path = path[len(OFFICIAL_PREFIX):]
            return path
        return self.repository

    @property
    def string(self) -> str:
        """Fully qualified string with tag and/or digest."""
        return self.repository + self._suffix()

    @property
    def familiar(self) -> str:
        """Familiar string with tag and/or digest, as Docker prints it."""
        return self.familiar_repository + self._suffix()

    def _suffix(self) -> str:
        s = f":{self.tag}" if self.tag else ""
        return s + (f"@{self.digest}" if self.digest else "")

    def with_tag(self, tag: str) -> "Reference":
        """A copy with another tag and no digest."""
        return Reference(self.domain, self.path, tag, None)

    @property
    def is_docker_hub(self) -> bool:
        return self.domain == DEFAULT_DOMAIN


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalize a reference; add ``:latest`` when neither tag nor digest is given.

    Raises :class:`InvalidReference` with Docker's message (``invalid reference format`` …).
    """
    if not text:
        raise InvalidReference("invalid reference format")
    m = _REFERENCE_RE.match(text)
    if not m:
        if _REFERENCE_RE.match(text.lower()):
            raise InvalidReference("invalid reference format: repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidReference(f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} characters")
    domain, path = _split_domain(name)
    if path.lower() != path or not _REPO_PATH_RE.match(path):
        raise InvalidReference("invalid reference format: repository name must be lowercase")
    if digest is not None and not digest.startswith("sha256:"):
        raise InvalidReference("invalid reference format")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest.lower() if digest else None)






def looks_like_id(text: str) -> bool:
    """Whether ``text`` could be a (possibly short) image ID rather than a name."""
    return bool(_SHORT_ID_RE.match(text))


def is_full_id(text: str) -> bool:
    """Whether ``text`` is a full 64-hex image ID (with or without ``sha256:``)."""
    return bool(_ID_RE.match(text))
