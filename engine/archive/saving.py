"""``save`` and ``save_oci_dir``: images written as a ``docker save`` tar or an OCI layout directory."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Literal

from ..errors import ArchiveError
from ..store import Store
from .save_docker import docker_entries
from .save_oci import oci_entries
from .selection import select
from .write import write_dir, write_tar


def save(store: Store, names: list[str], out: BinaryIO, *, format: Literal["docker", "oci"] = "docker") -> None:
    """Write images as a tar to ``out``, like ``docker save``.

    ``format="docker"`` writes Docker 20.10's archive (``manifest.json``, ``repositories``,
    ``<v1 id>/{VERSION,json,layer.tar}``, ``<image id hex>.json``); ``format="oci"`` writes an OCI
    image layout plus Docker 25's ``manifest.json``. Names given as tags keep their ``RepoTags``;
    a bare repository name saves all its tags; IDs are saved untagged. The tar is reproducible:
    entries sorted, mtime ``SOURCE_DATE_EPOCH`` (or 0), owner root.

    >>> with open("img.tar", "wb") as f:                 # doctest: +SKIP
    ...     save(store, ["busybox:latest"], f, format="oci")
    """
    selected = select(store, names)
    if format == "docker":
        entries = docker_entries(store, selected)
    elif format == "oci":
        entries = oci_entries(store, selected, docker_manifest=True)
    else:
        raise ArchiveError(f"unknown archive format {format!r} (docker or oci)")
    write_tar(store, entries, out)


def save_oci_dir(store: Store, names: list[str], directory: str | os.PathLike[str]) -> None:
    """Write images as an OCI image layout directory (``oci:DIR:TAG`` for skopeo, umoci).

    The layout is built in a temp directory next to ``directory`` and renamed into place; an
    existing non-empty ``directory`` is refused.

    >>> save_oci_dir(store, ["busybox:latest"], "/tmp/busybox-oci")   # doctest: +SKIP
    """
    target = Path(directory)
    _check_target(target)
    selected = select(store, names)
    entries = oci_entries(store, selected, docker_manifest=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write_dir(store, entries, tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, target)
    except OSError as e:
        raise ArchiveError(f"cannot write OCI layout {target}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ArchiveError(f"cannot write OCI layout to {target}: it exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ArchiveError(f"cannot write OCI layout to {target}: directory exists and is not empty")
