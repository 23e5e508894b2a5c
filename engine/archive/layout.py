"""Names inside an OCI image layout: the ``oci-layout`` file and ``blobs/sha256/<hex>`` paths."""
from __future__ import annotations

from ..digest import hex_of, is_digest

OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
BLOBS_DIR = "blobs/sha256/"


def blob_name(digest: str) -> str:
    """Where a blob lives in a layout: ``blobs/sha256/<hex>``."""
    return f"{BLOBS_DIR}{hex_of(digest)}"


def blob_digest(name: str) -> str | None:
    """The digest an archive path names as a layout blob (``blobs/sha256/<64 hex>``), else None."""
    if not name.startswith(BLOBS_DIR):
        return None
    digest = "sha256:" + name.rpartition("/")[2]
    return digest if is_digest(digest) else None
