"""The task engine: records a task, hands it to an executor, answers status and result.

It knows nothing of Ladon or WSGI. One engine serves one application; each mode has its
own store and executor, made at first use so that building an engine opens no socket
and starts no thread.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from typing import Any

from ladon_tasks.config import CELERY_MODE, THREAD_MODE, TaskConfig
from ladon_tasks.constants import KEPT_ARGUMENTS_BYTES
from ladon_tasks.estimate import Estimate, estimate
from ladon_tasks.exceptions import (
    BrokerUnavailable,
    ConfigurationError,
    NotRetryable,
    ResultNotReady,
    ShuttingDown,
    StoreUnavailable,
    TaskCancelled,
    TaskDismissed,
    TaskExpired,
    TaskFailed,
    TaskLost,
    TaskNotFound,
)
from ladon_tasks.executors.base import Executor
from ladon_tasks.ids import new_task_id, validate_task_id
from ladon_tasks.options import TaskOptions, TaskPolicy
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.task import ANY_CALLER, RETRYABLE, Gone, TaskRecord, TaskState, visible_to

#: What :meth:`TaskEngine.result` raises for a task that ended without a result.
_NO_RESULT: dict[TaskState, type[TaskFailed] | type[TaskCancelled]] = {
    TaskState.FAILED: TaskFailed,
    TaskState.LOST: TaskLost,
    TaskState.CANCELLED: TaskCancelled,
}

log = logging.getLogger(__name__)

#: ``max_waiters`` where the WSGI server's thread count is not known.
DEFAULT_MAX_WAITERS = 8


class TaskEngine:
    """Starts tasks and reads their state, in thread, process or celery mode.

    ``celery_app`` is an existing ``celery.Celery`` app to send celery-mode tasks with
    (default: one of our own on ``broker_url``)."""

    def __init__(self, config: TaskConfig | None = None, celery_app: Any = None) -> None:
        self.config = config or TaskConfig()
        self.celery_app = celery_app
        self._stores: dict[tuple[str, str | None], TaskStore] = {}
        #: (mode, redis_url) as asked -> its store, once made: the lookup of every poll.
        self._stores_asked: dict[tuple[str | None, str | None], TaskStore] = {}
        self._executors: dict[tuple[str, str | None], Executor] = {}
        self._lock = threading.Lock()
        self._stopping = False
        #: Free places for ``wait`` calls; made at the first one (it may learn the server's threads).
        self._waiters: threading.BoundedSemaphore | None = None
        self.max_waiters = 0
        #: The request threads of the WSGI server process, where the application knows them.
        self.server_threads: int | None = None

    # -- parts, made at first use -----------------------------------------------------

    def _route(self, mode: str | None, redis_url: str | None) -> tuple[str, str | None]:
        mode = mode or self.config.mode
        if mode == THREAD_MODE:
            return (THREAD_MODE, None)
        url = redis_url or self.config.redis_url
        if not url:
            raise ConfigurationError(
                f"a {mode}-mode task needs Redis: give redis_url= to the application, "
                "--redis-url to ladon-tasks serve, or LADON_TASKS_REDIS_URL"
            )
        return (mode, url)

    def store(self, mode: str | None = None, redis_url: str | None = None) -> TaskStore:
        """The store of ``mode`` (the configured mode if None)."""
        known = self._stores_asked.get((mode, redis_url))
        if known is not None:
            return known
        route = self._route(mode, redis_url)
        store = self._stores.get(route)
        if store is None:
            with self._lock:
                store = self._stores.get(route) or self._make_store(route)
                self._stores[route] = store
            if route[0] == CELERY_MODE:
                # Its executor gives the store its lost_handler: a process that only reads
                # tasks runs a task of a dead worker again, as one that started it would.
                self.executor(*route)
        self._stores_asked[(mode, redis_url)] = store
        return store

    def executor(self, mode: str | None = None, redis_url: str | None = None) -> Executor:
        """The executor of ``mode`` (the configured mode if None)."""
        route = self._route(mode, redis_url)
        executor = self._executors.get(route)
        if executor is None:
            store = self.store(*route)
            with self._lock:
                executor = self._executors.get(route) or self._make_executor(route, store)
                self._executors[route] = executor
        return executor

    def _make_store(self, route: tuple[str, str | None]) -> TaskStore:
        config = self.config
        if route[0] == THREAD_MODE:
            from ladon_tasks.stores.memory import MemoryStore

            return MemoryStore(result_ttl=config.result_ttl, tombstone_ttl=config.tombstone_ttl,
                               max_result_bytes=config.max_result_bytes)
        from ladon_tasks.stores.redis import RedisStore

        return RedisStore.from_config(config, route[1])

    def _make_executor(self, route: tuple[str, str | None], store: TaskStore) -> Executor:
        if route[0] == THREAD_MODE:
            from ladon_tasks.executors.thread import ThreadExecutor

            return ThreadExecutor(store, self.config.threads, debug=self.config.debug,
                                  turn=self.config.progress_interval,
                                  max_queued=self.config.max_queued)
        from ladon_tasks.stores.redis import RedisStore

        assert isinstance(store, RedisStore)
        config = self.config if route[1] == self.config.redis_url else self.config.with_options(
            redis_url=route[1])
        if route[0] == CELERY_MODE:
            from ladon_tasks.executors.celery_executor import CeleryExecutor

            return CeleryExecutor(store, config, self.celery_app)
        from ladon_tasks.executors.process import ProcessExecutor

        return ProcessExecutor(store, config)

    # -- tasks ------------------------------------------------------------------------

    def start(self, method: str, job: Any, mode: str | None = None, redis_url: str | None = None,
              policy: TaskPolicy | None = None, caller: str | None = None,
              unique: str | None = None) -> str:
        """Record a new queued task and submit ``job`` to run under ``policy``; return its id.
        A task started with a ``caller`` (an identity) is bound to it: see :meth:`status`.
        With ``unique`` (a key of the method, arguments and caller), a task of that key
        still queued or running is answered instead, and nothing is started.

        Thread mode takes a callable ``job(update_progress)``; process and celery mode a
        worker job dict (see :mod:`ladon_tasks.executors.worker`). ``policy`` defaults to the
        application's limits and retries. Raises QueueFull, or StoreUnavailable if the
        store cannot be written, with nothing recorded.
        """
        if self._stopping:
            raise ShuttingDown("this server process is stopping and accepts no new task")
        policy = policy or self.default_policy
        executor = self.executor(mode, redis_url)
        store = self.store(mode, redis_url)
        executor.prepare()
        record = TaskRecord(task_id=new_task_id(), method=method, created=time.time(),
                            owner=executor.owner, max_silence=policy.max_silence or 0.0,
                            caller=caller or "")
        executor.admit()  # QueueFull before anything is recorded
        try:
            holder = store.create(record, executor.job_to_store(job, policy), unique)
        except BaseException as error:
            executor.unadmit()
            if isinstance(error, StoreUnavailable):
                # Redis may have written it and gone before answering: end such a record,
                # so that no queued task is left that nobody will run.
                executor.abandon(record.task_id, "TaskLost: the store went away as the task was "
                                                 "started, and the start was refused (StoreUnavailable)")
            raise
        if holder != record.task_id:  # the unique task that runs already
            executor.unadmit()
            return holder
        _submit_or_end_lost(executor, store, record, job, policy)
        return record.task_id

    @cached_property
    def default_policy(self) -> TaskPolicy:
        """The application's limits and retries, for tasks that set none of their own."""
        return TaskOptions().policy(self.config)

    def status(self, task_id: str, mode: str | None = None, redis_url: str | None = None,
               caller: str | None = None) -> TaskRecord:
        """The task's record; raises InvalidTaskId, TaskNotFound, TaskExpired or TaskDismissed.

        A task bound to a caller is seen by that caller only: for any other (or none) its
        id is unknown, with the very error of an id never issued, before and after it is gone.
        """
        task_id = validate_task_id(task_id)
        store = self.store(mode, redis_url)
        record = store.get(task_id)
        if record is None or (record.caller and record.caller != caller and caller is not ANY_CALLER):
            raise self._gone(store, task_id, caller, record is None)
        return record

    def _gone(self, store: TaskStore, task_id: str, caller: str | None = None,
              ask: bool = True) -> TaskNotFound:
        """The error for an id without a record (or with one ``caller`` may not see):
        expired, dismissed, or never seen."""
        found = store.gone(task_id) if ask else None
        why = found[0] if found is not None and visible_to(found[1], caller) else None
        if why is Gone.EXPIRED:
            return TaskExpired(f"task {task_id} ended more than {self.config.result_ttl:g} s ago "
                               "(result_ttl) and its record and result have expired")
        if why is Gone.DISMISSED:
            return TaskDismissed(f"task {task_id} was dismissed: its record and result are gone")
        return TaskNotFound(
            f"no task {task_id}: it was never started here, or it ended so long ago that even "
            f"its tombstone ({self.config.tombstone_ttl:g} s after its record) has expired"
        )

    def result(self, task_id: str, mode: str | None = None, redis_url: str | None = None,
               caller: str | None = None) -> Any:
        """The stored result of a succeeded task (encoded form in process mode).

        Raises ResultNotReady, TaskFailed, TaskLost, TaskCancelled, TaskNotFound (or its
        TaskExpired and TaskDismissed) or InvalidTaskId.
        """
        record = self.status(task_id, mode, redis_url, caller)
        if record.state is TaskState.SUCCEEDED:
            return self.store(mode, redis_url).get_result(record.task_id)
        error_type = _NO_RESULT.get(record.state)
        if error_type is not None:
            raise error_type(record.task_id, record.error)
        raise ResultNotReady(
            f"task {record.task_id} is still {record.state.value} "
            f"(progress {record.progress:.0%}): ask for its result when its state is "
            f"'{TaskState.SUCCEEDED.value}'"
        )

    def estimate(self, record: TaskRecord, mode: str | None = None, redis_url: str | None = None) -> Estimate:
        """The task's ETA, its method's typical duration and when to ask again
        (see :mod:`ladon_tasks.estimate`)."""
        expected = self.store(mode, redis_url).expected_duration(record.method)
        return estimate(record, expected, time.time())

    def wait(self, task_id: str, timeout: float, mode: str | None = None,
             redis_url: str | None = None, caller: str | None = None) -> TaskRecord:
        """The task's record as soon as it has ended, or after ``timeout`` s (at most
        ``max_wait``) with it still running. Beyond ``max_waiters`` waits at once in this
        process, the record as it is now. Raises as :meth:`status` (a task dismissed
        while waited for: TaskDismissed). The default ``max_waiters`` is a quarter of
        :attr:`server_threads` if the application knows them, else 8."""
        record = self.status(task_id, mode, redis_url, caller)
        timeout = min(float(timeout), self.config.max_wait) if timeout == timeout else 0.0
        if record.state.done or timeout <= 0:
            return record
        places = self._waiters or self._make_waiters(self.server_threads)
        if not places.acquire(blocking=False):
            return record
        try:
            return self._wait_for_end(record.task_id, time.monotonic() + timeout, mode, redis_url,
                                      caller)
        finally:
            places.release()

    def _make_waiters(self, server_threads: int | None) -> threading.BoundedSemaphore:
        with self._lock:
            if self._waiters is None:
                size = self.config.max_waiters
                if size is None:
                    size = max(1, server_threads // 4) if server_threads else DEFAULT_MAX_WAITERS
                self.max_waiters = size
                self._waiters = threading.BoundedSemaphore(size)
            return self._waiters

    def _wait_for_end(self, task_id: str, deadline: float, mode: str | None,
                      redis_url: str | None, caller: str | None) -> TaskRecord:
        store = self.store(mode, redis_url)
        with store.end_watch(task_id) as ended:
            interval = store.wake_interval()  # subscribed from here on: no end is missed
            while True:
                record = self.status(task_id, mode, redis_url, caller)
                remaining = deadline - time.monotonic()
                if record.state.done or remaining <= 0 or self._stopping:
                    return record
                ended.wait(min(remaining, interval))
                ended.clear()

    def cancel(self, task_id: str, mode: str | None = None, redis_url: str | None = None,
               caller: str | None = None) -> TaskRecord:
        """Cancel a task: a queued one ends ``cancelled`` now, a running one is asked to
        stop (and ended by force after ``cancel_grace``), an ended one is left alone.
        Returns the record as it is now; raises as :meth:`status` for unknown ids."""
        return self._control(task_id, mode, redis_url, "request_cancel", caller)

    def retry(self, task_id: str, mode: str | None = None, redis_url: str | None = None,
              caller: str | None = None) -> TaskRecord:
        """Run a failed, lost or cancelled task again as its next attempt: same id, same
        arguments, same caller. Returns the record, queued. Raises NotRetryable for any
        other state, or a task whose job was not kept; QueueFull, and as :meth:`status`."""
        record = self.status(task_id, mode, redis_url, caller)
        if record.state not in RETRYABLE:
            raise NotRetryable(f"task {record.task_id} is {record.state.value}: only a failed, lost or "
                               "cancelled task can be retried")
        store = self.store(mode, redis_url)
        executor = self.executor(mode, redis_url)
        runnable = executor.runnable(store.get_job(record.task_id))
        if runnable is None:
            raise NotRetryable(f"task {record.task_id} cannot be retried: its arguments were not kept "
                               f"(a thread-mode request over {KEPT_ARGUMENTS_BYTES} bytes gives them "
                               "to its last attempt)")
        job, policy = runnable
        executor.prepare()
        executor.admit()
        try:
            retried = store.retry(record.task_id, record.attempt + 1, executor.owner)
        except BaseException:
            executor.unadmit()
            raise
        if not retried:
            executor.unadmit()
            raise NotRetryable(f"task {record.task_id} changed as it was retried (retried or "
                               "dismissed meanwhile)")
        queued = store.get(record.task_id) or record
        _submit_or_end_lost(executor, store, queued, job, policy, attempt=queued.attempt)
        return queued

    def dismiss(self, task_id: str, mode: str | None = None, redis_url: str | None = None,
                caller: str | None = None) -> TaskRecord:
        """Forget a task and its result, cancelling it first if it has not ended; from now
        on its id answers TaskDismissed. Returns the record as it was when dismissed."""
        return self._control(task_id, mode, redis_url, "dismiss", caller)

    def _control(self, task_id: str, mode: str | None, redis_url: str | None, action: str,
                 caller: str | None) -> TaskRecord:
        self.status(task_id, mode, redis_url, caller)  # a task's caller never changes
        task_id = validate_task_id(task_id)
        store = self.store(mode, redis_url)
        record = getattr(store, action)(task_id, time.time())
        if record is None:
            raise self._gone(store, task_id, caller)
        if record.state is TaskState.RUNNING:
            executor = self._executors.get(self._route(mode, redis_url))
            if executor is not None:
                executor.cancel_running(task_id)  # it may run here: no need to wait for a turn
        return record

    def shutdown(self, grace_period: float | None = None) -> list[str]:
        """Refuse new tasks, give running ones ``grace_period`` s, record the rest lost.

        Returns the ids of the tasks recorded lost.
        """
        self._stopping = True
        for store in list(self._stores.values()):
            store.end_signals.signal_all()  # waiting requests answer now: the server is stopping
        grace = self.config.grace_period if grace_period is None else grace_period
        lost: list[str] = []
        for route, executor in list(self._executors.items()):
            unfinished = executor.shutdown(grace)
            store = self._stores[route]
            for task_id in unfinished:
                try:
                    if store.finish(task_id, TaskState.LOST, time.time(),
                                    error="TaskLost: the server process stopped before the task ended"):
                        lost.append(task_id)
                except Exception:  # the store may be gone too; nothing more to do
                    log.warning("could not record task %s lost", task_id, exc_info=True)
        for store in self._stores.values():
            store.close()
        if lost:
            log.warning("recorded %d unfinished task(s) lost at shutdown", len(lost))
        return lost


def _submit_or_end_lost(executor: Executor, store: TaskStore, record: TaskRecord, job: Any,
                        policy: TaskPolicy, attempt: int = 1) -> None:
    """Submit a queued task's ``attempt`` (1: its start). If nothing will run it (the
    process is stopping, the broker is away), record it lost and raise that: no caller is
    left holding the id of a task that stays queued for ever."""
    try:
        executor.submit(record.task_id, job, policy, record=record, attempt=attempt)
    except (ShuttingDown, BrokerUnavailable) as error:
        why = _STOPPING_AT_START if isinstance(error, ShuttingDown) and attempt == 1 else str(error)
        try:
            store.finish(record.task_id, TaskState.LOST, time.time(), error=f"TaskLost: {why}",
                         attempt=attempt)
        except StoreUnavailable:
            log.warning("task %s: not queued, and cannot be recorded lost either", record.task_id)
        raise


_STOPPING_AT_START = "the server process began stopping as the task was started"
