"""What the magics run on: LayerLab's engine by default, another engine (a Docker daemon) later.

A :class:`Backend` runs one Docker command line (``run_verb(argv, streams) -> exit code``, with
Docker's text on ``streams``) and offers the few other things the magics use: engine events (to
tell which container a ``%drun`` made), and, for ``%dgraph``/``%dexplore``, LayerLab's engine
itself. ``%config LayerLab.backend = 'name'`` picks one from :data:`BACKENDS`; adding a backend
is :func:`register_backend` and touches no magic.

>>> backend = make_backend("layerlab", home="/tmp/ll-doc-home")       # doctest: +SKIP
>>> backend.run_verb(["images", "-q"], Streams())                      # doctest: +SKIP
0
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from engine import Engine
    from engine.cli import Streams


class BackendUnsupported(Exception):
    """The selected backend cannot do this (e.g. ``%dgraph`` on a Docker daemon)."""


class Backend(ABC):
    """One engine the magics drive."""

    name: ClassVar[str] = ""

    @abstractmethod
    def run_verb(self, argv: Sequence[str], streams: Streams) -> int:
        """Run a Docker command line (verb first); Docker's text on ``streams``; its exit code. Never raises
        for engine or usage errors (they are text on ``streams.stderr`` and an exit code)."""

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``listener`` with each engine event (:class:`engine.events.Event`); returns the unsubscribe."""
        return lambda: None

    @property
    def engine(self) -> Engine:
        """LayerLab's :class:`engine.Engine` (for the graph and the widgets)."""
        raise BackendUnsupported(f"the {self.name} backend has no LayerLab engine (graphs and widgets need one)")

    def close(self) -> None:
        """Release what the backend holds."""


class LayerLabBackend(Backend):
    """LayerLab's engine, in this process: the same code path as the ``layerlab`` command."""

    name = "layerlab"

    def __init__(self, home: str | None = None, *, engine: Engine | None = None) -> None:
        if engine is None:
            from engine import Engine

            engine = Engine(home or None)
        self._engine = engine

    def run_verb(self, argv: Sequence[str], streams: Streams) -> int:
        from engine.cli import run

        try:
            return run(argv, streams, self._engine)
        except OSError as e:  # a file the command names (save -o DIR/x.tar …): one line, as for engine errors
            streams.err(f"Error: {e.filename}: {e.strerror}" if e.filename and e.strerror else f"Error: {e}")
            return 1

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        return self._engine.subscribe(listener)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.close()


BackendFactory = Callable[..., Backend]
#: backend name → factory called with ``home=`` (the configured store, ``None`` for the default)
BACKENDS: dict[str, BackendFactory] = {"layerlab": LayerLabBackend}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``%config LayerLab.backend = name`` use ``factory(home=…)``."""
    BACKENDS[name] = factory


def make_backend(name: str, *, home: str | None = None) -> Backend:
    """A new backend by name (see :data:`BACKENDS`)."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise BackendUnsupported(f"unknown backend {name!r}; choose from {', '.join(sorted(BACKENDS))}") from None
    return factory(home=home)
