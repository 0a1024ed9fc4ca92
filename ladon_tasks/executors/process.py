"""Multiprocessing mode: tasks run in a bounded pool of worker processes per server process.

The pool is made at the first task with the ``forkserver`` start method, so no worker is
ever forked from the threaded web server. ``multiprocessing.Pool`` replaces a worker that
dies; the task it was running is then reported lost by its stale heartbeat.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from multiprocessing.pool import Pool
from typing import Any

from multiprocessing_logging import MultiProcessingHandler

from ladon_tasks.config import TaskConfig
from ladon_tasks.exceptions import ShuttingDown, StoreUnavailable
from ladon_tasks.executors import worker
from ladon_tasks.executors.base import Executor
from ladon_tasks.stores.redis import RedisStore

log = logging.getLogger(__name__)


class _Redispatch(logging.Handler):
    """Hands a record received from a worker to the server's own logger tree."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


class ProcessExecutor(Executor):
    """``processes`` worker processes fed through a pipe; task state goes through Redis."""

    def __init__(self, store: RedisStore, config: TaskConfig, start_method: str = "forkserver") -> None:
        self.store = store
        self.config = config
        self.start_method = start_method
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{id(self):x}"
        self._pool: Pool | None = None
        self._pool_pid = -1
        self._log_handler: MultiProcessingHandler | None = None
        self._pending: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._closed = False

    def _get_pool_unlocked(self) -> Pool:
        if self._pool is None or self._pool_pid != os.getpid():
            self._start_pool()
        assert self._pool is not None
        return self._pool

    def _start_pool(self) -> None:
        context = multiprocessing.get_context(self.start_method)
        self._log_handler = MultiProcessingHandler("ladon-tasks-workers", sub_handler=_Redispatch())
        # multiprocessing-logging makes its queue in the default (fork) context, which a
        # forkserver child cannot receive; its receiving thread reads ``queue`` afresh on
        # every turn, so a queue of our context takes over before any worker exists.
        self._log_handler.queue = context.Queue(-1)
        settings = worker.WorkerSettings(
            config=self.config,
            sys_path=list(sys.path),
            log_level=logging.getLogger().getEffectiveLevel(),
            server_pid=os.getpid(),
        )
        self._pool = context.Pool(
            self.config.processes,
            initializer=worker.init_worker,
            initargs=(settings, self._log_handler.queue),
        )
        self._pool_pid = os.getpid()
        self._stop.clear()
        self._beat = threading.Thread(target=self._beat_forever, name="ladon-tasks-owner", daemon=True)
        self._beat.start()

    def _beat_forever(self) -> None:
        """Keep this process's owner key alive, so queued tasks are not reported lost."""
        while True:
            try:
                self.store.register_owner(self.owner, self.config.lost_after)
            except StoreUnavailable as exc:
                log.warning("owner heartbeat not written: %s", exc)
            if self._stop.wait(self.config.heartbeat_interval):
                return

    def prepare(self) -> None:
        """Start the pool and register the owner key before the first task is recorded."""
        if self._pool is not None and self._pool_pid == os.getpid():
            return
        with self._lock:
            self._get_pool_unlocked()
        self.store.register_owner(self.owner, self.config.lost_after)

    def submit(self, task_id: str, job: dict) -> None:
        job = dict(job, task_id=task_id)

        # Called from the pool's result thread when the worker answers. A killed worker
        # never answers: its task is found lost by its heartbeat instead.
        def forget(_: object) -> None:
            with self._lock:
                self._pending.pop(task_id, None)

        with self._lock:
            if self._closed:
                raise ShuttingDown("the worker pool is stopping and takes no new task")
            self._pending[task_id] = self._get_pool_unlocked().apply_async(
                worker.run_job, (job,), callback=forget, error_callback=forget)

    def shutdown(self, grace_period: float) -> list[str]:
        with self._lock:
            self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return []
        pool.close()
        deadline = time.monotonic() + grace_period
        with self._lock:
            pending = {task_id: result for task_id, result in self._pending.items()
                       if not self._ended(task_id)}
        for result in pending.values():
            result.wait(max(0.0, deadline - time.monotonic()))
        unfinished = [task_id for task_id, result in pending.items() if not result.ready()]
        pool.terminate()
        pool.join()
        self._stop.set()
        if self._log_handler is not None:
            self._log_handler.close()
        return unfinished

    def _ended(self, task_id: str) -> bool:
        """True if the store says the task has ended (a killed worker's task, found lost)."""
        try:
            record = self.store.get(task_id)
        except StoreUnavailable:
            return False
        return record is None or record.state.done
