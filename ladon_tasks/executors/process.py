"""Multiprocessing mode: tasks run in a bounded set of worker processes per server process.

The pool is a small supervisor of our own rather than ``multiprocessing.Pool``, which
shares one job queue and its lock among all workers: a worker killed while it holds that
lock stalls every sibling, and ``Pool.terminate`` can hang once the process group got a
SIGTERM. Here every worker has its own pipe and runs one task at a time; the server
process knows which worker runs which task, so it can kill one (a cancel or a limit
past its grace period) or lose one (SIGKILL, OOM) and replace it without touching the
others. A start sends the task straight down an idle worker's pipe (or queues it in
memory): no thread is woken for it. Workers are started with ``forkserver``, so none is
ever forked from the threaded web server.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import sys
import time
import weakref
from dataclasses import replace
from multiprocessing import connection
from typing import Any

from multiprocessing_logging import MultiProcessingHandler

from ladon_tasks.config import TaskConfig
from ladon_tasks.exceptions import StoreUnavailable
from ladon_tasks.executors import worker
from ladon_tasks.executors.owner import OwnerRegistration
from ladon_tasks.executors.pool import IDLE_TURN, Job, Slot, SlotPool
from ladon_tasks.executors.stored_jobs import runnable_stored, stored_job
from ladon_tasks.options import TaskPolicy
from ladon_tasks.runner import Outcome
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskRecord, TaskState
from ladon_tasks.watchdog import BEAT, CONTROL_SIZE, RUNNING, STOP, Control, StopReason, monotonic_ms

log = logging.getLogger(__name__)

#: Seconds to wait for a worker process to exit after it was told to, or killed.
EXIT_WAIT = 5.0


class _Redispatch(logging.Handler):
    """Hands a record received from a worker to the server's own logger tree."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


class WorkerSlot(Slot):
    """A worker process, the parent end of its pipe, and the control it shares."""

    def __init__(self, process: Any, conn: Any, control: Control) -> None:
        super().__init__()
        self.process = process
        self.conn = conn
        self.control = control


