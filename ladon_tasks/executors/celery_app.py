"""Celery mode's link to Celery: the app, the one Celery task, and the messages sent to it.

One Celery task, ``ladon_tasks.run(task_id, attempt)``, runs every task method. Its
message carries the task's id and attempt only: the job (which method, which arguments,
under which policy) and every state live in our Redis record. So a message may be
delivered twice (Celery's Redis transport delivers a message again once its visibility
timeout passes while the task still runs) without harm: only the delivery that moves the
record from ``queued`` to ``running`` runs the task.

The task is acknowledged late (after it ran), so a message taken by a worker that dies
before the task started comes back to the queue; once a task runs, its record, its
owner key and its heartbeats say whether its worker lives (see
:mod:`~ladon_tasks.executors.celery_recovery`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ladon_tasks.config import TaskConfig
from ladon_tasks.exceptions import BrokerUnavailable, ConfigurationError
from ladon_tasks.options import TaskPolicy

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("ladon_tasks.celery")

#: The name of the Celery task that runs every ladon_tasks task.
TASK_NAME = "ladon_tasks.run"
#: Seconds past a task's ``time_limit`` and ``cancel_grace`` at which Celery's own hard
#: time limit kills its pool process: our watchdog ends it first, unless a call holding
#: the GIL keeps the watchdog from running at all.
HARD_LIMIT_MARGIN = 5.0


def broker_url(config: TaskConfig) -> str:
    """The broker of ``config``: ``broker_url``, else the Redis of the task state."""
    url = config.broker_url or config.redis_url
    if not url:
        raise ConfigurationError("celery mode needs a broker: give broker_url= or redis_url=")
    return url


def make_app(config: TaskConfig, app: Celery | None = None) -> Celery:
    """``app`` if given (its settings are left as they are), else a Celery app of our
    own on ``config``'s broker: one message at a time per pool process (no task waits
    behind a long one in a process's prefetch), no result backend (results are ours)."""
    if app is not None:
        return app
    try:
        from celery import Celery
    except ImportError:
        raise ConfigurationError("celery mode needs Celery: pip install 'ladon_tasks[celery]'") from None
    app = Celery("ladon_tasks", broker=broker_url(config), set_as_current=False)
    app.conf.update(
        task_default_queue=config.celery_queue,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


class MessageSender:
    """Sends ``ladon_tasks.run`` messages to the task queue."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue

    def send(self, task_id: str, attempt: int, policy: TaskPolicy, countdown: float = 0.0) -> None:
        """Queue attempt ``attempt`` of ``task_id`` to run after ``countdown`` s; raises
        BrokerUnavailable if the broker does not take it."""
        options: dict[str, Any] = {"queue": self.queue}
        if countdown > 0:
            options["countdown"] = countdown
        if policy.time_limit is not None:
            options["time_limit"] = policy.time_limit + policy.cancel_grace + HARD_LIMIT_MARGIN
        try:
            self.app.send_task(TASK_NAME, args=(task_id, attempt), **options)
        except Exception as exc:  # kombu's OperationalError, a refused connection, a timeout
            raise BrokerUnavailable(
                f"the Celery broker cannot be reached, so task {task_id} could not be queued: "
                f"{type(exc).__name__}: {exc}") from exc
