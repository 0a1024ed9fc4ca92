"""The one exception family of ladon_tasks, and the interrupts raised inside a task."""

from __future__ import annotations


class LadonTasksError(Exception):
    """Base of every error ladon_tasks raises."""


class ConfigurationError(LadonTasksError, ValueError):
    """An option or a combination of options cannot work; the message names the fix."""


class InvalidTaskId(LadonTasksError):
    """A task id that is not one ladon_tasks could have issued."""


class TaskNotFound(LadonTasksError):
    """No task has this id: never issued, or kept by another process."""


class TaskExpired(TaskNotFound):
    """The task ended and its record expired after ``result_ttl``."""


class TaskDismissed(TaskNotFound):
    """The task was dismissed: its record and result were dropped on request."""


class ResultNotReady(LadonTasksError):
    """The result was asked for while the task is still queued or running."""


class TaskFailed(LadonTasksError):
    """The task raised; ``error`` is ``"ExceptionType: message"``."""

    def __init__(self, task_id: str, error: str) -> None:
        super().__init__(f"task {task_id} failed: {error}")
        self.task_id = task_id
        self.error = error


class TaskLost(TaskFailed):
    """The task's worker went away (killed, crashed or stopped) before it finished."""


class TaskCancelled(LadonTasksError):
    """The task was cancelled, so it has no result; ``error`` says when and how."""

    def __init__(self, task_id: str, error: str) -> None:
        super().__init__(f"task {task_id} was cancelled: {error}")
        self.task_id = task_id
        self.error = error


class StoreUnavailable(LadonTasksError):
    """The task store (Redis) cannot be reached; nothing was written."""


class BrokerUnavailable(StoreUnavailable):
    """Celery mode: the Celery broker cannot be reached, so the task was not queued."""


class QueueFull(LadonTasksError):
    """A start refused: this server process already holds ``max_queued`` tasks waiting."""


class ResultTooLarge(LadonTasksError, ValueError):
    """A task's result is larger than ``max_result_bytes`` (or than Redis takes)."""


class ShuttingDown(LadonTasksError):
    """The server process is stopping and accepts no new task."""


class NotRetryable(LadonTasksError):
    """A retry was asked for a task that cannot run again: it succeeded, it has not
    ended, or its arguments were not kept."""


class TaskPaused(LadonTasksError):
    """A queued task may not start: its method (or every method) is paused. Its executor
    holds it, queued, until the pause ends."""


class InvalidQuery(LadonTasksError, ValueError):
    """A listing asked with a filter, limit or cursor that cannot be answered."""


class TaskInterrupt(BaseException):
    """Raised inside a running task by ``update_progress`` when the task must stop.

    It derives from BaseException, as KeyboardInterrupt does, so that a task's own
    ``except Exception:`` does not swallow it; clean up in ``finally`` and let it pass.
    If a task catches it anyway, every later ``update_progress`` call raises it again.
    """


class CancelRequested(TaskInterrupt):
    """A caller cancelled the task (``<method>_cancel`` or ``<method>_dismiss``)."""


class TimeLimitExceeded(TaskInterrupt):
    """The task has run longer than its ``time_limit``."""


class TaskStalled(TaskInterrupt):
    """The task has not called ``update_progress`` for ``max_silence`` seconds."""
