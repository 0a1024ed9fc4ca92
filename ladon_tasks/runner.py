"""Run one attempt of a task from start to recorded end; shared by worker threads and
worker processes."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from ladon_tasks.exceptions import ResultTooLarge, StoreUnavailable, TaskInterrupt, TaskPaused
from ladon_tasks.options import TaskPolicy
from ladon_tasks.progress import TaskContext, UpdateProgress, enter_task, leave_task, make_update_progress
from ladon_tasks.store_retry import RecordMissing, StoreRetry
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.task import TaskState, describe_exception
from ladon_tasks.watchdog import RUNNING, Control, describe_stop

log = logging.getLogger("ladon_tasks.task")


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended: its state (None: not run, it was not queued any more) and,
    for a task queued again, the seconds until its next attempt. ``unrecorded`` says why
    the end could not be written (the store was away longer than ``store_retry_for``):
    the executor then records the task lost once the store is back."""

    state: TaskState | None
    retry_in: float | None = None
    unrecorded: str = ""
    #: Not run: its method is paused, and the task stays queued (the executor holds it).
    paused: bool = False


NOT_RUN = Outcome(None)
PAUSED = Outcome(None, paused=True)


def attempts_note(error: str, attempt: int) -> str:
    """The final error of a task that ran more than once says how often it ran."""
    return error if attempt <= 1 else f"{error} (after {attempt} attempts)"


class _Writes:
    """The writes of one attempt, each through the retry policy; a write that finds the
    record missing (the store lost its data) waits for the record to be written again."""

    def __init__(self, store: TaskStore, task_id: str, retry: StoreRetry) -> None:
        self.store, self.task_id, self.retry = store, task_id, retry

    def __call__(self, what: str, write: Callable[[], bool]) -> bool:
        def checked() -> bool:
            done = write()
            if not done and not self.store.knows(self.task_id):
                raise RecordMissing(f"the store has no record of task {self.task_id} (Redis "
                                    "restarted without its data?); waiting for it to be written again")
            return done

        return self.retry.run(what, checked, self.task_id)


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
    queue_owner: str | None = None,
    debug: bool = False,
    retry_for: float = 60.0,
) -> Outcome:
    """Mark the task running, call ``call(update_progress)``, record how it ended.

    ``encode`` turns the return value into what the store keeps (it validates it, too);
    an exception from it fails the task with a clear message. A failed attempt with
    attempts left is queued again, held by ``queue_owner`` (None: ``owner``; ``""``:
    no process, as a broker holds it), instead of ending. Every
    write is retried for ``retry_for`` seconds while the store cannot take it.
    """
    writes = _Writes(store, task_id, StoreRetry(retry_for))
    started = time.time()  # the same in every try: a retry of an applied write succeeds
    try:
        running = writes("mark it running", lambda: store.mark_running(task_id, started, owner))
    except StoreUnavailable as exc:  # its server records it lost once the store is back
        return Outcome(None, unrecorded=f"it could not be started: {exc}")
    except TaskPaused:
        log.debug("task %s: its method is paused; it stays queued", task_id)
        return PAUSED
    if not running:
        log.info("task %s was not queued any more (cancelled, expired or taken); not run", task_id)
        return NOT_RUN
    control[RUNNING] = 1  # the limits count from now
    sink = store.progress_sink(task_id)
    state, result, error = _call_task(task_id, call, encode, sink, control, policy, debug)
    try:
        writes("write its last progress", lambda: store.close_progress_sink(sink) or True)
        retry = policy.next_attempt(state, attempt, error)
        if retry is not None:
            delay, note = retry
            holder = owner if queue_owner is None else queue_owner
            if writes("queue it again", lambda: store.requeue(task_id, attempt + 1, note, holder)):
                log.info("task %s: %s", task_id, note)
                return Outcome(TaskState.QUEUED, delay)
        if state is not TaskState.SUCCEEDED:
            error = attempts_note(error, attempt)
        return Outcome(_record_end(writes, store, task_id, state, result, error, attempt))
    except StoreUnavailable as exc:
        return Outcome(state, unrecorded=f"its end ({state.value}) could not be recorded: {exc}")


def _call_task(task_id: str, call: Callable[[UpdateProgress], Any], encode: Callable[[Any], Any],
               sink: Any, control: Control, policy: TaskPolicy,
               debug: bool) -> tuple[TaskState, Any, str]:
    """Run the task's own code: the state it reached, its encoded result, its error."""
    update_progress = make_update_progress(sink, control, policy)
    token = enter_task(TaskContext(task_id, update_progress))
    try:
        return TaskState.SUCCEEDED, encode(call(update_progress)), ""
    except TaskInterrupt as stop:
        state, error = describe_stop(stop, policy)
        # A cancel is a caller's wish, a limit the task's fault.
        level = logging.INFO if state is TaskState.CANCELLED else logging.WARNING
        log.log(level, "task %s stopped: %s", task_id, error)
        return state, None, error
    except Exception as exc:  # a task's own error: recorded, never raised further
        log.error("task %s failed", task_id, exc_info=True)
        error = describe_exception(exc)
        if debug:
            error += "\n" + traceback.format_exc()
        return TaskState.FAILED, None, error
    finally:
        leave_task(token)


def _record_end(writes: _Writes, store: TaskStore, task_id: str, state: TaskState, result: Any,
                error: str, attempt: int) -> TaskState:
    """Write the end; a result the store refuses (too large, not JSON) fails the task."""
    try:
        writes("record its end", lambda: store.finish(task_id, state, time.time(), result=result,
                                                      error=error, attempt=attempt))
        return state
    except ResultTooLarge as exc:
        message = str(exc)
    except (TypeError, ValueError) as exc:
        message = f"ResultNotStorable: the result cannot be stored as JSON ({exc})"
    log.error("task %s: %s", task_id, message)
    writes("record its end", lambda: store.finish(task_id, TaskState.FAILED, time.time(),
                                                  error=message, attempt=attempt))
    return TaskState.FAILED
