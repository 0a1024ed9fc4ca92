"""The task record and its states: the one place that defines them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any


class TaskState(str, Enum):
    """Where a task is in its life. ``str`` so it serialises as its value."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"

    @property
    def done(self) -> bool:
        """True once the task can change no more."""
        return self in _DONE


_DONE = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.LOST})


@dataclass(slots=True)
class TaskRecord:
    """Everything known about one task. Times are seconds since the epoch, 0.0 = not yet."""

    task_id: str
    method: str
    state: TaskState = TaskState.QUEUED
    progress: float = 0.0
    created: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    error: str = ""
    owner: str = ""
    heartbeat: float = 0.0
    result: Any = None

    @property
    def duration(self) -> float:
        """Seconds run so far; frozen once the task is done; 0.0 while queued."""
        if not self.started:
            return 0.0
        end = self.finished or time.time()
        return max(0.0, end - self.started)


def clamp_progress(value: Any) -> float | None:
    """Clamp a progress value to [0, 1]; None for NaN (ignored by reporters)."""
    value = float(value)
    if value != value:
        return None
    if value < 0.0:
        return 0.0
    if value > 1.0:
        return 1.0
    return value


def describe_exception(exc: BaseException) -> str:
    """``"ExceptionType: message"``, the form every client sees for a failed task."""
    message = str(exc)
    name = type(exc).__name__
    return f"{name}: {message}" if message else name
