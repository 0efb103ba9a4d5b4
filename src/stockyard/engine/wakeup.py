"""In-process wake-ups: an enqueue commits, idle workers in this process start at once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


class Wakeup:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def subscribe_event(
        self, loop: asyncio.AbstractEventLoop, event: asyncio.Event
    ) -> Callable[[], None]:
        """Set `event` on `loop` (from any thread) whenever new work is committed."""

        def wake() -> None:
            loop.call_soon_threadsafe(event.set)

        return self.subscribe(wake)

    def notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            with contextlib.suppress(RuntimeError):  # the listener's loop has closed
                listener()
