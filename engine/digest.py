"""Digests (``sha256:<hex>``), ChainIDs and short IDs, as in the OCI image spec.

:mod:`hashlib` is imported by the functions that hash: it loads OpenSSL (about 3 ms), which most
commands (``layerlab run`` of a one-layer image among them) never need.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import EngineError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from typing import BinaryIO

ALGORITHM = "sha256"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK = 1 << 20


class InvalidDigest(EngineError):
    """A string is not a ``sha256:<64 hex>`` digest."""


def is_digest(value: str) -> bool:
    """Whether ``value`` is a well-formed sha256 digest."""
    return bool(_DIGEST_RE.match(value))


def check_digest(value: str) -> str:
    """Return ``value`` if it is a valid digest, else raise :class:`InvalidDigest`."""
    if not is_digest(value):
        raise InvalidDigest(f"invalid digest {value!r}")
    return value


def sha256_bytes(data: bytes) -> str:
    """Digest of a byte string."""
    import hashlib

    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    """Digest and length of everything left in ``stream``."""
    import hashlib

    h = hashlib.sha256()
    n = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        n += len(chunk)
    return f"{ALGORITHM}:{h.hexdigest()}", n


def hex_of(digest: str) -> str:
    """The hex part of a digest."""
    return digest.split(":", 1)[1] if ":" in digest else digest


def short_id(digest: str) -> str:
    """Docker's 12-character short ID."""
    return hex_of(digest)[:12]


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """ChainIDs of a layer stack: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1)+" "+DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256_bytes(f"{out[-1]} {diff_id}".encode()))
    return out