class ProcessExecutor(SlotPool):
    """``processes`` worker processes, one pipe each; task state goes through Redis."""

    def __init__(self, store: RedisStore, config: TaskConfig, start_method: str = "forkserver") -> None:
        super().__init__(store, config.processes, config.progress_interval, "worker pool",
                         config.max_queued)
        self.redis_store = store
        self.config = config
        self.start_method = start_method
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{id(self):x}"
        self.idle_turn = min(IDLE_TURN, config.heartbeat_interval)
        self._slots: list[WorkerSlot] = []
        self._pid = -1
        self._context: Any = None
        self._settings: worker.WorkerSettings | None = None
        self._log_handler: MultiProcessingHandler | None = None
        self._wake_read = self._wake_write = -1
        self.registration = OwnerRegistration(store, self.owner, config.lost_after,
                                              config.heartbeat_interval / 2, self._held_records)

    # -- starting ---------------------------------------------------------------------

    def job_to_store(self, job: Any, policy: TaskPolicy) -> Any:
        """The job, kept with the record: any server process may retry the task."""
        return stored_job(job, policy)

    def runnable(self, stored: Any) -> tuple[Any, TaskPolicy] | None:
        return runnable_stored(stored)

    def prepare(self) -> None:
        """Start the workers and register the owner key before the first task is recorded
        (and again before the next one, if the last registration could not be written)."""
        if self._pid == os.getpid():
            if self.registration.failed:
                self.registration.register()
            return
        with self._lock:
            if self._pid != os.getpid():
                self._start()
        self.registration.register()

    def _held_records(self) -> list[TaskRecord]:
        """The record of every task this process holds, as it stands here (to write again)."""
        now = time.time()
        with self._lock:
            waiting = [*self._queue, *self._held, *(job for _, _, job in self._delayed)]
            records = [_as_held(job, TaskState.QUEUED, now) for job in waiting if job.record]
            for slot in self._busy.values():
                job = slot.job
                if job is not None and job.record is not None:
                    running = isinstance(slot, WorkerSlot) and slot.control[RUNNING]
                    records.append(_as_held(job, TaskState.RUNNING if running else TaskState.QUEUED, now))
        return records

    def _start(self) -> None:
        context = multiprocessing.get_context(self.start_method)
        self._context = context
        self._log_handler = MultiProcessingHandler("ladon-tasks-workers", sub_handler=_Redispatch())
        # multiprocessing-logging makes its queue in the default (fork) context, which a
        # forkserver child cannot receive; its receiving thread reads ``queue`` afresh on
        # every turn, so a queue of our context takes over before any worker exists.
        self._log_handler.queue = context.Queue(-1)
        self._settings = worker.WorkerSettings(
            config=self.config,
            sys_path=list(sys.path),
            log_level=logging.getLogger().getEffectiveLevel(),
            server_pid=os.getpid(),
            queue_owner=self.owner,
        )
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._slots, self._idle, self._busy = [], [], {}
        self._pid = os.getpid()
        for _ in range(self.size):
            slot = self._spawn()
            if slot is not None:
                self._idle.append(slot)
        self._ensure_supervisor()
        atexit.register(_kill_at_exit, weakref.ref(self))

    def _spawn(self) -> WorkerSlot | None:
        """Start one worker process (called with the lock held)."""
        context = self._context
        parent_conn, child_conn = context.Pipe(duplex=True)
        control = context.RawArray("q", CONTROL_SIZE)
        process = context.Process(
            target=worker.worker_main, name="ladon-tasks-worker",
            args=(self._settings, child_conn, control, self._log_handler.queue))
        try:
            process.start()
        except Exception:
            log.exception("could not start a worker process")
            parent_conn.close()
            return None
        finally:
            child_conn.close()
        slot = WorkerSlot(process, parent_conn, control)
        self._slots.append(slot)
        return slot

    # -- SlotPool ---------------------------------------------------------------------

    def _new_slot(self) -> Slot | None:
        if self._closed or len(self._slots) >= self.size or self._context is None:
            return None
        return self._spawn()

    def _control(self, slot: Slot) -> Control:
        assert isinstance(slot, WorkerSlot)
        slot.control[STOP] = slot.control[RUNNING] = 0
        return slot.control

    def _hand(self, slot: Slot, job: Job) -> None:
        assert isinstance(slot, WorkerSlot)
        order = worker.WorkOrder(job.task_id, job.payload, job.policy, job.attempt)
        try:
            slot.conn.send(order)
        except OSError:  # the worker died just now: the supervisor replaces it
            self._busy.pop(job.task_id, None)
            slot.job = slot.watch = None
            self._queue.appendleft(job)

    def _wait(self, timeout: float) -> None:
        # A worker's death is seen as the end of its pipe, not by its process sentinel:
        # under forkserver the sentinel is a pipe from the forkserver, which reads as
        # "exited" for every worker once the forkserver itself is gone (a SIGTERM to the
        # process group kills it), while the workers live on.
        with self._lock:
            pipes = {slot.conn: slot for slot in self._slots}
        ready = connection.wait([*pipes, self._wake_read], timeout)
        for item in ready:
            if item == self._wake_read:
                os.read(self._wake_read, 4096)
            elif not self._receive(pipes[item]):
                self._worker_died(pipes[item])

    def _wake(self) -> None:
        if self._wake_write >= 0:
            try:
                os.write(self._wake_write, b"!")
            except BlockingIOError:
                pass  # already awake

    def _on_turn(self, now: float) -> None:
        self._end_unresponsive_workers()
        self.registration.beat(now)

    def _end_unresponsive_workers(self) -> None:
        """Kill a worker whose task runs but which gave no sign of life (its shared beat)
        for ``lost_after``: a C call holding the GIL, a stopped process. Read without
        Redis, so an outage of Redis never makes a live worker look dead."""
        limit = int(self.config.lost_after * 1000)
        now = monotonic_ms()
        with self._lock:
            silent = [slot for slot in self._busy.values() if isinstance(slot, WorkerSlot)
                      and slot.control[RUNNING] and now - slot.control[BEAT] > limit]
        for slot in silent:
            silence = (now - slot.control[BEAT]) / 1000
            log.error("worker process %d gave no sign of life for %.0f s: killing it",
                      slot.process.pid, silence)
            _kill(slot)
            _wait_gone(slot)
            self._worker_died(slot, f"TaskLost: its worker process {slot.process.pid} gave no sign of "
                                    f"life for {silence:.0f} s (lost_after) and was killed")

    # -- what workers report ----------------------------------------------------------

    def _receive(self, slot: WorkerSlot) -> bool:
        """Read what a worker answered; False if its pipe ended (the worker is gone)."""
        try:
            task_id, state, retry_in, unrecorded, paused = slot.conn.recv()
        except (EOFError, OSError):
            return False
        job = slot.job
        if job is not None and job.task_id == task_id:
            self._finished(slot, job, Outcome(None if state is None else TaskState(state), retry_in,
                                              unrecorded, paused))
        return True

    def _worker_died(self, slot: WorkerSlot, cause: str = "") -> None:
        """A worker exited: record its task's end (or a retry) and start another.
        ``cause`` is the recorded error if the pool itself ended the worker."""
        with self._lock:
            if slot not in self._slots:
                return  # handled already, or the pool is stopping
            self._slots.remove(slot)
            watch = slot.watch
            job = self._release(slot)
        slot.process.join(EXIT_WAIT)  # reaps it, and tells its exit code
        slot.conn.close()
        if job is not None and watch is not None and not self._closed:
            if watch.reason is None and self._cancel_asked(job.task_id):
                watch.ask(StopReason.CANCEL, time.monotonic())  # asked, not seen yet: as asked
            if watch.reason is not None:
                self.record_forced_end(job, watch, self.owner)
            else:
                error = cause or (f"TaskLost: its worker process {slot.process.pid} died "
                                  f"({_exit_reason(slot.process.exitcode)})")
                log.error("task %s: %s", job.task_id, error)
                self.end_or_retry(job, TaskState.LOST, error, self.owner)
        with self._lock:
            if not self._closed:
                replacement = self._spawn()
                if replacement is not None:
                    self._idle.append(replacement)
                self._dispatch()

    def _cancel_asked(self, task_id: str) -> bool:
        try:
            return bool(self.store.cancel_requests([task_id]))
        except StoreUnavailable as exc:
            log.warning("task %s: cannot read whether it was cancelled; taken as not: %s", task_id, exc)
            return False

    def _end_by_force(self, slot: Slot) -> None:
        assert isinstance(slot, WorkerSlot)
        log.warning("killing worker process %d", slot.process.pid)
        _kill(slot)
        _wait_gone(slot)
        self._worker_died(slot)

    def worker_pids(self) -> list[int]:
        """The pids of the live worker processes (for tests and operators)."""
        with self._lock:
            return [slot.process.pid for slot in self._slots]

    # -- stopping ---------------------------------------------------------------------

    def shutdown(self, grace_period: float) -> list[str]:
        if self._pid != os.getpid():
            self._closed = True
            return []
        unfinished = self._close(grace_period)
        self._stop_workers()
        self._close_wake_pipe()
        handler, self._log_handler = self._log_handler, None
        if handler is not None:
            handler.close()
            # Freed here, not by a garbage collection that may run inside the resource
            # tracker's own bookkeeping (Python 3.13 warns of a possible semaphore leak).
            handler.queue.close()
            handler.queue.join_thread()
            handler.queue = None
        return unfinished

    def _close_wake_pipe(self) -> None:
        # After the supervisor's last turn: it returns once the pool is closed and idle.
        if self._supervisor is not None:
            self._supervisor.join(timeout=EXIT_WAIT)
        for fd in (self._wake_read, self._wake_write):
            if fd >= 0:
                os.close(fd)
        self._wake_read = self._wake_write = -1

    def _stop_workers(self) -> None:
        with self._lock:
            self._closed = True
            slots, self._slots = list(self._slots), []
            self._idle, self._busy = [], {}
        for slot in slots:
            if slot.job is None:
                try:
                    slot.conn.send(None)
                except OSError:
                    pass
            else:
                _kill(slot)
        for slot in slots:
            if not _wait_gone(slot):
                _kill(slot)
                _wait_gone(slot)
            slot.process.join(0.1)
            slot.conn.close()
        self._wake()


def _as_held(job: Job, state: TaskState, now: float) -> TaskRecord:
    """The record of a task as this process holds it, to write again."""
    assert job.record is not None
    running = state is TaskState.RUNNING
    return replace(job.record, state=state, attempt=job.attempt, progress=0.0, error="",
                   started=now if running else 0.0, heartbeat=now if running else 0.0, touched=0.0)


def _kill(slot: WorkerSlot) -> None:
    """SIGKILL the worker (workers ignore SIGTERM; ``Process.kill`` may think a worker of
    a dead forkserver gone already)."""
    try:
        os.kill(slot.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_gone(slot: WorkerSlot, timeout: float = EXIT_WAIT) -> bool:
    """Wait until the worker's end of its pipe is closed: it has exited."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            if not slot.conn.poll(max(0.0, remaining)):
                return False
            slot.conn.recv()  # an answer sent before it went; read on to the end
        except (EOFError, OSError):
            return True


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _kill_at_exit(executor_ref: weakref.ref) -> None:
    """Workers ignore SIGTERM, so multiprocessing's own exit hook could wait for them."""
    executor = executor_ref()
    if executor is not None and executor._pid == os.getpid() and executor._slots:
        executor._stop_workers()
