"""Coalesced progress writes of a Redis store: ``update_progress`` stores a value in memory,
a reporter thread writes the latest one every ``progress_interval`` (and heartbeats every
``heartbeat_interval``)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ladon_tasks.exceptions import StoreUnavailable
from ladon_tasks.stores.base import ProgressSink


class CoalescedProgress:
    """The progress sinks and reporter thread of :class:`~ladon_tasks.stores.redis.RedisStore`
    (which sets up ``_sinks``, ``_sinks_lock``, ``_reporter`` and ``_stop_reporter``)."""

    progress_interval: float
    heartbeat_interval: float
    _sinks: dict[str, list]
    _sinks_lock: threading.Lock
    _reporter: threading.Thread | None
    _stop_reporter: threading.Event

    if TYPE_CHECKING:  # the store's own writes
        def set_progress(self, task_id: str, progress: float, heartbeat: float,
                         message: str | None = None, reported: float | None = None) -> bool: ...

        def heartbeat(self, task_ids: list[str], now: float) -> None: ...

    def progress_sink(self, task_id: str) -> ProgressSink:
        # [latest value, calls so far, calls written, latest message, message written,
        # time of the latest call]: a call with an unchanged value still tells that the
        # task is alive (``touched``).
        cell: list = [0.0, 0, 0, None, None, 0.0]
        clock = time.time

        def sink(progress: float, message: str | None = None) -> None:
            cell[0] = progress
            cell[5] = clock()
            cell[1] += 1
            if message is not None:
                cell[3] = message

        sink.cell = cell  # type: ignore[attr-defined]
        sink.task_id = task_id  # type: ignore[attr-defined]
        with self._sinks_lock:
            self._sinks[task_id] = cell
        self._ensure_reporter()
        return sink

    def close_progress_sink(self, sink: ProgressSink) -> None:
        # The cell stays registered (and heartbeats go on) until its last value is
        # written: a caller that retries this loses nothing.
        task_id: str = sink.task_id  # type: ignore[attr-defined]
        cell: list = sink.cell  # type: ignore[attr-defined]
        if cell[1] != cell[2]:
            self._write_cell(task_id, cell, time.time())
        with self._sinks_lock:
            self._sinks.pop(task_id, None)

    def _write_cell(self, task_id: str, cell: list, now: float) -> None:
        """Write a sink's latest value (as of the call that gave it), and its message if it
        changed since the last write."""
        calls, message = cell[1], cell[3]
        self.set_progress(task_id, cell[0], now, None if message == cell[4] else message,
                          reported=cell[5] or now)
        cell[2], cell[4] = calls, message

    def _ensure_reporter(self) -> None:
        if self._reporter is not None and self._reporter.is_alive():
            return
        self._stop_reporter.clear()
        self._reporter = threading.Thread(
            target=self._report_forever, name="ladon-tasks-progress", daemon=True)
        self._reporter.start()

    def _report_forever(self) -> None:
        """Write reported progress every ``progress_interval``, heartbeats every ``heartbeat_interval``."""
        last_beat = 0.0
        while not self._stop_reporter.wait(self.progress_interval):
            now = time.time()
            with self._sinks_lock:
                changed = [(task_id, cell) for task_id, cell in self._sinks.items() if cell[1] != cell[2]]
                running = list(self._sinks)
            try:
                for task_id, cell in changed:
                    self._write_cell(task_id, cell, now)
                if now - last_beat >= self.heartbeat_interval:
                    self.heartbeat(running, now)
                    last_beat = now
            except StoreUnavailable:
                pass  # _call logged the outage; the values stay unwritten until Redis is back
