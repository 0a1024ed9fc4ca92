"""The lifecycle in the engine itself, thread mode, with tasks the tests hold on gates:
abandoned threads and their bound, late results thrown away, attempts fenced off."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest
from helpers import wait_until

from ladon_tasks import TaskCancelled, TaskConfig, TaskEngine, TaskState, get_current_task
from ladon_tasks.options import TaskPolicy
from ladon_tasks.watchdog import STOP, StopReason, Verdict, Watch, new_control


@pytest.fixture
def engine() -> Iterator[Callable[..., TaskEngine]]:
    made: list[TaskEngine] = []

    def make(**options: Any) -> TaskEngine:
        options = {"threads": 1, "cancel_grace": 0.2, "progress_interval": 0.02, **options}
        made.append(TaskEngine(TaskConfig(**options)))
        return made[-1]

    yield make
    for each in made:
        each.shutdown(grace_period=0)


def gated(gate: threading.Event, value: Any = "late") -> Callable[[Callable], Any]:
    """A task that ignores every request to stop until ``gate`` opens."""

    def job(update_progress: Callable) -> Any:
        gate.wait(30)
        return value

    return job


def quick(update_progress: Callable) -> str:
    update_progress(1.0)
    return "quick"


def wait_state(engine: TaskEngine, task_id: str, state: TaskState) -> Any:
    return wait_until(lambda: (r := engine.status(task_id)).state is state and r, timeout=15,
                      message=f"task {task_id} to be {state.value}")


def test_abandoned_threads_keep_no_slot_up_to_the_pool_size_then_they_do(engine):
    engine = engine(threads=1)
    first_gate, second_gate = threading.Event(), threading.Event()
    first = engine.start("T.gated", gated(first_gate))
    wait_state(engine, first, TaskState.RUNNING)
    engine.cancel(first)
    ended = wait_state(engine, first, TaskState.CANCELLED)
    assert "ended by force" in ended.error
    executor = engine.executor()
    assert executor.abandoned_threads == 1

    # One abandoned thread (as many as the pool has threads): the slot was given back.
    second = engine.start("T.gated", gated(second_gate))
    wait_state(engine, second, TaskState.RUNNING)
    engine.cancel(second)
    wait_state(engine, second, TaskState.CANCELLED)
    assert executor.abandoned_threads == 2

    # Two abandoned threads for a pool of one: the second keeps its slot until it returns.
    third = engine.start("T.quick", quick)
    released = time.time()
    first_gate.set()
    done = wait_state(engine, third, TaskState.SUCCEEDED)
    assert done.started >= released
    second_gate.set()
    wait_until(lambda: executor.abandoned_threads == 0, message="the abandoned threads to return")

    # Their late results were thrown away.
    for task_id in (first, second):
        assert engine.status(task_id).state is TaskState.CANCELLED
        with pytest.raises(TaskCancelled):
            engine.result(task_id)


def test_the_late_end_of_an_abandoned_attempt_cannot_end_the_next_attempt(engine):
    engine = engine(threads=2, time_limit=0.2, retries=1, retry_backoff=0.0)
    gate = threading.Event()
    calls = []

    def job(update_progress: Callable) -> str:
        calls.append(1)
        if len(calls) == 1:
            gate.wait(30)  # attempt 1 hangs past its time limit
            return "first"
        return "second"

    task_id = engine.start("T.job", job)
    record = wait_state(engine, task_id, TaskState.SUCCEEDED)
    assert record.attempt == 2 and engine.result(task_id) == "second"
    gate.set()
    executor = engine.executor()
    wait_until(lambda: executor.abandoned_threads == 0, message="attempt 1's thread to return")
    record = engine.status(task_id)
    assert (record.state, record.attempt, engine.result(task_id)) == (TaskState.SUCCEEDED, 2, "second")


def test_code_deep_in_a_task_is_stopped_through_get_current_task(engine):
    engine = engine(threads=1)
    reached = threading.Event()

    def deep_helper() -> None:
        while True:
            get_current_task().update_progress(0.5)
            reached.set()
            time.sleep(0.01)

    task_id = engine.start("T.deep", lambda update_progress: deep_helper())
    assert reached.wait(15)
    engine.cancel(task_id)
    record = wait_state(engine, task_id, TaskState.CANCELLED)
    assert record.error == "TaskCancelled: cancelled while running"


def test_a_queued_task_cancelled_in_the_engine_never_runs(engine):
    engine = engine(threads=1)
    gate, ran = threading.Event(), []
    first = engine.start("T.gated", gated(gate))
    wait_state(engine, first, TaskState.RUNNING)
    second = engine.start("T.second", lambda update_progress: ran.append(1))
    assert engine.cancel(second).state is TaskState.CANCELLED
    gate.set()
    wait_state(engine, first, TaskState.SUCCEEDED)
    after = engine.start("T.quick", quick)
    wait_state(engine, after, TaskState.SUCCEEDED)
    assert ran == []


# -- the watch on its own ------------------------------------------------------------------


def test_a_watch_asks_once_then_says_kill_after_the_grace():
    control = new_control()
    watch = Watch(TaskPolicy(time_limit=10.0, cancel_grace=2.0), control, now=100.0)
    assert watch.check(105.0) is Verdict.NOTHING  # not running yet: no clock
    control[2] = 1  # the runner says it runs
    assert watch.check(106.0) is Verdict.NOTHING
    assert watch.check(115.9) is Verdict.NOTHING
    assert watch.check(116.0) is Verdict.ASKED and control[STOP] == StopReason.TIME_LIMIT
    assert watch.check(117.9, cancel_requested=True) is Verdict.NOTHING  # first reason kept
    assert watch.reason is StopReason.TIME_LIMIT
    assert watch.check(118.0) is Verdict.KILL
    state, error = watch.forced_end()
    assert state is TaskState.FAILED
    assert error.startswith("TimeLimitExceeded: ran longer than its time_limit of 10 s; it did not "
                            "return within cancel_grace (2 s)")


def test_a_watch_counts_silence_from_the_last_progress_call():
    control = new_control()
    control[2] = 1
    watch = Watch(TaskPolicy(max_silence=3.0), control, now=0.0)
    assert watch.check(0.0) is Verdict.NOTHING
    control[1] += 1  # a call at about 2 s
    assert watch.check(2.0) is Verdict.NOTHING
    assert watch.check(4.9) is Verdict.NOTHING
    assert watch.check(5.0) is Verdict.ASKED and watch.reason is StopReason.STALLED
