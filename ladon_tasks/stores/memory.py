"""Task records in this process's memory: the store of thread mode."""

from __future__ import annotations

import base64
import threading
import time
from collections import deque
from typing import Any

from ladon_tasks.estimate import HISTORY
from ladon_tasks.listing import TaskQuery
from ladon_tasks.sizes import json_size, too_large
from ladon_tasks.stores.base import ProgressSink, TaskStore
from ladon_tasks.stores.end_signals import EndSignals
from ladon_tasks.stores.memory_index import MemoryIndex
from ladon_tasks.task import CANCELLED_QUEUED, Gone, TaskRecord, TaskState, snapshot

#: Most tombstones kept at once; the oldest go first past this.
MAX_TOMBSTONES = 100_000


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
        self._tombstones = _Tombstones(self.tombstone_ttl)
        #: Tasks dismissed while queued or running: forgotten when they end.
        self._dismissed: set[str] = set()
        self._index = MemoryIndex()
        self._lock = threading.Lock()
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

    def create(self, record: TaskRecord, job: Any = None) -> None:
        with self._lock:
            self._purge_expired(time.monotonic())
            if record.task_id in self._records:
                raise ValueError(f"task {record.task_id} exists already")
            self._records[record.task_id] = record
            self._index.add(record)
            if job is not None:
                self._jobs[record.task_id] = job

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
        # An ended record changes no more: read without the lock while none is due to
        # expire (polls of ended tasks from many threads do not queue on it).
        record = self._records.get(task_id)
        if record is not None and record.state.done and not self._expiry_due() \
                and task_id not in self._dismissed:
            return snapshot(record)
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
            record.state = TaskState.RUNNING
            record.started = record.heartbeat = started
            record.touched = 0.0
            record.progress = 0.0
            record.message = ""
            record.owner = owner
            return True

    def set_progress(self, task_id: str, progress: float, heartbeat: float,
                     message: str | None = None) -> bool:
        record = self._records.get(task_id)
        if record is None or record.state is not TaskState.RUNNING:
            return False
        record.progress = progress
        record.heartbeat = record.touched = heartbeat
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
        if state is TaskState.SUCCEEDED:
            record.result = result
            if record.started:
                history = self._durations.setdefault(record.method, deque(maxlen=HISTORY))
                history.appendleft(finished - record.started)
                self._typical.pop(record.method, None)
        record.error = error
        record.finished = finished
        if not record.started:
            record.started = finished
        record.state = state
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
            self._expires_at.pop(task_id, None)  # it lives again
            record.state = TaskState.QUEUED
            record.attempt = attempt
            record.error = note
            record.owner = owner
            record.progress = record.started = record.finished = 0.0
            record.heartbeat = record.touched = 0.0
            record.message = ""
            return True

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


class _Tombstones:
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
