"""Thread mode: tasks run on a bounded pool of threads in the server process."""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any, Callable

from ladon_tasks.config import TaskConfig
from ladon_tasks.executors.pool import Job, Slot, SlotPool
from ladon_tasks.executors.stored_jobs import KeptCall
from ladon_tasks.options import TaskPolicy
from ladon_tasks.progress import UpdateProgress
from ladon_tasks.runner import NOT_RUN, run_task
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.watchdog import Control, new_control

log = logging.getLogger(__name__)


class ThreadSlot(Slot):
    """A worker thread with its own inbox."""

    def __init__(self) -> None:
        super().__init__()
        self.inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.control: Control = new_control()
        #: Ended by force: its thread runs on until the task returns, then exits.
        self.abandoned = False


class ThreadExecutor(SlotPool):
    """Up to ``threads`` worker threads, started as tasks come; the rest wait queued.

    A job is a callable ``job(update_progress) -> result``. A thread cannot be killed, so
    a task ended by force (it ignored a cancel or a limit for ``cancel_grace``) has its
    record ended and its late result discarded, and its thread is *abandoned*: it runs on
    until the task returns, and a new thread takes its slot. At most ``threads`` threads
    are abandoned at once; past that, an abandoned thread keeps its slot until it returns.
    Daemon threads: Python joins every other thread when it exits, so a stopping server
    would otherwise wait for its longest task, whatever the grace period.

    A job may offer ``job.last_call``, the same call for the task's last attempt that
    keeps no reference to the task's arguments once the task runs (a task that drops
    them frees them): it is called instead when no retry can follow.
    """

    def __init__(self, store: TaskStore, threads: int, *, debug: bool = False, turn: float = 0.1,
                 max_queued: int = TaskConfig.max_queued) -> None:
        super().__init__(store, threads, turn, "task threads", max_queued)
        self.threads = threads
        self.debug = debug
        self.owner = f"{os.uname().nodename}:{os.getpid()}"
        self._slots: list[ThreadSlot] = []
        self._abandoned = 0
        self._started = 0
        self._wakeup = threading.Event()

    def job_to_store(self, job: Any, policy: TaskPolicy) -> Any:
        """The call itself, if it keeps its arguments (see ``keeps_arguments`` of
        :class:`~ladon_tasks.ladon_glue.calls.TaskCall`), so that the task can be retried."""
        return KeptCall(job, policy) if getattr(job, "keeps_arguments", False) else None

    def runnable(self, stored: Any) -> tuple[Any, TaskPolicy] | None:
        return (stored.call, stored.policy) if isinstance(stored, KeptCall) else None

    @property
    def abandoned_threads(self) -> int:
        """Threads still running a task that was ended by force."""
        return self._abandoned

    def _new_slot(self) -> Slot | None:
        over_allowance = max(0, self._abandoned - self.threads)
        if len(self._slots) + over_allowance >= self.threads:
            return None
        slot = ThreadSlot()
        self._slots.append(slot)
        thread = threading.Thread(target=self._work, args=(slot,), daemon=True,
                                  name=f"ladon-task-{self._started}")
        self._started += 1
        thread.start()
        return slot

    def _control(self, slot: Slot) -> Control:
        assert isinstance(slot, ThreadSlot)
        slot.control = new_control()  # an abandoned thread keeps its own
        return slot.control

    def _hand(self, slot: Slot, job: Job) -> None:
        assert isinstance(slot, ThreadSlot)
        slot.inbox.put(job)

    def _work(self, slot: ThreadSlot) -> None:
        # A job a call: while the thread waits for the next, it holds nothing of the last.
        while self._run_next(slot):
            pass

    def _run_next(self, slot: ThreadSlot) -> bool:
        """Run the next job of ``slot``; False once its thread is to exit."""
        job = slot.inbox.get()
        if job is None:
            return False
        outcome = NOT_RUN
        try:
            outcome = run_task(self.store, job.task_id, self.owner, _attempt_call(job),
                               control=slot.control, policy=job.policy, attempt=job.attempt,
                               debug=self.debug)
        except BaseException:  # run_task records a task's own errors; this is ours
            log.exception("task %s: the task thread failed", job.task_id)
        with self._lock:
            if slot.abandoned:
                self._abandoned -= 1
                log.info("abandoned thread of task %s has returned", job.task_id)
                self._dispatch()
                return False
            self._finished(slot, job, outcome)
        return True

    def _end_by_force(self, slot: Slot) -> None:
        assert isinstance(slot, ThreadSlot)
        with self._lock:
            job, watch = slot.job, slot.watch
            if job is None or watch is None or self._busy.get(job.task_id) is not slot:
                return  # it returned meanwhile
            self._release(slot)
            slot.abandoned = True
            self._slots.remove(slot)
            self._abandoned += 1
            log.warning("task %s: its thread is abandoned (%d abandoned now, at most %d without "
                        "losing a slot)", job.task_id, self._abandoned, self.threads)
        self.record_forced_end(job, watch, self.owner)
        with self._lock:
            self._dispatch()

    def _wait(self, timeout: float) -> None:
        self._wakeup.wait(timeout)
        self._wakeup.clear()

    def _wake(self) -> None:
        self._wakeup.set()

    def shutdown(self, grace_period: float) -> list[str]:
        unfinished = self._close(grace_period)
        with self._lock:
            slots = list(self._slots)
        for slot in slots:
            slot.inbox.put(None)
        self._wake()
        return unfinished


def _attempt_call(job: Job) -> Callable[[UpdateProgress], Any]:
    """What runs this attempt of ``job``: on the task's last attempt, its ``last_call``
    if it has one (see :mod:`ladon_tasks.ladon_glue.calls`)."""
    if job.attempt < job.policy.max_attempts:
        return job.payload
    return getattr(job.payload, "last_call", job.payload)
