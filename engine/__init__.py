"""LayerLab's engine: a daemonless, rootless container image engine.

>>> from engine import Engine
>>> Engine  # doctest: +ELLIPSIS
<class 'engine.api.Engine'>
"""
from .api import Engine
from .errors import EngineError

__all__ = ["Engine", "EngineError"]
__version__ = "0.1.0"
