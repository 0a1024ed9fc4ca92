"""The copies of ended tasks a server process keeps, to answer polls without Redis.

Succeeded, failed and cancelled tasks never change again, so after the first read a
poll needs no round trip. The copies are bounded by count and by the bytes of the
results they hold; a large result is never kept, and a copy made by a ``_progress``
holds no result at all (it is read, and kept if small, by the first ``_result``). A kept
result is held both as Redis had it (its size is what the bound counts) and decoded from
JSON, decoded once: callers share that value, as the memory store's callers share theirs. A
task that is dismissed or retried anywhere is dropped (the dismissed channel says so), and
a read that was on its way while a copy was dropped keeps nothing (:attr:`generation`).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from ladon_tasks.task import TaskRecord

#: Most copies, and most bytes of results in them, per process.
ENDED_CACHE_SIZE = 10_000
ENDED_CACHE_BYTES = 64 * 1024 * 1024
#: A result larger than this is never kept; it is read from Redis each time.
ENDED_CACHE_LARGEST = 1024 * 1024
#: What a copy holds instead of a result it has not read, or will not keep.
NOT_READ = object()


#: One copy: the record, its raw result (or NOT_READ), fresh until, the decoded result
#: (or NOT_READ).
Entry = tuple[TaskRecord, Any, float, Any]


class EndedCopies:
    """``task_id -> Entry``, oldest first."""

    def __init__(self) -> None:
        self._copies: dict[str, Entry] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        #: Counts the drops: a reader notes it before it reads Redis and passes it to keep.
        self.generation = 0

    @property
    def result_bytes(self) -> int:
        """Bytes of the results held now."""
        return self._bytes

    def entry(self, task_id: str) -> Entry | None:
        """The copy of ``task_id`` while it is fresh."""
        entry = self._copies.get(task_id)
        if entry is not None and entry[2] <= time.time():
            self.forget(task_id)
            return None
        return entry

    def keep(self, record: TaskRecord, raw_result: Any, fresh_until: float, since: int,
             result: Any = NOT_READ) -> None:
        """Keep ``record`` (and its raw result and the ``result`` decoded from it, if small)
        until ``fresh_until``; unless a copy was dropped since :attr:`generation` was
        ``since`` (when it was read)."""
        if not isinstance(raw_result, str) or len(raw_result) > ENDED_CACHE_LARGEST:
            raw_result = result = NOT_READ
        elif result is NOT_READ:
            result = json.loads(raw_result)
        size = len(raw_result) if isinstance(raw_result, str) else 0
        with self._lock:
            if since != self.generation:
                return
            self._drop(record.task_id)
            while self._copies and (len(self._copies) >= ENDED_CACHE_SIZE
                                    or self._bytes + size > ENDED_CACHE_BYTES):
                self._drop(next(iter(self._copies)))
            self._copies[record.task_id] = (record, raw_result, fresh_until, result)
            self._bytes += size

    def forget(self, task_id: str) -> None:
        with self._lock:
            self.generation += 1
            self._drop(task_id)

    def forget_all(self) -> None:
        with self._lock:
            self.generation += 1
            self._copies.clear()
            self._bytes = 0

    def results(self) -> dict[str, Any]:
        """What each copy holds as its result (for tests and operators)."""
        return {task_id: entry[1] for task_id, entry in self._copies.items()}

    def _drop(self, task_id: str) -> None:
        entry = self._copies.pop(task_id, None)
        if entry is not None and isinstance(entry[1], str):
            self._bytes -= len(entry[1])
