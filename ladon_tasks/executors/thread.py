"""Thread mode: tasks run on a bounded pool of threads in the server process."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable

from ladon_tasks.executors.base import Executor
from ladon_tasks.runner import run_task
from ladon_tasks.stores.base import TaskStore


class ThreadExecutor(Executor):
    """A ``ThreadPoolExecutor`` of ``threads`` workers, made at the first task.

    A job is a callable ``job(update_progress) -> result``.
    """

    def __init__(self, store: TaskStore, threads: int, *, debug: bool = False) -> None:
        self.store = store
        self.threads = threads
        self.debug = debug
        self.owner = f"{os.uname().nodename}:{os.getpid()}"
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _get_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="ladon-task")
        return self._pool

    def submit(self, task_id: str, job: Callable[..., Any]) -> None:
        future = self._get_pool().submit(run_task, self.store, task_id, self.owner, job, debug=self.debug)
        self._pending[task_id] = future
        future.add_done_callback(lambda _: self._pending.pop(task_id, None))

    def shutdown(self, grace_period: float) -> list[str]:
        pool, self._pool = self._pool, None
        if pool is None:
            return []
        # Copied first: cancelling queued futures runs their callbacks, which forget them.
        pending = dict(self._pending)
        pool.shutdown(wait=False, cancel_futures=True)
        wait(list(pending.values()), timeout=grace_period)
        return [task_id for task_id, future in pending.items() if not future.done() or future.cancelled()]
