"""Image archives: ``docker save`` / ``docker load`` tarballs and OCI image layouts.

* :func:`save` / :func:`save_oci_dir`: a ``docker save`` archive, or an OCI image layout (tar, with a
  Docker 25-style ``manifest.json`` so ``docker load`` reads it too; or a directory);
* :func:`load`: legacy docker archives, Docker 25+ archives and plain OCI layouts, as a (possibly
  compressed) tar stream or a directory. Everything is verified before anything is written to the
  store: config digests, blob digests, layer DiffIDs, tags, entry names.

Example::

    >>> with open("busybox.tar", "wb") as f:                      # doctest: +SKIP
    ...     save(store, ["busybox:latest"], f)
    >>> [img.tags for img in load(other_store, "busybox.tar")]   # doctest: +SKIP
    [('busybox:latest',)]

The modules, saving first:

* :mod:`.gojson` and :mod:`.v1`: the Docker 20.10 legacy metadata (``<v1 id>/json`` and the v1 layer
  IDs), reproduced byte for byte the way moby's ``image/tarexport/save.go`` marshals it with Go's
  ``encoding/json``;
* :mod:`.selection`: which images a save writes, and their ``manifest.json`` entries;
  :mod:`.save_docker` and :mod:`.save_oci`: the members of each format; :mod:`.layout`: blob paths;
  :mod:`.write`: a reproducible tar (or a directory) of those members; :mod:`.saving`: the entry points;
* :mod:`.source`: reading a tar or a directory safely; :mod:`.plans`: what the archive asks to load,
  checked; :mod:`.loading`: verifying the layers, storing everything, and :func:`load`.

The tar is read in one pass: regular members are copied into a private directory under the store's
``tmp/`` (named by their position, never by their archive name), small JSON members are then read with
a 16 MiB cap, and links inside the archive are resolved by name, never on disk.
"""
from __future__ import annotations

from .gojson import GO_ZERO_TIME, go_json
from .layout import OCI_LAYOUT
from .loading import LoadedImage, load
from .saving import save, save_oci_dir
from .source import MAX_JSON, ArchiveDigestMismatch
from .v1 import UNIX_EPOCH_TIME, V1Layer, v1_layers

__all__ = ["LoadedImage", "ArchiveDigestMismatch", "save", "save_oci_dir", "load", "v1_layers"]
