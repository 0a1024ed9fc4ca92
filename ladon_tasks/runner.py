"""Run one attempt of a task from start to recorded end; shared by worker threads and
worker processes."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from ladon_tasks.exceptions import StoreUnavailable, TaskInterrupt
from ladon_tasks.options import TaskPolicy
from ladon_tasks.progress import TaskContext, UpdateProgress, enter_task, leave_task, make_update_progress
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.task import TaskState, describe_exception
from ladon_tasks.watchdog import RUNNING, Control, describe_stop

log = logging.getLogger("ladon_tasks.task")

#: Seconds a worker keeps retrying to record a task's end while the store is away.
END_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended: its state (None: not run, it was not queued any more) and,
    for a task queued again, the seconds until its next attempt."""

    state: TaskState | None
    retry_in: float | None = None


NOT_RUN = Outcome(None)


def attempts_note(error: str, attempt: int) -> str:
    """The final error of a task that ran more than once says how often it ran."""
    return error if attempt <= 1 else f"{error} (after {attempt} attempts)"


def run_task(
    store: TaskStore,
    task_id: str,
    owner: str,
    call: Callable[[UpdateProgress], Any],
    encode: Callable[[Any], Any] = lambda value: value,
    *,
    control: Control,
    policy: TaskPolicy = TaskPolicy(),
    attempt: int = 1,
    queue_owner: str = "",
    debug: bool = False,
) -> Outcome:
    """Mark the task running, call ``call(update_progress)``, record how it ended.

    ``encode`` turns the return value into what the store keeps (it validates it, too);
    an exception from it fails the task with a clear message. A failed attempt with
    attempts left is queued again, held by ``queue_owner``, instead of ending.
    """
    if not _retry(lambda: store.mark_running(task_id, time.time(), owner), task_id):
        log.info("task %s was not queued any more (cancelled, expired or taken); not run", task_id)
        return NOT_RUN
    control[RUNNING] = 1  # the limits count from now
    sink = store.progress_sink(task_id)
    update_progress = make_update_progress(sink, control, policy)
    token = enter_task(TaskContext(task_id, update_progress))
    result = None
    try:
        result = encode(call(update_progress))
        state, error = TaskState.SUCCEEDED, ""
    except TaskInterrupt as stop:
        state, error = describe_stop(stop, policy)
        # A cancel is a caller's wish, a limit the task's fault.
        level = logging.INFO if state is TaskState.CANCELLED else logging.WARNING
        log.log(level, "task %s stopped: %s", task_id, error)
    except Exception as exc:  # a task's own error: recorded, never raised further
        log.error("task %s failed", task_id, exc_info=True)
        state, error = TaskState.FAILED, describe_exception(exc)
        if debug:
            error += "\n" + traceback.format_exc()
    finally:
        leave_task(token)
    try:
        store.close_progress_sink(sink)
    except StoreUnavailable as exc:
        log.warning("task %s: last progress not written: %s", task_id, exc)
    retry = policy.next_attempt(state, attempt, error)
    if retry is not None:
        delay, note = retry
        if _retry(lambda: store.requeue(task_id, attempt + 1, note, queue_owner or owner), task_id):
            log.info("task %s: %s", task_id, note)
            return Outcome(TaskState.QUEUED, delay)
    if state is not TaskState.SUCCEEDED:
        error = attempts_note(error, attempt)
    return Outcome(_record_end(store, task_id, state, result, error, attempt))


def _record_end(store: TaskStore, task_id: str, state: TaskState, result: Any, error: str,
                attempt: int) -> TaskState:
    try:
        _retry(lambda: store.finish(task_id, state, time.time(), result=result, error=error,
                                    attempt=attempt), task_id)
    except (TypeError, ValueError) as exc:
        state = TaskState.FAILED
        message = f"ResultNotStorable: the result cannot be stored as JSON ({exc})"
        log.error("task %s: %s", task_id, message)
        _retry(lambda: store.finish(task_id, state, time.time(), error=message, attempt=attempt), task_id)
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
