"""How a running task reports progress: ``kw['update_progress']`` and ``get_current_task()``."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Callable

from ladon_tasks.options import TaskPolicy
from ladon_tasks.stores.base import ProgressSink
from ladon_tasks.task import clip_message
from ladon_tasks.watchdog import CALLS, STOP, Control, interrupt_for

UpdateProgress = Callable[..., None]


@dataclass(frozen=True)
class TaskContext:
    """The task the current thread is running: its id and its progress reporter."""

    task_id: str
    update_progress: UpdateProgress


_current_task: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "ladon_tasks_current_task", default=None
)


def get_current_task() -> TaskContext | None:
    """The task running in this thread, or None outside a task.

    For code deep in the call stack that has no ``kw``::

        get_current_task().update_progress(0.5)
    """
    return _current_task.get()


def make_update_progress(sink: ProgressSink, control: Control, policy: TaskPolicy) -> UpdateProgress:
    """The ``update_progress(value, message=None)`` function handed to a task: clamps to
    [0, 1], ignores NaN (and its message), keeps the latest message (text, at most 500
    characters), and raises the task's TaskInterrupt once its executor asked it to stop."""

    def update_progress(value: float, message: str | None = None) -> None:
        if control[STOP]:
            raise interrupt_for(control[STOP], policy)
        control[CALLS] += 1
        value = float(value)
        if value < 0.0:
            value = 0.0
        elif value > 1.0:
            value = 1.0
        elif value != value:
            return
        if message is None:
            sink(value)
        else:
            sink(value, clip_message(message))

    return update_progress


def enter_task(context: TaskContext) -> contextvars.Token:
    """Make ``context`` the current task of this thread until :func:`leave_task`."""
    return _current_task.set(context)


def leave_task(token: contextvars.Token) -> None:
    """Undo :func:`enter_task`."""
    _current_task.reset(token)
