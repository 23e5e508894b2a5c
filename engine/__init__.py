"""LayerLab's engine: a daemonless, rootless container image engine.

>>> from engine import Engine
>>> Engine  # doctest: +ELLIPSIS
<class 'engine.api.Engine'>

``Engine`` is imported on first use (PEP 562), so that ``import engine.cli`` pays only for what a
command needs.
"""
from __future__ import annotations

from .errors import EngineError

__all__ = ["Engine", "EngineError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Engine":
        from .api import Engine

        return Engine
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
