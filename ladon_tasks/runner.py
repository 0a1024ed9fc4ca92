"""Run one task from start to recorded end; shared by worker threads and worker processes."""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable

from ladon_tasks.exceptions import StoreUnavailable
from ladon_tasks.progress import TaskContext, UpdateProgress, enter_task, leave_task, make_update_progress
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.task import TaskState, describe_exception

log = logging.getLogger("ladon_tasks.task")

#: Seconds a worker keeps retrying to record a task's end while the store is away.
END_RETRY_SECONDS = 60.0


def run_task(
    store: TaskStore,
    task_id: str,
    owner: str,
    call: Callable[[UpdateProgress], Any],
    encode: Callable[[Any], Any] = lambda value: value,
    *,
    debug: bool = False,
) -> TaskState | None:
    """Mark the task running, call ``call(update_progress)``, record success or failure.

    ``encode`` turns the return value into what the store keeps (it validates it, too);
    an exception from it fails the task with a clear message. Returns the end state, or
    None if the task was not queued any more (expired, or taken by someone else).
    """
    if not _retry(lambda: store.mark_running(task_id, time.time(), owner), task_id):
        log.warning("task %s was not queued any more; not run", task_id)
        return None
    sink = store.progress_sink(task_id)
    update_progress = make_update_progress(sink)
    token = enter_task(TaskContext(task_id, update_progress))
    try:
        value = call(update_progress)
        result = encode(value)
        state, error = TaskState.SUCCEEDED, ""
    except Exception as exc:  # a task's own error: recorded, never raised further
        log.error("task %s failed", task_id, exc_info=True)
        state, error, result = TaskState.FAILED, describe_exception(exc), None
        if debug:
            error += "\n" + traceback.format_exc()
    finally:
        leave_task(token)
    store.close_progress_sink(sink)
    try:
        _retry(lambda: store.finish(task_id, state, time.time(), result=result, error=error), task_id)
    except (TypeError, ValueError) as exc:
        state = TaskState.FAILED
        message = f"ResultNotStorable: the result cannot be stored as JSON ({exc})"
        log.error("task %s: %s", task_id, message)
        _retry(lambda: store.finish(task_id, state, time.time(), error=message), task_id)
    return state


def _retry(write: Callable[[], bool], task_id: str) -> bool:
    """Run a store write, retrying while the store is unreachable (Redis restarting)."""
    deadline = time.monotonic() + END_RETRY_SECONDS
    pause = 0.1
    while True:
        try:
            return write()
        except StoreUnavailable as exc:
            if time.monotonic() > deadline:
                log.error("task %s: giving up on the store: %s", task_id, exc)
                return False
            log.warning("task %s: store unavailable, retrying: %s", task_id, exc)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
