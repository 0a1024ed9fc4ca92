"""The interface every task store implements; the conformance tests run against each."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, Callable, ContextManager

from ladon_tasks.listing import TaskQuery
from ladon_tasks.metrics import MethodMetrics
from ladon_tasks.stores.end_signals import EndSignals
from ladon_tasks.task import Gone, TaskRecord, TaskState

#: ``sink(progress)`` or ``sink(progress, message)``: the latest value and message of a task.
ProgressSink = Callable[..., None]


class TaskStore(ABC):
    """Keeps task records. All times are seconds since the epoch.

    A store never invents a task: writes to an unknown or expired id are ignored and
    return False, so a late worker cannot resurrect a forgotten task.
    """

    #: True if results must be JSON-able data (the store serialises them).
    needs_encoded_results: bool = False
    #: The waiters of ``<m>_wait``, woken when their task ends.
    end_signals: EndSignals

    def end_watch(self, task_id: str) -> ContextManager[threading.Event]:
        """While the block runs, its event is set once ``task_id`` ends or is dismissed,
        wherever that happens; read the record after entering, so no end is missed."""
        return self.end_signals.watch(task_id)

    def wake_interval(self) -> float:
        """Seconds a waiter may sleep without a signal before it reads the record again:
        long where every end is signalled, short while signals may be missed."""
        return 60.0

    @abstractmethod
    def create(self, record: TaskRecord, job: Any = None, unique: str | None = None) -> str:
        """Record a new task, atomically; returns its id. Raises StoreUnavailable if it
        cannot be written.

        ``job`` (JSON-able data, or None) is what the task runs, kept with the record for
        as long as it lives, so that any process can run it (again): see :meth:`get_job`.
        With ``unique`` (a key: the hash of a method, its arguments and its caller), a
        task of the same key still queued or running is answered instead (its id) and
        nothing is written: the check and the write are one atomic step."""

    @abstractmethod
    def list_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        """Up to ``query.limit + 1`` records of tasks matching ``query`` (dismissed and
        expired ones never), newest first by ``(created, task_id)``, from just after its
        cursor: the page, and one more if there is a next page."""

    @abstractmethod
    def get_job(self, task_id: str) -> Any:
        """The job the task was created with; None if it had none, or is gone."""

    @abstractmethod
    def durations(self, method: str) -> list[float]:
        """The durations of the latest successful runs of ``method`` (at most
        :data:`~ladon_tasks.estimate.HISTORY`, newest first); a shared store may answer
        from a copy a few seconds old."""

    def expected_duration(self, method: str) -> float:
        """The typical duration of ``method``: the median of :meth:`durations` (0.0: none)."""
        from ladon_tasks.estimate import typical_duration

        return typical_duration(self.durations(method))

    def get_with_job(self, task_id: str) -> tuple[TaskRecord | None, Any]:
        """:meth:`get` and :meth:`get_job` at once (one read where the store can)."""
        record = self.get(task_id)
        return record, None if record is None else self.get_job(task_id)

    @abstractmethod
    def get(self, task_id: str) -> TaskRecord | None:
        """The task's record, without its result; None if unknown or expired."""

    @abstractmethod
    def mark_running(self, task_id: str, started: float, owner: str) -> bool:
        """Move a queued task to running, with progress 0.0 and a first heartbeat. The
        same call again (same ``started`` and ``owner``) succeeds too: a write retried
        after its reply was lost must not read as refused. Raises TaskPaused, the task
        left queued, while its method (or every method) is paused: see :meth:`pause`."""

    @abstractmethod
    def set_progress(self, task_id: str, progress: float, heartbeat: float,
                     message: str | None = None, reported: float | None = None) -> bool:
        """Store the latest progress of a running task (and its message, unless None).
        ``reported`` is when the task said it (``touched``; default ``heartbeat``): a
        coalesced write comes later than the call it writes, and the ETA reckons the
        task's pace from the time the value was true."""

    @abstractmethod
    def heartbeat(self, task_ids: list[str], now: float) -> None:
        """Tell that the tasks' worker is alive."""

    @abstractmethod
    def finish(
        self, task_id: str, state: TaskState, finished: float, result: Any = None, error: str = "",
        attempt: int = 0,
    ) -> bool:
        """Record the end of a task (progress becomes 1.0, however it ended); the record
        expires ``result_ttl`` seconds later. In a store shared by processes a lost task
        may still be finished by its worker (its real outcome wins: the worker was thought
        dead); any other ended task is final. With ``attempt``,
        only that attempt may end the task (a late thread cannot end the next attempt)."""

    @abstractmethod
    def requeue(self, task_id: str, attempt: int, note: str, owner: str) -> bool:
        """Queue a running (or lost) attempt ``attempt - 1`` again as attempt ``attempt``,
        held by ``owner``; ``note`` (why the last attempt failed) goes in ``error``. Refused
        (False) for an ended task, another attempt, and a task a caller asked to cancel; the
        same call again succeeds (a retried write)."""

    @abstractmethod
    def retry(self, task_id: str, attempt: int, owner: str) -> bool:
        """Queue an ended task (failed, lost or cancelled, at attempt ``attempt - 1``)
        again as attempt ``attempt``, held by ``owner``: progress, times, error, message
        and cancel request cleared, live again (no expiry, no tombstone). Refused (False)
        for any other state or attempt; the same call again succeeds."""

    @abstractmethod
    def pause(self, method: str, now: float) -> None:
        """Let no queued task of ``method`` (:data:`~ladon_tasks.task.ALL_METHODS`:
        of any method) start until :meth:`resume`; new tasks are still accepted."""

    @abstractmethod
    def resume(self, method: str | None) -> None:
        """End the pause of ``method`` (None: every pause)."""

    @abstractmethod
    def paused(self) -> dict[str, float]:
        """Each paused method (or ALL_METHODS) -> when it was paused."""

    @abstractmethod
    def metrics(self) -> dict[str, MethodMetrics]:
        """What the tasks of each method did (see :mod:`ladon_tasks.metrics`)."""

    @abstractmethod
    def request_cancel(self, task_id: str, now: float) -> TaskRecord | None:
        """Ask a task to stop: a queued one ends cancelled at once, a running one gets
        ``cancel_requested`` (its executor stops it), an ended one is left as it is.
        Returns the record as it is afterwards; None if unknown, expired or dismissed."""

    @abstractmethod
    def cancel_requests(self, task_ids: list[str]) -> set[str]:
        """Those of ``task_ids`` (running here) that a caller asked to cancel."""

    @abstractmethod
    def dismiss(self, task_id: str, now: float) -> TaskRecord | None:
        """Forget a task: at once if it has ended, else cancel it and forget it when it
        ends. From now on it reads as :attr:`Gone.DISMISSED`. Returns the record as it
        was (after the cancel, for a queued task); None if unknown, expired or dismissed."""

    @abstractmethod
    def gone(self, task_id: str) -> tuple[Gone, str] | None:
        """Why an issued id has no record (expired or dismissed) and the caller its task
        was bound to ("" for none), while its tombstone lasts; None for an id never seen,
        or one whose tombstone expired too."""

    def tombstone(self, task_id: str) -> Gone | None:
        """Why an issued id has no record, as :meth:`gone` says; None as it does."""
        found = self.gone(task_id)
        return None if found is None else found[0]

    @abstractmethod
    def get_result(self, task_id: str) -> Any:
        """The stored result of a succeeded task (encoded form for JSON stores)."""

    @abstractmethod
    def progress_sink(self, task_id: str) -> ProgressSink:
        """A callable taking clamped progress values, and optional messages (clipped
        already), for one running task.

        It must be cheap: it is called from ``kw['update_progress']`` in tight loops.
        """

    def close_progress_sink(self, sink: ProgressSink) -> None:
        """Flush what ``sink`` holds back; called before the task's end is recorded."""

    def knows(self, task_id: str) -> bool:
        """True if the store holds a record or a tombstone of ``task_id``: false for a
        live task only if the store lost its data."""
        return self.get(task_id) is not None or self.tombstone(task_id) is not None

    def register_owner(self, owner: str, ttl: float) -> bool:
        """Tell that a server process holding tasks is alive; True if it was registered
        already (False: first time, or the registration lapsed or was lost)."""
        return True

    def restore(self, records: list[TaskRecord]) -> int:
        """Write again the records of live tasks the store lost (neither record nor
        tombstone); returns how many it wrote. A store that cannot lose data has none."""
        return 0

    def location(self) -> Any:
        """What tells where the store's data lives: two stores of one location share
        their tasks and counts (Redis: the database and the key prefix)."""
        return id(self)

    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be reached."""

    def close(self) -> None:
        """Release connections and threads."""
