"""The one exception family of ladon_tasks."""

from __future__ import annotations


class LadonTasksError(Exception):
    """Base of every error ladon_tasks raises."""


class ConfigurationError(LadonTasksError, ValueError):
    """An option or a combination of options cannot work; the message names the fix."""


class InvalidTaskId(LadonTasksError):
    """A task id that is not one ladon_tasks could have issued."""


class TaskNotFound(LadonTasksError):
    """No task has this id: never issued, expired, or kept by another process."""


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


class StoreUnavailable(LadonTasksError):
    """The task store (Redis) cannot be reached; nothing was written."""


class ShuttingDown(LadonTasksError):
    """The server process is stopping and accepts no new task."""
