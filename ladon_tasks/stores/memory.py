"""Task records in this process's memory: the store of thread mode."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ladon_tasks.estimate import HISTORY
from ladon_tasks.exceptions import TaskPaused
from ladon_tasks.listing import TaskQuery
from ladon_tasks.metrics import MethodMetrics
from ladon_tasks.sizes import json_size, too_large
from ladon_tasks.stores.base import ProgressSink, TaskStore
from ladon_tasks.stores.counted_lock import CountedLock
from ladon_tasks.stores.end_signals import EndSignals
from ladon_tasks.stores.memory_index import MemoryIndex
from ladon_tasks.stores.memory_metrics import MemoryMetrics
from ladon_tasks.stores.memory_tombstones import Tombstones
from ladon_tasks.task import (
    CANCELLED_QUEUED,
    RETRYABLE,
    Gone,
    TaskRecord,
    TaskState,
    pause_covers,
    snapshot,
)


class MemoryStore(TaskStore):
    """A dict of records behind one lock; finished records expire after ``result_ttl``,
    then leave a tombstone for ``tombstone_ttl``.

    Expiry is amortised: every create and read first drops the records (and tombstones)
    whose time has come, oldest first, so memory stays flat however many tasks have run.
    A result larger than ``max_result_bytes`` as JSON is refused (ResultTooLarge).
    """

    def __init__(self, result_ttl: float = 3600.0, tombstone_ttl: float = 86400.0,
                 max_result_bytes: int = 64 * 1024 * 1024) -> None:
        self.result_ttl = float(result_ttl)
        self.tombstone_ttl = float(tombstone_ttl)
        self.max_result_bytes = int(max_result_bytes)
        self._records: dict[str, TaskRecord] = {}
        #: What each task runs, for the tasks created with one (see TaskStore.create).
        self._jobs: dict[str, Any] = {}
        #: method -> durations of its latest successful runs, newest first.
        self._durations: dict[str, deque[float]] = {}
        #: method -> the median of its durations, dropped when they change.
        self._typical: dict[str, float] = {}
        self._expiry: deque[tuple[float, str]] = deque()
        #: When each ended record expires; an entry of ``_expiry`` that disagrees is stale
        #: (the task was queued again after it was lost).
        self._expires_at: dict[str, float] = {}
        self._tombstones = Tombstones(self.tombstone_ttl)
        #: Tasks dismissed while queued or running: forgotten when they end.
        self._dismissed: set[str] = set()
        self._index = MemoryIndex()
        self._metrics = MemoryMetrics()
        #: Paused methods (or ALL_METHODS) -> since when.
        self._paused: dict[str, float] = {}
        #: A unique task's key -> its id, and back, while it is queued or running.
        self._unique: dict[str, str] = {}
        self._unique_of: dict[str, str] = {}
        self._lock = CountedLock()
        self.end_signals = EndSignals()

    def __len__(self) -> int:
        return len(self._records)

    def _purge_expired(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            when, task_id = expiry.popleft()
            if self._expires_at.get(task_id) != when:
                continue
            del self._expires_at[task_id]
            self._jobs.pop(task_id, None)
            record = self._records.pop(task_id, None)
            if record is not None:
                self._tombstones.add(task_id, Gone.EXPIRED, now, record.caller)
        self._tombstones.purge(now)

    def _live(self, task_id: str) -> TaskRecord | None:
        """The record, unless the task was dismissed (then it reads as gone)."""
        if task_id in self._dismissed:
            return None
        return self._records.get(task_id)

    def create(self, record: TaskRecord, job: Any = None, unique: str | None = None) -> str:
        with self._lock:
            self._purge_expired(time.monotonic())
            if record.task_id in self._records:
                raise ValueError(f"task {record.task_id} exists already")
            if unique is not None:
                holder = self._unique.get(unique)
                if holder is not None:
                    return holder
                self._claim(unique, record.task_id)
            self._records[record.task_id] = record
            self._index.add(record)
            self._metrics.moved(record.method, None, record.state)
            if job is not None:
                self._jobs[record.task_id] = job
            return record.task_id

    def _claim(self, unique: str, task_id: str) -> None:
        self._unique[unique] = task_id
        self._unique_of[task_id] = unique

    def _move(self, record: TaskRecord, state: TaskState) -> None:
        """Set a record's state, counting the change."""
        self._metrics.moved(record.method, record.state, state)
        record.state = state

    def list_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        with self._lock:
            self._purge_expired(time.monotonic())
            self._index.compact(lambda task_id: task_id in self._records)
            rows = self._index.rows(query, self._live)
            return [snapshot(record) for record in rows]

    def durations(self, method: str) -> list[float]:
        return list(self._durations.get(method, ()))

    def expected_duration(self, method: str) -> float:
        typical = self._typical.get(method)
        if typical is None:
            typical = self._typical[method] = super().expected_duration(method)
        return typical

    def get_job(self, task_id: str) -> Any:
        with self._lock:
            return self._jobs.get(task_id) if self._live(task_id) is not None else None

    def get(self, task_id: str) -> TaskRecord | None:
        # Polls from many threads do not queue on the lock: while no record is due to
        # expire, the record is copied without it if nobody held it during the copy (see
        # CountedLock; progress reports write without the lock, one value at a time).
        lock = self._lock
        releases = lock.releases
        record = self._records.get(task_id)
        if record is not None and not lock.locked() and not self._expiry_due() \
                and task_id not in self._dismissed:
            copy = snapshot(record)
            if not lock.locked() and lock.releases == releases:
                return copy
        with self._lock:
            self._purge_expired(time.monotonic())
            record = self._live(task_id)
            return None if record is None else snapshot(record)

    def _expiry_due(self) -> bool:
        try:
            return self._expiry[0][0] <= time.monotonic()
        except IndexError:
            return False

    def gone(self, task_id: str) -> tuple[Gone, str] | None:
        with self._lock:
            self._purge_expired(time.monotonic())
            return self._tombstones.get(task_id)

    def mark_running(self, task_id: str, started: float, owner: str) -> bool:
        with self._lock:
            record = self._records.get(task_id)
            if (record is not None and record.state is TaskState.RUNNING and record.owner == owner
                    and record.started == started):
                return True  # done already: a retried write, as in every store
            if record is None or record.state is not TaskState.QUEUED:
                return False
            if self._paused and pause_covers(self._paused, record.method):
                raise TaskPaused(f"{record.method} is paused")
            self._move(record, TaskState.RUNNING)
            record.started = record.heartbeat = started
            record.touched = 0.0
            record.progress = 0.0
            record.message = ""
            record.owner = owner
            return True

    def set_progress(self, task_id: str, progress: float, heartbeat: float,
                     message: str | None = None, reported: float | None = None) -> bool:
        record = self._records.get(task_id)
        if record is None or record.state is not TaskState.RUNNING:
            return False
        record.progress = progress
        record.heartbeat = heartbeat
        record.touched = heartbeat if reported is None else reported
        if message is not None:
            record.message = message
        return True

    def heartbeat(self, task_ids: list[str], now: float) -> None:
        for task_id in task_ids:
            record = self._records.get(task_id)
            if record is not None:
                record.heartbeat = now

    def finish(
        self, task_id: str, state: TaskState, finished: float, result: Any = None, error: str = "",
        attempt: int = 0,
    ) -> bool:
        """Raises ResultTooLarge, the record left as it was, for a result over the limit."""
        if state is TaskState.SUCCEEDED:
            self._check_size(result)
        with self._lock:
            record = self._records.get(task_id)
            # In one process 'lost' is a verdict of the stopping server, and it stays.
            if record is None or record.state.done or (attempt and record.attempt != attempt):
                return False
            self._end(record, state, finished, result, error)
            return True

    def _check_size(self, result: Any) -> None:
        """Refuse a result larger than ``max_result_bytes`` (counted outside the lock)."""
        size = json_size(result, self.max_result_bytes)
        if size > self.max_result_bytes:
            raise too_large(size, self.max_result_bytes, at_least=True)

    def _end(self, record: TaskRecord, state: TaskState, finished: float, result: Any = None,
             error: str = "") -> None:
        # Ladon's contract: progress is 1.0 once a task has ended, however it ended,
        # so clients that poll until progress reaches 1.0 always stop.
        record.progress = 1.0
        if record.started and record.state is TaskState.RUNNING:
            self._metrics.ran(record.method, finished - record.started)
        unique = self._unique_of.pop(record.task_id, None)
        if unique is not None and self._unique.get(unique) == record.task_id:
            del self._unique[unique]
        if state is TaskState.SUCCEEDED:
            record.result = result
            self._jobs.pop(record.task_id, None)  # it will not run again
            if record.started:
                history = self._durations.setdefault(record.method, deque(maxlen=HISTORY))
                history.appendleft(finished - record.started)
                self._typical.pop(record.method, None)
        record.error = error
        record.finished = finished
        if not record.started:
            record.started = finished
        self._move(record, state)
        self.end_signals.signal(record.task_id)
        if record.task_id in self._dismissed:
            self._dismissed.discard(record.task_id)
            del self._records[record.task_id]
            self._jobs.pop(record.task_id, None)
            self._expires_at.pop(record.task_id, None)
        else:
            when = time.monotonic() + self.result_ttl
            self._expires_at[record.task_id] = when
            self._expiry.append((when, record.task_id))

    def requeue(self, task_id: str, attempt: int, note: str, owner: str) -> bool:
        with self._lock:
            record = self._records.get(task_id)
            if (record is not None and record.state is TaskState.QUEUED and record.attempt == attempt
                    and record.owner == owner):
                return True  # done already: a retried write, as in every store
            if (record is None or record.state not in (TaskState.RUNNING, TaskState.LOST)
                    or record.cancel_requested or record.attempt != attempt - 1):
                return False
            if record.state is TaskState.RUNNING and record.started:
                self._metrics.ran(record.method, max(0.0, time.time() - record.started))
            self._queue_again(record, attempt, note, owner)
            return True

    def _queue_again(self, record: TaskRecord, attempt: int, note: str, owner: str) -> None:
        self._expires_at.pop(record.task_id, None)  # it lives again
        self._move(record, TaskState.QUEUED)
        record.attempt = attempt
        record.error = note
        record.owner = owner
        record.progress = record.started = record.finished = 0.0
        record.heartbeat = record.touched = 0.0
        record.message = ""

    def retry(self, task_id: str, attempt: int, owner: str) -> bool:
        with self._lock:
            self._purge_expired(time.monotonic())
            record = self._live(task_id)
            if record is None:
                return False
            if record.state is TaskState.QUEUED and record.attempt == attempt and record.owner == owner:
                return True  # done already: a retried write
            if record.state not in RETRYABLE or record.attempt != attempt - 1:
                return False
            self._queue_again(record, attempt, "", owner)
            record.cancel_requested = 0.0
            record.result = None
            return True

    def pause(self, method: str, now: float) -> None:
        with self._lock:
            self._paused.setdefault(method, now)

    def resume(self, method: str | None) -> None:
        with self._lock:
            if method is None:
                self._paused.clear()
            else:
                self._paused.pop(method, None)

    def paused(self) -> dict[str, float]:
        with self._lock:
            return dict(self._paused)

    def metrics(self) -> dict[str, MethodMetrics]:
        with self._lock:
            return self._metrics.snapshot()

    def request_cancel(self, task_id: str, now: float) -> TaskRecord | None:
        with self._lock:
            record = self._live(task_id)
            if record is None:
                return None
            self._cancel(record, now)
            return snapshot(record)

    def _cancel(self, record: TaskRecord, now: float) -> None:
        if record.state is TaskState.QUEUED:
            record.cancel_requested = now
            self._end(record, TaskState.CANCELLED, now, error=CANCELLED_QUEUED)
        elif record.state is TaskState.RUNNING and not record.cancel_requested:
            record.cancel_requested = now

    def cancel_requests(self, task_ids: list[str]) -> set[str]:
        records = self._records
        return {task_id for task_id in task_ids
                if (record := records.get(task_id)) is not None and record.cancel_requested}

    def dismiss(self, task_id: str, now: float) -> TaskRecord | None:
        with self._lock:
            record = self._live(task_id)
            if record is None:
                return None
            if not record.state.done:
                self._dismissed.add(task_id)  # before the cancel: a queued task ends in it
                self._cancel(record, now)
            self.end_signals.signal(task_id)  # its waiters learn it is dismissed
            answer = snapshot(record)
            if record.state.done:
                self._records.pop(task_id, None)
                self._jobs.pop(task_id, None)
                self._expires_at.pop(task_id, None)
                self._dismissed.discard(task_id)
            self._tombstones.add(task_id, Gone.DISMISSED, time.monotonic(), record.caller)
            return answer

    def get_result(self, task_id: str) -> Any:
        record = self._live(task_id)
        return None if record is None else record.result

    def progress_sink(self, task_id: str) -> ProgressSink:
        record = self._records[task_id]
        clock = time.time

        # Bare attribute stores: atomic under the GIL and a few hundred ns a call.
        def sink(progress: float, message: str | None = None) -> None:
            record.progress = progress
            record.touched = clock()
            if message is not None:
                record.message = message

        return sink
