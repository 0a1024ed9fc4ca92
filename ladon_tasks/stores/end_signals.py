"""Wake-ups for the waiters of ``<m>_wait``: one event per waiting request, set when its
task ends (in this process, or, through Redis pub/sub, in any other)."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator


class EndSignals:
    """The waiting requests of one store, by task id."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[threading.Event]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def watch(self, task_id: str) -> Iterator[threading.Event]:
        """An event set once ``task_id`` ends (or is dismissed) while the block runs."""
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(task_id, []).append(event)
        try:
            yield event
        finally:
            with self._lock:
                events = self._waiting.get(task_id, [])
                if event in events:
                    events.remove(event)
                if not events:
                    self._waiting.pop(task_id, None)

    def signal(self, task_id: str) -> None:
        """``task_id`` ended: wake its waiters."""
        with self._lock:
            events = list(self._waiting.get(task_id, ()))
        for event in events:
            event.set()

    def signal_all(self) -> None:
        """Wake every waiter (ends may have been missed: a lost subscription)."""
        with self._lock:
            events = [event for events in self._waiting.values() for event in events]
        for event in events:
            event.set()
