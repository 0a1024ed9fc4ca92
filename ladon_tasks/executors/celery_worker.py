"""Celery mode inside a Celery worker: what each pool process does with a message.

:func:`register` declares the one Celery task on an app. Its body,
:func:`run_message`, runs in a pool process (prefork): it reads the task's job from the
record, runs the attempt named in the message if the record still waits for it
(:func:`~ladon_tasks.runner.run_task`, as in process mode), and sends the next attempt's
message if the attempt is to be retried.

Each pool process has one :class:`ProcessRuntime`: its Redis store, its owner key
(``host:pid:celery``, renewed while it runs a task, so that readers know it lives) and a
watchdog thread that enforces cancel, ``time_limit`` and ``max_silence`` as process
mode's supervisor does. A task that does not stop within ``cancel_grace`` has its end
recorded by the watchdog, which then ends its pool process; Celery starts another.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ladon_tasks.config import TaskConfig
from ladon_tasks.exceptions import StoreUnavailable
from ladon_tasks.executors.celery_app import TASK_NAME, MessageSender
from ladon_tasks.executors.celery_recovery import Recovery, attempt_request_class
from ladon_tasks.executors.stored_jobs import policy_of
from ladon_tasks.executors.worker import TaskIdFilter, prepare_job
from ladon_tasks.options import TaskPolicy
from ladon_tasks.runner import run_task
from ladon_tasks.store_retry import StoreRetry
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskRecord, TaskState
from ladon_tasks.watchdog import Verdict, Watch, new_control

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("ladon_tasks.celery")

#: Seconds until a message whose method is paused is delivered again.
PAUSED_RESEND = 2.0

#: The exit status of a pool process ended because its task would not stop.
EXIT_FORCED = 70

_config: TaskConfig | None = None
_app: Celery | None = None
_runtimes: dict[int, ProcessRuntime] = {}
_runtimes_lock = threading.Lock()


def register(app: Celery, config: TaskConfig) -> Any:
    """Declare ``ladon_tasks.run`` on ``app``, to run tasks under ``config`` (its Redis,
    its timings); returns the Celery task."""
    global _config, _app
    _config, _app = config, app
    options = dict(name=TASK_NAME, acks_late=True, reject_on_worker_lost=False,
                   acks_on_failure_or_timeout=True, ignore_result=True, typing=False,
                   Request=attempt_request_class())
    return app.task(**options)(run_message)


def run_message(task_id: str, attempt: int) -> None:
    """The body of ``ladon_tasks.run``: run attempt ``attempt`` of task ``task_id``."""
    runtime().run(str(task_id), int(attempt))


def runtime() -> ProcessRuntime:
    """This process's runtime, made at first use (after the fork that made the process)."""
    pid = os.getpid()
    found = _runtimes.get(pid)
    if found is None:
        if _config is None or _app is None:
            raise RuntimeError("ladon_tasks.executors.celery_worker.register() was not called")
        with _runtimes_lock:
            found = _runtimes.get(pid) or ProcessRuntime(_config, _app)
            _runtimes[pid] = found
    return found


def recovery() -> Recovery:
    """The recovery of this process (the worker's main process uses it for dead children)."""
    return runtime().recovery


@dataclass
class _Attempt:
    """The attempt a pool process runs now."""

    task_id: str
    attempt: int
    policy: TaskPolicy
    watch: Watch


