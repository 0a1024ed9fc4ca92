"""Celery mode in a web process: a start is a record in Redis and a message to Celery.

No task code runs here, and nothing of a task lives here: a queued task waits in the
broker, a running one in a Celery worker, its state in Redis. So a web process that
stops, restarts or dies loses no task, and any web process on any host answers for any
task. Cancels are read by the worker's watchdog from the record; this process only
writes them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ladon_tasks.config import TaskConfig
from ladon_tasks.exceptions import ShuttingDown, StoreUnavailable
from ladon_tasks.executors.base import Executor
from ladon_tasks.executors.celery_app import MessageSender, make_app
from ladon_tasks.executors.celery_recovery import Recovery
from ladon_tasks.executors.stored_jobs import runnable_stored, stored_job
from ladon_tasks.options import TaskPolicy
from ladon_tasks.store_retry import StoreRetry
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskRecord, TaskState

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("ladon_tasks.celery")


class CeleryExecutor(Executor):
    """Sends every task to the Celery queue ``config.celery_queue``."""

    #: A queued task is held by the broker, not by a web process: no reader ever finds
    #: it lost because a web process went away.
    owner = ""

    def __init__(self, store: RedisStore, config: TaskConfig, app: Celery | None = None) -> None:
        self.store = store
        self.config = config
        self._own_app = app is None
        self.app = make_app(config, app)
        self.sender = MessageSender(self.app, config.celery_queue)
        self.recovery = Recovery(store, self.sender)
        # A reader that finds a task's worker gone may run it again (its retries).
        store.lost_handler = self.recovery.retry_lost
        self._closed = False

    def admit(self) -> None:
        if self._closed:
            raise ShuttingDown("this server process is stopping and accepts no new task")

    def job_to_store(self, job: Any, policy: TaskPolicy) -> Any:
        return stored_job(job, policy)

    def abandon(self, task_id: str, error: str) -> None:
        """Its creation failed, but Redis may have written it with its reply lost: no
        message was sent, so nothing would ever run it. Recorded lost, in the background,
        once Redis takes it (within ``store_retry_for``)."""

        def record_lost() -> None:
            try:
                StoreRetry(self.config.store_retry_for).run(
                    "record it lost", lambda: self.store.finish(task_id, TaskState.LOST, time.time(),
                                                                error=error), task_id)
            except StoreUnavailable:
                pass  # the retry logged it; the record, if any, expires with its live TTL

        threading.Thread(target=record_lost, name="ladon-tasks-abandon", daemon=True).start()

    def runnable(self, stored: Any) -> tuple[Any, TaskPolicy] | None:
        return runnable_stored(stored)

    def submit(self, task_id: str, job: Any, policy: TaskPolicy | None = None,
               record: TaskRecord | None = None, attempt: int = 1) -> None:
        """Send the attempt's message; raises BrokerUnavailable if it is not taken."""
        self.sender.send(task_id, attempt, policy or TaskPolicy())

    def shutdown(self, grace_period: float) -> list[str]:
        """Nothing to wait for: every task lives on in the broker and the workers."""
        self._closed = True
        if self._own_app:
            self.app.close()  # its broker connections; a handed-in app is its owner's
        return []
