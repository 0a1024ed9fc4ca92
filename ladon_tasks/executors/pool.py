"""What the thread pool and the process pool share: a queue, slots, retries and a watchdog.

A pool has up to ``size`` *slots*, each a worker (a thread, or a process) that runs one
task at a time. Tasks beyond the free slots wait in the pool's queue; a task queued
again after a failed attempt waits in the pool's list of delayed jobs until its time.
One supervisor thread per pool checks every running task's :class:`Watch` on every
turn: it asks a task to stop (a cancel, a time limit, a silence) and, if the task does
not return within ``cancel_grace``, has the subclass end its slot by force.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from abc import abstractmethod
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from ladon_tasks.config import TaskConfig
from ladon_tasks.exceptions import QueueFull, ShuttingDown, StoreUnavailable
from ladon_tasks.executors.base import Executor
from ladon_tasks.options import TaskPolicy
from ladon_tasks.runner import Outcome, attempts_note
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.task import TaskRecord, TaskState, pause_covers
from ladon_tasks.watchdog import Control, StopReason, Verdict, Watch

log = logging.getLogger(__name__)

#: Seconds between two turns of an idle supervisor (nothing running, nothing delayed).
IDLE_TURN = 1.0
#: Seconds between two looks at the store's pauses while jobs are held by one.
HELD_CHECK = 0.5
#: Ends of abandoned starts kept at most while the store is away.
MAX_PENDING_ENDS = 100_000


@dataclass(frozen=True)
class Job:
    """One attempt of a task, as a pool holds it."""

    task_id: str
    payload: Any
    policy: TaskPolicy
    attempt: int = 1
    #: The record as created, to write again if the store loses it.
    record: TaskRecord | None = None


class Slot:
    """One worker of a pool and the job it runs (None: idle)."""

    def __init__(self) -> None:
        self.job: Job | None = None
        self.watch: Watch | None = None


class SlotPool(Executor):
    """The queue, the slots and the supervisor; subclasses make and feed the workers."""

    def __init__(self, store: TaskStore, size: int, turn: float, name: str,
                 max_queued: int = TaskConfig.max_queued) -> None:
        self.store = store
        self.size = size
        #: Tasks waiting for a slot beyond which :meth:`admit` refuses a new start.
        self.max_queued = max_queued
        #: Starts admitted but not submitted yet (their record is being written).
        self._reserved = 0
        #: Seconds between two supervisor turns while tasks run, and while none does.
        self.turn = turn
        self.idle_turn = IDLE_TURN
        self.name = name
        self._queue: deque[Job] = deque()
        #: Jobs that found their method paused as they were to start: queued still, tried
        #: again once a look at the store's pauses no longer holds them.
        self._held: list[Job] = []
        self._held_checked = 0.0
        self._delayed: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._idle: list[Slot] = []
        self._busy: dict[str, Slot] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        #: Tasks queued again while the pool was stopping: they will not run here.
        self._unrun: list[str] = []
        self._supervisor: threading.Thread | None = None
        #: Ends this pool must record but the store would not take yet (it was away):
        #: tried again on every supervisor turn until it does.
        #: Ends the store would not take yet: ``(job, state, error, final)``; a final one is
        #: recorded as it is, never retried (the task's own end could not be written).
        self._pending_ends: list[tuple[Job, TaskState, str, bool]] = []

    # -- what subclasses provide ------------------------------------------------------

    @abstractmethod
    def _new_slot(self) -> Slot | None:
        """A new worker, or None if the pool is full (called with the lock held)."""

    @abstractmethod
    def _control(self, slot: Slot) -> Control:
        """The control the slot's next task shares with its watch."""

    @abstractmethod
    def _hand(self, slot: Slot, job: Job) -> None:
        """Give ``job`` to the idle worker of ``slot`` (called with the lock held)."""

    @abstractmethod
    def _end_by_force(self, slot: Slot) -> None:
        """Stop the worker of ``slot`` whatever its task does, and replace it."""

    @abstractmethod
    def _wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` s, handling what workers report meanwhile."""

    @abstractmethod
    def _wake(self) -> None:
        """Make the supervisor take a turn now."""

    def _on_turn(self, now: float) -> None:
        """Extra work of each supervisor turn (process mode: the owner key)."""

    # -- the queue --------------------------------------------------------------------

    def admit(self) -> None:
        """Reserve room for one new task, or raise QueueFull (ShuttingDown once stopping).

        Admission counts the tasks that would wait for a slot once every reservation is
        submitted: the queue, plus the reservations the free slots cannot take. Delayed
        retries do not count while they wait for their time: they were admitted once
        already, they hold no place in the queue until then, and counting them would let
        a burst of failures with a long backoff refuse every new start meanwhile. Once due
        they join the queue and count like any waiting task; a retry itself is never
        refused, so the queue may pass ``max_queued`` by the retries that came due.
        """
        with self._lock:
            self._check_open()
            waiting = self._waiting()
            if waiting >= self.max_queued:
                raise QueueFull(
                    f"this server process already holds {waiting} tasks waiting for a slot "
                    f"(max_queued={self.max_queued}): try again later, or raise max_queued")
            self._reserved += 1

    def unadmit(self) -> None:
        """Give back a reservation whose task could not be recorded."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)

    def _check_open(self) -> None:
        """Raise ShuttingDown once the pool is stopping (lock held)."""
        if self._closed:
            raise ShuttingDown(f"the {self.name} is stopping and takes no new task")

    def _waiting(self) -> int:
        """Tasks waiting for a slot once every reservation is submitted (lock held)."""
        return len(self._queue) + len(self._held) + max(0, self._reserved - self._free_slots())

    def _free_slots(self) -> int:
        """Slots a submit made now would find free (lock held): none while tasks wait,
        as every submit, end and turn dispatches the queue as far as the slots go."""
        return 0 if self._queue else max(0, self.size - len(self._busy))

    def submit(self, task_id: str, job: Any, policy: TaskPolicy | None = None,
               record: TaskRecord | None = None, attempt: int = 1) -> None:
        policy = policy or TaskPolicy()
        with self._lock:
            # Takes the reservation of admit(), if any: a submit without one (a retry
            # path, a test) is never refused.
            self._reserved = max(0, self._reserved - 1)
            self._check_open()
            was_quiet = not self._busy and not self._delayed
            self._queue.append(Job(task_id, job, policy, attempt, record))
            self._dispatch()
            self._ensure_supervisor()
        if was_quiet and policy.watched:
            # From its idle sleep to its running pace, so that the limits count from the
            # start. Without limits a start wakes nothing: a cancel made here asks at once.
            self._wake()

    def cancel_running(self, task_id: str) -> None:
        """A cancel was recorded for ``task_id``: if it runs here, ask it to stop now, so
        that its very next ``update_progress`` raises (a cancel made through another
        process is seen at the supervisor's next turn)."""
        with self._lock:
            slot = self._busy.get(task_id)
            if slot is not None and slot.watch is not None:
                slot.watch.ask(StopReason.CANCEL, time.monotonic())

    def _dispatch(self) -> None:
        while self._queue:
            slot = self._idle.pop() if self._idle else self._new_slot()
            if slot is None:
                return
            job = self._queue.popleft()
            slot.job = job
            slot.watch = Watch(job.policy, self._control(slot), time.monotonic())
            self._busy[job.task_id] = slot
            self._hand(slot, job)

    def _finished(self, slot: Slot, job: Job, outcome: Outcome) -> None:
        """A worker ran ``job`` to ``outcome``; ``slot`` is free again."""
        with self._lock:
            if self._busy.get(job.task_id) is not slot:
                return  # ended by force meanwhile: the slot was replaced
            del self._busy[job.task_id]
            slot.job = slot.watch = None
            if outcome.unrecorded:
                # Its run ended (a success, maybe) but the end was not written: recorded lost,
                # as docs/failures.rst says, and not run again whatever its retries.
                self._pending_ends.append((job, TaskState.LOST, f"TaskLost: {outcome.unrecorded}", True))
            if outcome.retry_in is not None:
                self._delay(replace(job, attempt=job.attempt + 1), outcome.retry_in)
            if outcome.paused:
                self._held.append(job)
            self._idle.append(slot)
            self._dispatch()
            self._changed.notify_all()

    def _release(self, slot: Slot) -> Job | None:
        """Take ``slot`` out of the pool (its worker is gone); returns the job it ran."""
        job = slot.job
        if job is not None and self._busy.get(job.task_id) is slot:
            del self._busy[job.task_id]
        if slot in self._idle:
            self._idle.remove(slot)
        slot.job = None
        self._changed.notify_all()
        return job

    def _delay(self, job: Job, seconds: float) -> None:
        if self._closed:
            self._unrun.append(job.task_id)  # no retry once stopping: the engine records it
            return
        heapq.heappush(self._delayed, (time.monotonic() + seconds, next(self._order), job))

    # -- the supervisor ---------------------------------------------------------------

    def _ensure_supervisor(self) -> None:
        if self._supervisor is None or not self._supervisor.is_alive():
            self._supervisor = threading.Thread(
                target=self._supervise_forever, name=f"ladon-tasks-{self.name}", daemon=True)
            self._supervisor.start()

    def _supervise_forever(self) -> None:
        while True:
            with self._lock:
                if self._closed and not self._busy:
                    return
                pace = self.turn if self._busy or self._delayed else self.idle_turn
                if self._held:
                    pace = min(pace, HELD_CHECK)
            try:
                self._wait(pace)
                self.supervise(time.monotonic())
            except Exception:  # never let one bad turn stop the watchdog
                if self._closed:
                    return  # its workers were closed under it
                log.exception("%s supervisor turn failed", self.name)

    def supervise(self, now: float) -> None:
        """One turn: start delayed jobs whose time has come, check every running task."""
        with self._lock:
            while self._delayed and self._delayed[0][0] <= now and not self._closed:
                self._queue.append(heapq.heappop(self._delayed)[2])
            self._dispatch()
            running = list(self._busy.items())
        self._on_turn(now)
        if self._held and now - self._held_checked >= HELD_CHECK:
            self._held_checked = now
            self._release_held()
        if self._pending_ends:
            self._record_pending_ends()
        if not running:
            return
        try:
            cancels = self.store.cancel_requests([task_id for task_id, _ in running])
        except StoreUnavailable as exc:  # the store logged the outage once; not every turn
            log.debug("cannot read cancel requests: %s", exc)
            cancels = set()
        for task_id, slot in running:
            watch = slot.watch
            if watch is None or slot.job is None or slot.job.task_id != task_id:
                continue  # ended meanwhile
            if watch.check(now, task_id in cancels) is Verdict.KILL:
                log.warning("task %s did not stop within %g s: ending it by force",
                            task_id, watch.policy.cancel_grace)
                self._end_by_force(slot)

    def _release_held(self) -> None:
        """Queue again the held jobs whose method is paused no more."""
        try:
            paused = self.store.paused()
        except StoreUnavailable as exc:
            log.debug("cannot read the pauses: %s", exc)
            return
        with self._lock:
            held, self._held = self._held, []
            for job in held:
                if job.record is not None and pause_covers(paused, job.record.method):
                    self._held.append(job)
                else:
                    self._queue.append(job)
            self._dispatch()

    def record_forced_end(self, job: Job, watch: Watch, owner: str) -> None:
        """Record the end of a task whose worker was stopped by force (or died while
        asked to stop): its stop's state, or a retry if a failed one has attempts left."""
        state, error = watch.forced_end()
        self.end_or_retry(job, state, error, owner)

    def end_or_retry(self, job: Job, state: TaskState, error: str, owner: str) -> None:
        """End a task its worker could not end itself, or queue it again; while the
        store is away, the end waits in this pool and is written on a later turn."""
        try:
            self._end_or_retry(job, state, error, owner)
        except StoreUnavailable as exc:
            log.warning("task %s: its end (%s) waits until the store is back: %s", job.task_id,
                        error, exc)
            with self._lock:
                self._pending_ends.append((job, state, error, False))

    def _end_or_retry(self, job: Job, state: TaskState, error: str, owner: str) -> None:
        retry = job.policy.next_attempt(state, job.attempt, error)
        if retry is not None:
            delay, note = retry
            if self.store.requeue(job.task_id, job.attempt + 1, note, owner):
                log.info("task %s: %s", job.task_id, note)
                with self._lock:
                    self._delay(replace(job, attempt=job.attempt + 1), delay)
                return
        self.store.finish(job.task_id, state, time.time(), error=attempts_note(error, job.attempt),
                          attempt=job.attempt)

    def abandon(self, task_id: str, error: str) -> None:
        with self._lock:
            if len(self._pending_ends) >= MAX_PENDING_ENDS:
                log.error("task %s: too many ends wait for the store (%d); this one is dropped: %s",
                          task_id, len(self._pending_ends), error)
                return
            self._pending_ends.append((Job(task_id, None, TaskPolicy()), TaskState.LOST, error, True))
            self._ensure_supervisor()

    def _record_pending_ends(self) -> None:
        """Write the ends the store would not take before, oldest first, until it fails."""
        with self._lock:
            pending, self._pending_ends = self._pending_ends, []
        for index, (job, state, error, final) in enumerate(pending):
            try:
                if final:
                    self.store.finish(job.task_id, state, time.time(), error=error, attempt=job.attempt)
                else:
                    self._end_or_retry(job, state, error, self.owner)
            except StoreUnavailable:
                with self._lock:
                    self._pending_ends[:0] = pending[index:]
                return
            log.info("task %s: its end (%s) is recorded now", job.task_id, error)

    # -- stopping ---------------------------------------------------------------------

    def _close(self, grace_period: float) -> list[str]:
        """Refuse new tasks, wait up to ``grace_period`` s for running ones; returns the
        ids of those still running, and of every queued or delayed task."""
        deadline = time.monotonic() + grace_period
        with self._lock:
            self._closed = True
            unfinished = [job.task_id for job in (*self._queue, *self._held)]
            unfinished += [job.task_id for _, _, job in self._delayed]
            self._queue.clear()
            self._held.clear()
            self._delayed.clear()
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return unfinished + self._unrun + list(self._busy)
