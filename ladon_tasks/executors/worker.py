"""The worker-process side of multiprocessing mode.

A worker reads :class:`WorkOrder` s from its own pipe, one at a time, runs each and
answers ``(task_id, state, retry_in, unrecorded)`` on the same pipe. A job is a JSON-able dict:
``entry`` (``"module:function"``) and ``payload``. The worker imports ``entry`` and calls
it with the payload; it returns the pair ``(call, encode)`` that
:func:`~ladon_tasks.runner.run_task` needs. The engine thus knows nothing of Ladon: the
Ladon glue provides the entry.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ladon_tasks.config import TaskConfig
from ladon_tasks.options import TaskPolicy
from ladon_tasks.progress import get_current_task
from ladon_tasks.runner import Outcome, run_task
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.watchdog import BEAT, Control, monotonic_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process needs from the server process that started it."""

    config: TaskConfig
    sys_path: list[str]
    log_level: int = logging.INFO
    #: The server process; a worker outliving it stops (its task is then found lost).
    server_pid: int = 0
    #: Who holds the server's queued tasks (a task queued again goes back to it).
    queue_owner: str = ""


@dataclass(frozen=True)
class WorkOrder:
    """One attempt of one task, sent to a worker over its pipe."""

    task_id: str
    job: dict
    policy: TaskPolicy
    attempt: int


class TaskIdFilter(logging.Filter):
    """Tags every record logged while a task runs with ``task_id`` and a ``[task …]`` prefix."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = get_current_task()
        record.task_id = task.task_id if task else None
        if task and not getattr(record, "_ladon_tasks_tagged", False):
            record.msg = f"[task {task.task_id}] {record.getMessage()}"
            record.args = None
            record._ladon_tasks_tagged = True
        return True


class QueueSender(logging.Handler):
    """Sends records to the server process's multiprocessing-logging receiver."""

    def __init__(self, queue: Any) -> None:
        super().__init__()
        self.queue = queue

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.args:
                record.msg = record.getMessage()
                record.args = None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            self.queue.put_nowait(record)
        except Exception:
            self.handleError(record)


_store: RedisStore | None = None
_settings: WorkerSettings | None = None


def worker_main(settings: WorkerSettings, conn: Any, control: Control, log_queue: Any) -> None:
    """A worker process: run the orders that come through ``conn`` until it closes."""
    init_worker(settings, log_queue)
    keep_watch(control, settings.server_pid, settings.config.heartbeat_interval)
    while True:
        try:
            order = conn.recv()
        except (EOFError, OSError):
            return  # the server closed our pipe, or is gone
        if order is None:
            return
        outcome = run_order(order, control)
        state = None if outcome.state is None else outcome.state.value
        try:
            conn.send((order.task_id, state, outcome.retry_in, outcome.unrecorded, outcome.paused))
        except (BrokenPipeError, OSError):
            return


def init_worker(settings: WorkerSettings, log_queue: Any) -> None:
    """Paths, logging to the server, and this process's Redis store."""
    global _store, _settings
    # Ctrl-C in a development server, and a SIGTERM to the process group (systemd,
    # timeout), reach every worker too: the server decides when workers stop, and ends
    # them by SIGKILL once its grace period is over.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for entry in settings.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    sender = QueueSender(log_queue)
    sender.addFilter(TaskIdFilter())
    root.addHandler(sender)
    root.setLevel(settings.log_level)
    importlib.import_module("ladon_tasks")
    config = settings.config
    _settings = settings
    _store = RedisStore.from_config(config)


def keep_watch(control: Control, server_pid: int, interval: float) -> None:
    """Every ``interval`` s, from one thread: write this process's sign of life into its
    control, and stop this process once its server process is gone.

    The server reads the sign of life without Redis, so a worker cut off from Redis is
    still seen alive, and one that stopped answering (a C call holding the GIL) is not.
    A worker outliving its server (killed outright, say) would keep its task 'running'
    with fresh heartbeats for ever. ``server_pid`` 0: no server to watch.
    """
    control[BEAT] = monotonic_ms()

    def watch() -> None:
        while True:
            time.sleep(interval)
            control[BEAT] = monotonic_ms()
            if server_pid and not _alive(server_pid):
                log.error("server process %d is gone; worker %d stops", server_pid, os.getpid())
                os._exit(1)

    threading.Thread(target=watch, name="ladon-tasks-watchdog", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        pass
    return True


def resolve_entry(entry: str) -> Callable[[dict], tuple[Callable, Callable]]:
    """Import ``"module:function"``."""
    module_name, _, function_name = entry.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def prepare_job(task_id: str, job: dict) -> tuple[Callable, Callable]:
    """``(call, encode)`` of a job; a job that cannot be prepared (its module does not
    import here, its method is gone) gets a call that raises why, so its task fails."""
    try:
        return resolve_entry(job["entry"])(job["payload"])
    except Exception as exc:
        log.error("task %s cannot be prepared in the worker", task_id, exc_info=True)

        def call(update_progress: Any, exc: Exception = exc) -> Any:
            raise exc

        def encode(value: Any) -> Any:
            return value

        return call, encode


def run_order(order: WorkOrder, control: Control) -> Outcome:
    """Run one attempt of a task in this worker."""
    assert _store is not None and _settings is not None, "init_worker was not called"
    call, encode = prepare_job(order.task_id, order.job)

    # The record names the server process, not this worker: the server answers for the
    # worker's life (it sees the worker die), so a reader finds a task lost only once its
    # server is gone too, never because this worker could not reach Redis for a while.
    config = _settings.config
    return run_task(_store, order.task_id, _settings.queue_owner, call, encode, control=control,
                    policy=order.policy, attempt=order.attempt, queue_owner=_settings.queue_owner,
                    debug=config.debug, retry_for=config.store_retry_for)