class ProcessRuntime:
    """The ladon_tasks side of one Celery process: store, owner key, watchdog."""

    def __init__(self, config: TaskConfig, app: Celery) -> None:
        self.config = config
        self.store = RedisStore.from_config(config)
        self.sender = MessageSender(app, config.celery_queue)
        self.recovery = Recovery(self.store, self.sender)
        self.store.lost_handler = self.recovery.retry_lost
        self.owner = f"{os.uname().nodename}:{os.getpid()}:celery"
        self._current: _Attempt | None = None
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._registered_at = -float("inf")
        #: Ends the store would not take when the attempt ended: (task_id, attempt, error).
        self._pending: list[tuple[str, int, str]] = []
        self._pending_lock = threading.Lock()
        for handler in logging.getLogger().handlers:
            handler.addFilter(TaskIdFilter())

    # -- one message ------------------------------------------------------------------

    def run(self, task_id: str, attempt: int) -> None:
        try:
            record, job = StoreRetry(self.config.store_retry_for).run(
                "read it", lambda: self.store.get_with_job(task_id), task_id)
        except StoreUnavailable as exc:
            from celery.exceptions import Reject

            # Back to the queue, for a worker that can read Redis again.
            raise Reject(f"task {task_id}: {exc}", requeue=True) from None
        if not self._waits_for(task_id, record, attempt):
            return
        if job is None:
            log.warning("task %s has no job in its record (dismissed just now?); not run", task_id)
            return
        policy = policy_of(job) or TaskPolicy()
        self._register()
        call, encode = prepare_job(task_id, job)
        control = new_control()
        self._current = _Attempt(task_id, attempt, policy, Watch(policy, control, time.monotonic()))
        self._ensure_watchdog()
        try:
            outcome = run_task(self.store, task_id, self.owner, call, encode, control=control,
                               policy=policy, attempt=attempt, queue_owner="",
                               debug=self.config.debug, retry_for=self.config.store_retry_for)
        finally:
            self._current = None
        if outcome.unrecorded:
            with self._pending_lock:
                self._pending.append((task_id, attempt, f"TaskLost: {outcome.unrecorded}"))
        elif outcome.retry_in is not None:
            self.recovery.send_or_end(task_id, attempt + 1, policy, outcome.retry_in)
        elif outcome.paused:  # queued still: its message comes back until the pause ends
            self.recovery.send_or_end(task_id, attempt, policy, PAUSED_RESEND)

    def _waits_for(self, task_id: str, record: TaskRecord | None, attempt: int) -> bool:
        """True if the record is queued for this very attempt; else nothing is run."""
        if record is None:
            log.info("task %s is gone (expired or dismissed); not run", task_id)
            return False
        if record.state is TaskState.QUEUED and record.attempt == attempt:
            return True
        if record.state is TaskState.QUEUED and record.attempt > attempt:
            # The message of an earlier attempt came back (its worker died): the message
            # of the attempt now queued may have died with it. Sent again; a duplicate
            # runs nothing.
            log.info("task %s: a message of attempt %d came back; attempt %d is queued: "
                     "sending it again", record.task_id, attempt, record.attempt)
            self.recovery.send_or_end(task_id, record.attempt, self.recovery.policy(task_id), 0.0)
            return False
        log.info("task %s is %s (attempt %d): a message for attempt %d runs nothing",
                 record.task_id, record.state.value, record.attempt, attempt)
        return False

    # -- the owner key and the watchdog -----------------------------------------------

    def _register(self) -> None:
        """Renew this process's owner key if it is due (every half heartbeat_interval,
        well within its TTL of lost_after)."""
        now = time.monotonic()
        if now - self._registered_at < self.config.heartbeat_interval / 2:
            return
        try:
            self.store.register_owner(self.owner, self.config.lost_after)
            self._registered_at = now
        except StoreUnavailable:
            pass  # the store logged the outage; the next turn tries again

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=self._watch_forever,
                                              name="ladon-tasks-watchdog", daemon=True)
            self._watchdog.start()

    def _watch_forever(self) -> None:
        # One pace, busy or idle: a task that starts is looked at within a turn, so its
        # limits count from its start (an idle turn costs next to nothing).
        while not self._stop.wait(self.config.progress_interval):
            try:
                self._turn()
            except Exception:  # never let one bad turn stop the watchdog
                log.exception("watchdog turn failed")

    def _turn(self) -> None:
        if self._pending:
            self._write_pending()
        current = self._current
        if current is None:
            return
        self._register()
        try:
            cancelled = bool(self.store.cancel_requests([current.task_id]))
        except StoreUnavailable:
            cancelled = False
        if current is not self._current:
            return  # ended meanwhile
        if current.watch.check(time.monotonic(), cancelled) is Verdict.KILL:
            self._end_by_force(current)

    def _end_by_force(self, current: _Attempt) -> None:
        """Record the end of a task that did not stop within cancel_grace, then end this
        process: a thread cannot be stopped, and Celery replaces a pool process that exits."""
        state, error = current.watch.forced_end()
        log.warning("task %s did not stop within %g s: ending its worker process %d",
                    current.task_id, current.policy.cancel_grace, os.getpid())
        try:
            self.recovery.end_or_retry(current.task_id, current.attempt, state, error, current.policy)
        except StoreUnavailable as exc:  # the main process records it when this one is gone
            log.warning("task %s: cannot record its end yet: %s", current.task_id, exc)
        logging.shutdown()
        os._exit(EXIT_FORCED)

    def _write_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for index, (task_id, attempt, error) in enumerate(pending):
            try:
                self.store.finish(task_id, TaskState.LOST, time.time(), error=error, attempt=attempt)
            except StoreUnavailable:
                with self._pending_lock:
                    self._pending[:0] = pending[index:]
                return
            log.info("task %s: its end (%s) is recorded now", task_id, error)

