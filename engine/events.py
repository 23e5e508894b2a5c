"""Engine events (Docker's ``type``/``action`` vocabulary) and a tiny in-process bus."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .values import field, value


@value
class Event:
    """Something changed: ``type`` is image/container/layer, ``action`` Docker's verb (tag, delete…)."""

    type: str
    action: str
    id: str
    ref: str | None = None
    time: float = field(default_factory=time.time)


Listener = Callable[[Event], None]


class EventBus:
    """Calls every subscriber for each event; a failing subscriber is logged, never fatal."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; return a function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(event)
            except Exception:  # a broken widget must not break the engine
                import logging  # only now: every command would pay for it (about 4 ms to import)

                logging.getLogger(__name__).exception("event listener failed for %s", event)
