"""The order in which a MemoryStore lists its tasks: newest first, by ``(created, task_id)``."""

from __future__ import annotations

import bisect
from typing import Callable

from ladon_tasks.listing import TaskQuery
from ladon_tasks.task import TaskRecord


class MemoryIndex:
    """Every task's position, sorted; positions of forgotten tasks are skipped when read
    and dropped once they outnumber the live ones. Not locked: the store locks."""

    def __init__(self) -> None:
        self._positions: list[tuple[float, str]] = []
        self._dead = 0

    def add(self, record: TaskRecord) -> None:
        position = (record.created, record.task_id)
        if not self._positions or position > self._positions[-1]:
            self._positions.append(position)  # the usual case: the newest task
        else:
            bisect.insort(self._positions, position)

    def rows(self, query: TaskQuery, live: Callable[[str], TaskRecord | None]) -> list[TaskRecord]:
        """Up to ``query.limit + 1`` records matching ``query``, newest first; ``live``
        gives a task's record, None if it is forgotten."""
        positions = self._positions
        start = len(positions) if query.after is None else bisect.bisect_left(positions, query.after.key())
        found: list[TaskRecord] = []
        dead = 0
        for index in range(start - 1, -1, -1):
            record = live(positions[index][1])
            if record is None:
                dead += 1
            elif query.matches(record):
                found.append(record)
                if len(found) > query.limit:
                    break
        self._dead = max(self._dead, dead)
        return found

    def compact(self, alive: Callable[[str], bool]) -> None:
        """Drop the positions of forgotten tasks, if many were seen."""
        if self._dead > 1000 and self._dead * 2 > len(self._positions):
            self._positions = [position for position in self._positions if alive(position[1])]
            self._dead = 0
