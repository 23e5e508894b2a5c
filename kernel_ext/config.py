"""``%config LayerLab.…``: the extension's settings, as traitlets.

===========================  ================================================================
``home``                     the store (``''``: ``$LAYERLAB_HOME``); setting it switches the engine
``backend``                  what runs the commands (``'layerlab'``; see :mod:`kernel_ext.backend`)
``reproducible``             builds and commits use ``SOURCE_DATE_EPOCH`` (default True): the same
                             Dockerfile gives the same image ID in every notebook
``source_date_epoch``        the timestamp used then (unless ``$SOURCE_DATE_EPOCH`` is set)
``registry_mirror``          where ``docker.io`` images come from (default ``127.0.0.1:5000``)
``insecure_registries``      registries reached over plain HTTP besides loopback
``allow_internet``           only then may ``docker.io`` mean Docker Hub itself (default False)
===========================  ================================================================

The registry settings belong to the store (``engine.registry.settings``, kept in
``$LAYERLAB_HOME/settings.json``, shared with the ``layerlab`` command): setting a trait writes them
there, and loading the extension or switching ``home`` shows the store's (values for them in an
IPython configuration file are not used). Before that module exists (it comes with the registry client) the traits
keep their values in the notebook only.

>>> %config LayerLab.home = '/tmp/another-store'        # doctest: +SKIP
>>> %config LayerLab.registry_mirror = '127.0.0.1:5001'  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from traitlets import Bool, Int, List, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

#: 2024-01-01T00:00:00Z: in the past, so every file time is clamped to it (a future date would clamp nothing)
DEFAULT_EPOCH = 1704067200
#: verbs that make images, and so depend on the clock
IMAGE_MAKING_VERBS = frozenset({"build", "commit", "import"})
#: trait → field of engine.registry.settings.Settings
REGISTRY_FIELDS = {"registry_mirror": "hub_mirror", "insecure_registries": "insecure_registries",
                   "allow_internet": "allow_internet"}


def _registry_settings() -> Any:
    """``engine.registry.settings`` when this checkout has it (the registry client brings it), else None."""
    try:
        from engine.registry import settings
    except ImportError:
        return None
    return settings


class LayerLab(Configurable):
    """LayerLab's settings in a notebook (``%config LayerLab`` lists them)."""

    home = Unicode("", help="The store directory ('' = $LAYERLAB_HOME); changing it switches the engine.").tag(
        config=True)
    backend = Unicode("layerlab", help="What runs the commands: 'layerlab' (this process's engine).").tag(
        config=True)
    reproducible = Bool(True, help="Builds and commits use SOURCE_DATE_EPOCH: the same inputs give the same "
                                   "image ID everywhere.").tag(config=True)
    source_date_epoch = Int(DEFAULT_EPOCH, help="The timestamp of reproducible builds (unless $SOURCE_DATE_EPOCH "
                                                "is set).").tag(config=True)
    registry_mirror = Unicode("127.0.0.1:5000", help="Where docker.io images come from (the classroom "
                                                     "registry).").tag(config=True)
    insecure_registries = List(Unicode(), help="Registries reached over plain HTTP besides loopback.").tag(
        config=True)
    allow_internet = Bool(False, help="Let docker.io mean Docker Hub on the Internet.").tag(config=True)

    _syncing = False

    def __init__(self, **kwargs: Any) -> None:
        # the registry settings live in the store: values from the shell's configuration are not written
        # there while loading (the magics then show the store's, see load_registry_settings)
        self._syncing = True
        try:
            super().__init__(**kwargs)
        finally:
            self._syncing = False

    @classmethod
    def for_shell(cls, shell: Any) -> tuple[LayerLab, list[str]]:
        """The settings from the shell's configuration; a bad value is left out (and reported), not fatal."""
        try:
            return cls(parent=shell), []
        except TraitError:
            pass
        settings, problems = cls(), []
        for name, value in dict(shell.config.get("LayerLab", {})).items():
            try:
                setattr(settings, name, value)
            except TraitError as e:
                problems.append(f"LayerLab.{name} ignored: {e}")
        return settings, problems

    @validate("home")
    def _valid_home(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        return os.path.abspath(os.path.expanduser(value)) if value else ""

    @validate("backend")
    def _valid_backend(self, proposal: dict[str, Any]) -> str:
        from .backend import BACKENDS

        if proposal["value"] not in BACKENDS:
            raise TraitError(f"unknown backend {proposal['value']!r}; choose from {', '.join(sorted(BACKENDS))}")
        return proposal["value"]

    @validate("source_date_epoch")
    def _valid_epoch(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 0:
            raise TraitError("source_date_epoch is seconds since 1970 and cannot be negative")
        return proposal["value"]

    # --- registry settings ----------------------------------------------------------------------

    def store_home(self) -> str:
        """The store directory in use: ``home``, else ``$LAYERLAB_HOME`` or its default."""
        if self.home:
            return self.home
        from engine.store import default_home

        return str(default_home())

    @observe(*REGISTRY_FIELDS)
    def _registry_changed(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        settings = _registry_settings()
        if settings is None:
            return
        home = self.store_home()
        value = change["new"]
        try:
            settings.update(home, **{REGISTRY_FIELDS[change["name"]]: tuple(value) if isinstance(value, list)
                                     else value})
        except OSError as e:
            print(f"LayerLab.{change['name']} not saved in {home}: {e}", file=sys.stderr)

    def load_registry_settings(self, home: str | os.PathLike[str]) -> None:
        """Show the registry settings kept in store ``home`` (without writing them back)."""
        settings = _registry_settings()
        if settings is None:
            return
        current = settings.load(home)
        self._syncing = True
        try:
            self.registry_mirror = current.hub_mirror
            self.insecure_registries = list(current.insecure_registries)
            self.allow_internet = current.allow_internet
        finally:
            self._syncing = False

    # --- reproducible builds ------------------------------------------------------------------------

    @contextlib.contextmanager
    def clock_for(self, verb: str) -> Iterator[None]:
        """Set ``SOURCE_DATE_EPOCH`` while an image-making verb runs (reproducible mode, not set by the user)."""
        if not self.reproducible or verb not in IMAGE_MAKING_VERBS or "SOURCE_DATE_EPOCH" in os.environ:
            yield
            return
        os.environ["SOURCE_DATE_EPOCH"] = str(self.source_date_epoch)
        try:
            yield
        finally:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
