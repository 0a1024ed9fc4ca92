"""Short-lived copies of queued and running tasks, so that hot polls skip a round trip.

A running task's record changes at most every ``progress_interval`` (0.1 s by default),
when its worker writes progress. A copy read less than :data:`LIVE_COPY_SECONDS` ago is
as good an answer as Redis's, at most that much older, so a task polled thousands of
times a second costs one read per task per 50 ms. Every end and every dismissal, wherever
it happens, is published (the ended and dismissed channels) and drops the copy at once,
as does any write this process makes to the task; copies are only used while this
process is subscribed, so no end is answered as ``running`` for more than that long.
A read that was on its way to Redis while a copy was dropped keeps nothing: what it read
may be older than what dropped the copy (see :attr:`LiveCopies.generation`).
"""

from __future__ import annotations

import time

from ladon_tasks.task import TaskRecord, snapshot

#: Seconds a copy of a queued or running task answers polls.
LIVE_COPY_SECONDS = 0.05
#: Most copies kept (a guard: copies live 50 ms).
LIVE_COPY_LIMIT = 10_000


class LiveCopies:
    """``task_id -> (monotonic time read, record)`` of tasks not yet ended."""

    def __init__(self) -> None:
        self._copies: dict[str, tuple[float, TaskRecord]] = {}
        #: Counts the drops: a reader notes it before it reads Redis and passes it to keep.
        self.generation = 0

    def get(self, task_id: str) -> TaskRecord | None:
        """A copy of the record read within LIVE_COPY_SECONDS; None if there is none."""
        found = self._copies.get(task_id)
        if found is None:
            return None
        if time.monotonic() - found[0] >= LIVE_COPY_SECONDS:
            self._copies.pop(task_id, None)
            return None
        return snapshot(found[1])

    def keep(self, record: TaskRecord, since: int) -> None:
        """Keep ``record``, read after :attr:`generation` was ``since``, unless a copy was
        dropped meanwhile."""
        if since != self.generation:
            return
        if len(self._copies) >= LIVE_COPY_LIMIT:
            self._copies.clear()
        self._copies[record.task_id] = (time.monotonic(), snapshot(record))

    def forget(self, task_id: str) -> None:
        self.generation += 1
        self._copies.pop(task_id, None)

    def forget_all(self) -> None:
        self.generation += 1
        self._copies.clear()
