"""Celery mode: ending (or running again) an attempt that its own run could not end.

Three things end an attempt from outside its run:

* its pool process died (SIGKILL, OOM) or Celery's hard time limit killed it: the
  worker's main process hears of it at once (:class:`AttemptRequest`, Celery's hook for
  a request's failure, runs there);
* the whole worker died (host lost, SIGKILL to every process): its pool processes'
  owner keys lapse and their heartbeats stop, and the first reader of the record after
  ``lost_after`` finds it (the store's ``lost_handler``), as does a worker that receives
  the task's message again;
* its watchdog ended it by force after ``cancel_grace``.

Each goes through :meth:`Recovery.end_or_retry`: the policy's retries, if any remain,
queue a new attempt (one atomic ``requeue`` in Redis, then one message); otherwise the
end is recorded. Whoever comes second finds the record changed and does nothing, so an
attempt is never both recorded lost and run again, and never run twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ladon_tasks.exceptions import BrokerUnavailable, StoreUnavailable
from ladon_tasks.executors.celery_app import MessageSender
from ladon_tasks.executors.stored_jobs import policy_of
from ladon_tasks.options import TaskPolicy
from ladon_tasks.runner import attempts_note
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskRecord, TaskState
from ladon_tasks.watchdog import STOPS, StopReason

log = logging.getLogger("ladon_tasks.celery")


class Recovery:
    """Ends or queues again attempts of celery-mode tasks, in any process."""

    def __init__(self, store: RedisStore, sender: MessageSender) -> None:
        self.store = store
        self.sender = sender

    def policy(self, task_id: str) -> TaskPolicy:
        """The policy the task runs under, from its stored job (no retries if it has none)."""
        return policy_of(self.store.get_job(task_id)) or TaskPolicy()

    def end_or_retry(self, task_id: str, attempt: int, state: TaskState, error: str,
                     policy: TaskPolicy | None = None) -> bool:
        """End attempt ``attempt`` as ``state``, or queue the next one if the policy allows;
        True if it was queued again."""
        policy = policy or self.policy(task_id)
        retry = policy.next_attempt(state, attempt, error)
        if retry is not None:
            delay, note = retry
            if self.store.requeue(task_id, attempt + 1, note, ""):
                self.send_or_end(task_id, attempt + 1, policy, delay)
                log.info("task %s: %s", task_id, note)
                return True
        self.store.finish(task_id, state, time.time(), error=attempts_note(error, attempt),
                          attempt=attempt)
        return False

    def send_or_end(self, task_id: str, attempt: int, policy: TaskPolicy, countdown: float) -> None:
        """Send the message of a queued attempt; if the broker does not take it, nothing
        will ever run the attempt, so it ends ``lost``, saying why."""
        try:
            self.sender.send(task_id, attempt, policy, countdown)
        except BrokerUnavailable as exc:
            log.error("task %s: %s", task_id, exc)
            self.store.finish(task_id, TaskState.LOST, time.time(), attempt=attempt,
                              error=f"TaskLost: attempt {attempt} could not be queued: {exc}")

    def retry_lost(self, record: TaskRecord, error: str) -> bool:
        """The store's ``lost_handler``: a running task whose worker is gone runs again if
        its policy allows (True), else the store records it lost."""
        policy = self.policy(record.task_id)
        if policy.next_attempt(TaskState.LOST, record.attempt, error) is None:
            return False
        return self.end_or_retry(record.task_id, record.attempt, TaskState.LOST, error, policy)

    def attempt_died(self, task_id: str, attempt: int, cause: BaseException, pid: Any) -> None:
        """The pool process running attempt ``attempt`` is gone (``cause`` says how): end
        it as the watchdog would have, or as lost, unless it recorded its end itself."""
        record = self.store.get(task_id)
        if record is None or record.state is not TaskState.RUNNING or record.attempt != attempt:
            return  # it ended, or its watchdog ended it, before the process went
        policy = self.policy(task_id)
        if _is_time_limit(cause):
            state, error = TaskState.FAILED, STOPS[StopReason.TIME_LIMIT].error(policy, forced=True)
        elif record.cancel_requested:
            state, error = TaskState.CANCELLED, STOPS[StopReason.CANCEL].error(policy, forced=True)
        else:
            reason = str(cause).split(" Job:")[0] or type(cause).__name__
            state, error = TaskState.LOST, f"TaskLost: its worker process {pid} died ({reason})"
        log.error("task %s: %s", task_id, error)
        self.end_or_retry(task_id, attempt, state, error, policy)


def _is_time_limit(cause: BaseException) -> bool:
    from billiard.exceptions import TimeLimitExceeded

    return isinstance(cause, TimeLimitExceeded)


def attempt_request_class() -> type:
    """Celery's Request with a failure hook that runs in the worker's main process."""
    from billiard.exceptions import TimeLimitExceeded, WorkerLostError
    from celery.worker.request import Request
    from celery.worker.state import task_ready

    from ladon_tasks.executors import celery_worker

    forced_exit = f"exitcode {celery_worker.EXIT_FORCED} "

    class AttemptRequest(Request):
        """A ``ladon_tasks.run`` request: when its pool process dies or is killed at the
        hard time limit, the task's record is ended (or the task queued again) at once."""

        def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
            cause = getattr(exc_info.exception, "exc", exc_info.exception)
            if not isinstance(cause, (WorkerLostError, TimeLimitExceeded, SystemExit)):
                return super().on_failure(exc_info, send_failed_event, return_ok)
            self._record_death(cause)
            if isinstance(cause, WorkerLostError) and forced_exit in str(cause):
                # Its watchdog recorded the task's end, then ended the process, as meant:
                # no error for Celery to log.
                log.info("task %s: its worker process %s was ended as its task would not stop",
                         self.args[0], self.worker_pid)
                task_ready(self)
                return self.acknowledge()
            return super().on_failure(exc_info, send_failed_event, return_ok)

        def _record_death(self, cause: BaseException) -> None:
            task_id, attempt = self.args[0], int(self.args[1])
            try:
                celery_worker.recovery().attempt_died(task_id, attempt, cause, self.worker_pid)
            except StoreUnavailable as exc:
                # Its owner key lapses and its heartbeats have stopped: the first reader
                # once Redis is back finds it lost (or runs it again).
                log.warning("task %s: cannot record the end of its dead worker yet: %s", task_id, exc)
            except Exception:
                log.exception("task %s: recording the end of its dead worker failed", task_id)

    return AttemptRequest
