"""LayerLab's IPython extension: ``%load_ext kernel_ext``.

The magics (``%dbuild``, ``%drun``, ``%dimages`` …), result objects, the live layer graph and
the widgets arrive with the kernel_ext issue; for now loading the extension creates the engine
and registers ``%docker``-free nothing else, so notebooks can already ``%load_ext`` it.
"""
from __future__ import annotations

from typing import Any

_loaded: dict[str, Any] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext kernel_ext``."""
    from engine import Engine

    _loaded["engine"] = Engine()
    ipython.push({"layerlab_engine": _loaded["engine"]}, interactive=False)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext kernel_ext``."""
    engine = _loaded.pop("engine", None)
    if engine is not None:
        engine.close()
