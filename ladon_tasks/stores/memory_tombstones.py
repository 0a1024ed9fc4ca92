"""The tombstones of the memory store: why issued ids have no record any more."""

from __future__ import annotations

import base64
from collections import deque

from ladon_tasks.task import Gone

#: Most tombstones kept at once; the oldest go first past this.
MAX_TOMBSTONES = 100_000


class Tombstones:
    """Why issued ids have no record any more, for ``ttl`` seconds, in little memory:
    an id is kept as its 16 raw bytes, and expiry times once per second of them (a
    tombstone may outlive its ``ttl`` by up to a second). At most MAX_TOMBSTONES, the
    oldest go first. Not locked: the store calls it under its own lock."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        #: Why; with the caller the task was bound to, if any.
        self._why: dict[bytes, Gone | tuple[Gone, str]] = {}
        self._order: deque[bytes] = deque()
        #: ``[expiry, count]`` of the next ``count`` ids of ``_order``.
        self._runs: deque[list] = deque()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, task_id: str, why: Gone, now: float, caller: str = "") -> None:
        key = _raw(task_id)
        stone: Gone | tuple[Gone, str] = (why, caller) if caller else why
        if key in self._why:
            self._why[key] = stone
            return
        self._why[key] = stone
        self._order.append(key)
        expires = now + self.ttl
        runs = self._runs
        if runs and expires - runs[-1][0] < 1.0:
            runs[-1][0] = max(runs[-1][0], expires)
            runs[-1][1] += 1
        else:
            runs.append([expires, 1])

    def get(self, task_id: str) -> tuple[Gone, str] | None:
        stone = self._why.get(_raw(task_id))
        if stone is None or isinstance(stone, tuple):
            return stone
        return stone, ""

    def purge(self, now: float) -> None:
        runs = self._runs
        while runs and runs[0][0] <= now:
            for _ in range(runs.popleft()[1]):
                self._why.pop(self._order.popleft(), None)
        while len(self._order) > MAX_TOMBSTONES:
            self._why.pop(self._order.popleft(), None)
            runs[0][1] -= 1
            if not runs[0][1]:
                runs.popleft()


def _raw(task_id: str) -> bytes:
    """A task id's 16 bytes (ids were validated; a foreign one just maps to other bytes)."""
    try:
        return base64.urlsafe_b64decode(task_id + "==")
    except ValueError:
        return task_id.encode("utf-8", "replace")
