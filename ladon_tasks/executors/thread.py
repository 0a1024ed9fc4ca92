"""Thread mode: tasks run on a bounded pool of threads in the server process."""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future, wait
from typing import Any, Callable

from ladon_tasks.exceptions import ShuttingDown
from ladon_tasks.executors.base import Executor
from ladon_tasks.runner import run_task
from ladon_tasks.stores.base import TaskStore


class ThreadExecutor(Executor):
    """Up to ``threads`` worker threads, started as tasks come; the rest wait queued.

    Daemon threads: Python joins every other thread when it exits, so a stopping server
    would otherwise wait for its longest task, whatever the grace period.
    A job is a callable ``job(update_progress) -> result``.
    """

    def __init__(self, store: TaskStore, threads: int, *, debug: bool = False) -> None:
        self.store = store
        self.threads = threads
        self.debug = debug
        self.owner = f"{os.uname().nodename}:{os.getpid()}"
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        #: Tasks submitted and not yet ended (queued or running), by id.
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, task_id: str, job: Callable[..., Any]) -> None:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise ShuttingDown("the task threads are stopping and take no new task")
            self._pending[task_id] = future
            self._queue.put((task_id, job, future))
            # One thread per unfinished task, up to the bound: a worker is never idle
            # while a task waits, and never more threads than tasks.
            if len(self._workers) < min(self.threads, len(self._pending)):
                worker = threading.Thread(
                    target=self._work, name=f"ladon-task-{len(self._workers)}", daemon=True)
                self._workers.append(worker)
                worker.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            task_id, job, future = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(run_task(self.store, task_id, self.owner, job, debug=self.debug))
                except BaseException as exc:  # run_task records a task's own errors
                    future.set_exception(exc)
            with self._lock:
                self._pending.pop(task_id, None)

    def shutdown(self, grace_period: float) -> list[str]:
        with self._lock:
            self._closed = True
            pending = dict(self._pending)
            workers, self._workers = self._workers, []
        for future in pending.values():
            future.cancel()  # only queued tasks can be; running ones get the grace period
        for _ in workers:
            self._queue.put(None)
        wait(list(pending.values()), timeout=grace_period)
        return [task_id for task_id, future in pending.items() if not future.done() or future.cancelled()]
