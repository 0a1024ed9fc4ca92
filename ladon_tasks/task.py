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
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """True once the task can change no more."""
        return self in _DONE


_DONE = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.LOST, TaskState.CANCELLED})
#: The states from which a task may be retried (run again as its next attempt).
RETRYABLE = frozenset({TaskState.FAILED, TaskState.LOST, TaskState.CANCELLED})
#: The key of a pause of every method (beside pauses of single methods).
ALL_METHODS = "*"


#: What :meth:`TaskRecord.health` says of a running task.
HEALTH_OK = "ok"
HEALTH_SILENT = "silent"
HEALTH_STALLED = "stalled"


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
    #: 1 for the first run, then one more for each retry.
    attempt: int = 1
    #: When a cancel was asked for (0.0: never); the task may still be stopping.
    cancel_requested: float = 0.0
    #: When the running task last called ``update_progress`` (0.0: not since it started).
    touched: float = 0.0
    #: The method's ``max_silence`` in seconds (0.0: none), to tell silent from stalled.
    max_silence: float = 0.0
    #: The latest message given with ``update_progress`` ("" for none); kept after the end.
    message: str = ""
    #: Who started it, as the application's ``identify`` said ("" for nobody): only the
    #: same caller may see it (see :meth:`visible_to`).
    caller: str = ""
    result: Any = None

    @property
    def duration(self) -> float:
        """Seconds run so far; frozen once the task is done; 0.0 while queued."""
        if not self.started:
            return 0.0
        end = self.finished or time.time()
        return max(0.0, end - self.started)

    def silent_for(self, now: float | None = None) -> float:
        """Seconds since a running task last reported progress (or started); else 0.0."""
        if self.state is not TaskState.RUNNING or not self.started:
            return 0.0
        now = time.time() if now is None else now
        return max(0.0, now - max(self.touched, self.started))

    def health(self, now: float | None = None) -> str:
        """``""`` unless running; ``"ok"``, ``"silent"`` (half of ``max_silence`` passed
        without progress) or ``"stalled"`` (all of it: the task is being ended)."""
        if self.state is not TaskState.RUNNING:
            return ""
        if not self.max_silence:
            return HEALTH_OK
        silent = self.silent_for(now)
        if silent >= self.max_silence:
            return HEALTH_STALLED
        return HEALTH_SILENT if silent >= self.max_silence / 2 else HEALTH_OK


class _AnyCaller(str):
    """The type of :data:`ANY_CALLER`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY_CALLER"


#: The caller an administrator asks as: it sees every task, whoever started it. Known by
#: identity (``is``), so no string a request's ``identify`` returns can pass for it.
ANY_CALLER = _AnyCaller("\x00any caller")


def visible_to(bound_to: str, caller: str | None) -> bool:
    """Whether a task started by ``bound_to`` ("" for nobody) may be seen by ``caller``:
    a task started without an identity by anyone, one started with one by it alone (and
    by :data:`ANY_CALLER`)."""
    return not bound_to or bound_to == caller or caller is ANY_CALLER


class Gone(str, Enum):
    """Why a task id that was issued has no record any more (its tombstone says)."""

    EXPIRED = "expired"
    DISMISSED = "dismissed"


def snapshot(record: TaskRecord) -> TaskRecord:
    """A copy of ``record`` without its result, for readers."""
    return TaskRecord(
        task_id=record.task_id, method=record.method, state=record.state, progress=record.progress,
        created=record.created, started=record.started, finished=record.finished,
        error=record.error, owner=record.owner, heartbeat=record.heartbeat, attempt=record.attempt,
        cancel_requested=record.cancel_requested, touched=record.touched,
        max_silence=record.max_silence, message=record.message, caller=record.caller,
    )


#: The error of a task cancelled before it ran.
CANCELLED_QUEUED = "TaskCancelled: cancelled before it started"


def clip_message(message: Any) -> str:
    """A progress message as kept: text, at most MAX_MESSAGE_CHARS characters."""
    from ladon_tasks.constants import MAX_MESSAGE_CHARS

    text = message if isinstance(message, str) else str(message)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS - 1] + "\u2026"
    return text


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


def pause_covers(paused: dict[str, float] | set[str], method: str) -> bool:
    """Whether the pauses ``paused`` (see :meth:`TaskStore.paused`) hold ``method`` back."""
    return ALL_METHODS in paused or method in paused
