"""The interface every task store implements; the conformance tests run against each."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

from ladon_tasks.task import TaskRecord, TaskState

ProgressSink = Callable[[float], None]


class TaskStore(ABC):
    """Keeps task records. All times are seconds since the epoch.

    A store never invents a task: writes to an unknown or expired id are ignored and
    return False, so a late worker cannot resurrect a forgotten task.
    """

    #: True if results must be JSON-able data (the store serialises them).
    needs_encoded_results: bool = False

    @abstractmethod
    def create(self, record: TaskRecord) -> None:
        """Record a new task, atomically. Raises StoreUnavailable if it cannot be written."""

    @abstractmethod
    def get(self, task_id: str) -> TaskRecord | None:
        """The task's record, without its result; None if unknown or expired."""

    @abstractmethod
    def mark_running(self, task_id: str, started: float, owner: str) -> bool:
        """Move a queued task to running, with progress 0.0 and a first heartbeat."""

    @abstractmethod
    def set_progress(self, task_id: str, progress: float, heartbeat: float) -> bool:
        """Store the latest progress of a running task and refresh its heartbeat."""

    @abstractmethod
    def heartbeat(self, task_ids: list[str], now: float) -> None:
        """Tell that the tasks' worker is alive."""

    @abstractmethod
    def finish(
        self, task_id: str, state: TaskState, finished: float, result: Any = None, error: str = ""
    ) -> bool:
        """Record the end of a task (progress becomes 1.0, however it ended); the record
        expires ``result_ttl`` seconds later. A lost task may still be finished by its
        worker (its real outcome wins); any other ended task is final."""

    @abstractmethod
    def get_result(self, task_id: str) -> Any:
        """The stored result of a succeeded task (encoded form for JSON stores)."""

    @abstractmethod
    def progress_sink(self, task_id: str) -> ProgressSink:
        """A callable taking clamped progress values for one running task.

        It must be cheap: it is called from ``kw['update_progress']`` in tight loops.
        """

    def close_progress_sink(self, sink: ProgressSink) -> None:
        """Flush what ``sink`` holds back; called before the task's end is recorded."""

    def register_owner(self, owner: str, ttl: float) -> None:
        """Tell that a server process holding queued tasks is alive (no-op in memory)."""

    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be reached."""

    def close(self) -> None:
        """Release connections and threads."""
