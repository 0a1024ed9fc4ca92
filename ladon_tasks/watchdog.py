"""Why and when a running task must stop: cancel, time limit, silence; and the kill after.

An executor keeps one :class:`Watch` per running task and calls :meth:`Watch.check` on
every turn of its supervisor. The task and its watch share a *control*: a sequence of
few integers, ``[stop, calls, running, beat]``. The watch writes ``stop`` (a :class:`StopReason`), the
task's ``update_progress`` reads it and raises the matching interrupt; ``update_progress``
counts its ``calls``, which is how the watch tells a silent task from a busy one; the
runner sets ``running`` once the task really started (a worker may first import its
module), and the clock of the limits starts then. In thread mode the control is a list;
in process mode shared memory seen by both processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import MutableSequence

from ladon_tasks.exceptions import CancelRequested, TaskInterrupt, TaskStalled, TimeLimitExceeded
from ladon_tasks.options import TaskPolicy
from ladon_tasks.task import TaskState

Control = MutableSequence[int]
#: Indexes into a control, and its length. ``BEAT`` is a worker process's last sign of
#: life (:func:`monotonic_ms`), written by the worker, read by its server.
STOP, CALLS, RUNNING, BEAT = 0, 1, 2, 3
CONTROL_SIZE = 4


def monotonic_ms() -> int:
    """The system's monotonic clock in milliseconds, the same in every process."""
    return time.monotonic_ns() // 1_000_000


def new_control() -> Control:
    """A control for a task run on a thread of this process."""
    return [0] * CONTROL_SIZE


class StopReason(IntEnum):
    """Why a running task is asked to stop; 0 (no member) means it is not."""

    CANCEL = 1
    TIME_LIMIT = 2
    STALLED = 3


@dataclass(frozen=True)
class Stop:
    """What a stop reason means for the task: what it raises and how it ends."""

    interrupt: type[TaskInterrupt]
    state: TaskState
    #: The name the recorded error starts with.
    name: str
    #: The message, formatted with the policy's fields.
    message: str

    def error(self, policy: TaskPolicy, forced: bool) -> str:
        """The ``error`` recorded for a task that ended this way."""
        text = f"{self.name}: " + self.message.format(**vars(policy))
        if forced:
            text += (f"; it did not return within cancel_grace ({policy.cancel_grace:g} s) "
                     "and was ended by force")
        return text


STOPS: dict[StopReason, Stop] = {
    StopReason.CANCEL: Stop(CancelRequested, TaskState.CANCELLED, "TaskCancelled",
                            "cancelled while running"),
    StopReason.TIME_LIMIT: Stop(TimeLimitExceeded, TaskState.FAILED, "TimeLimitExceeded",
                                "ran longer than its time_limit of {time_limit:g} s"),
    StopReason.STALLED: Stop(TaskStalled, TaskState.FAILED, "TaskStalled",
                             "no progress reported for {max_silence:g} s (max_silence)"),
}


def interrupt_for(code: int, policy: TaskPolicy) -> TaskInterrupt:
    """The exception ``update_progress`` raises for stop code ``code``."""
    stop = STOPS[StopReason(code)]
    return stop.interrupt(stop.message.format(**vars(policy)))


class Verdict(IntEnum):
    """What an executor must do after a check."""

    NOTHING = 0
    #: The task was just asked to stop; it will see it at its next update_progress.
    ASKED = 1
    #: The task did not stop within cancel_grace: end it by force.
    KILL = 2


class Watch:
    """The watchdog's view of one running task. Times are ``time.monotonic()`` seconds."""

    __slots__ = ("policy", "control", "running", "started", "calls", "last_call", "reason", "asked_at")

    def __init__(self, policy: TaskPolicy, control: Control, now: float) -> None:
        self.policy = policy
        self.control = control
        self.running = False
        self.started = now
        self.calls = control[CALLS]
        self.last_call = now
        self.reason: StopReason | None = None
        self.asked_at = 0.0

    def check(self, now: float, cancel_requested: bool = False) -> Verdict:
        """Look at the task once: ask it to stop if it must, say when to end it by force."""
        calls = self.control[CALLS]
        if not self.running and self.control[RUNNING]:
            # The limits count from the first look that finds it running, never earlier.
            self.running, self.started, self.last_call, self.calls = True, now, now, calls
        elif calls != self.calls:
            self.calls, self.last_call = calls, now
        if self.reason is None:
            reason = self._reason(now, cancel_requested)
            if reason is None:
                return Verdict.NOTHING
            self.ask(reason, now)
            return Verdict.ASKED
        if now - self.asked_at >= self.policy.cancel_grace:
            return Verdict.KILL
        return Verdict.NOTHING

    def ask(self, reason: StopReason, now: float) -> None:
        """Ask the task to stop for ``reason`` (the first reason given wins)."""
        if self.reason is None:
            self.reason, self.asked_at = reason, now
            self.control[STOP] = int(reason)

    def _reason(self, now: float, cancel_requested: bool) -> StopReason | None:
        policy = self.policy
        if cancel_requested:
            return StopReason.CANCEL
        if not self.running:
            return None  # not started yet: only a cancel applies
        if policy.time_limit is not None and now - self.started >= policy.time_limit:
            return StopReason.TIME_LIMIT
        if policy.max_silence is not None and now - self.last_call >= policy.max_silence:
            return StopReason.STALLED
        return None

    def forced_end(self) -> tuple[TaskState, str]:
        """The state and error to record when the task is ended by force."""
        assert self.reason is not None
        stop = STOPS[self.reason]
        return stop.state, stop.error(self.policy, forced=True)


def describe_stop(exc: TaskInterrupt, policy: TaskPolicy) -> tuple[TaskState, str]:
    """The state and error of a task that returned by raising ``exc``."""
    for stop in STOPS.values():
        if isinstance(exc, stop.interrupt):
            return stop.state, stop.error(policy, forced=False)
    return TaskState.FAILED, f"{type(exc).__name__}: {exc}"
