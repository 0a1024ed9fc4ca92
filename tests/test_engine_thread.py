"""TaskEngine in thread mode, on its own: no Ladon, no HTTP."""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Iterator

import pytest
from helpers import wait_until

from ladon_tasks import (
    ResultNotReady,
    ShuttingDown,
    TaskConfig,
    TaskEngine,
    TaskFailed,
    TaskLost,
    TaskNotFound,
    TaskState,
    get_current_task,
)

Job = Callable[[Callable[[float], None]], Any]


@pytest.fixture
def make_engine() -> Iterator[Callable[..., TaskEngine]]:
    """``make_engine(**options)``: a thread-mode engine, shut down after the test."""
    engines: list[TaskEngine] = []

    def make(**options: Any) -> TaskEngine:
        engine = TaskEngine(TaskConfig(**options))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.shutdown(grace_period=5)


class Gate:
    """A job that waits until the test opens it; tells when it has started."""

    def __init__(self, result: Any = "done") -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.result = result
        self.thread: threading.Thread | None = None

    def __call__(self, update_progress: Callable[[float], None]) -> Any:
        self.thread = threading.current_thread()
        self.started.set()
        if not self.release.wait(30):
            raise RuntimeError("gate never opened")
        return self.result


class Stepper:
    """A job that reports the given progress values one at a time, in lockstep with the test."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.reported = threading.Semaphore(0)
        self.proceed = threading.Semaphore(0)

    def __call__(self, update_progress: Callable[[float], None]) -> int:
        self.reported.release()  # running, nothing reported yet
        for value in self.values:
            assert self.proceed.acquire(timeout=30)
            update_progress(value)
            self.reported.release()
        assert self.proceed.acquire(timeout=30)
        return len(self.values)

    def step(self) -> None:
        """Let the job report its next value and wait until it has."""
        self.proceed.release()
        assert self.reported.acquire(timeout=30)


def wait_done(engine: TaskEngine, task_id: str, timeout: float = 20) -> Any:
    return wait_until(lambda: (r := engine.status(task_id)).state.done and r, timeout=timeout,
                      message=f"task {task_id} to end")


def test_pool_is_bounded(make_engine):
    engine = make_engine(threads=2)
    gates = [Gate(result=index) for index in range(4)]
    ids = [engine.start("T.gated", gate) for gate in gates]

    def states() -> list[TaskState]:
        return [engine.status(task_id).state for task_id in ids]

    wait_until(lambda: states().count(TaskState.RUNNING) == 2, message="two tasks running")
    records = [engine.status(task_id) for task_id in ids]
    assert [r.state for r in records].count(TaskState.RUNNING) == 2
    queued = [r for r in records if r.state is TaskState.QUEUED]
    assert len(queued) == 2
    for record in queued:
        assert record.progress == 0.0 and record.started == 0.0 and record.duration == 0.0
    assert sum(gate.started.is_set() for gate in gates) == 2

    for gate in gates:
        gate.release.set()
    for index, task_id in enumerate(ids):
        assert wait_done(engine, task_id).state is TaskState.SUCCEEDED
        assert engine.result(task_id) == index


def test_update_progress_is_clamped_and_ignores_nan(make_engine):
    engine = make_engine(threads=1)
    job = Stepper([0.5, -1, 5, float("nan"), 0.25, float("inf"), -math.inf])
    task_id = engine.start("T.steps", job)
    assert job.reported.acquire(timeout=30)
    seen = []
    for _ in job.values:
        job.step()
        seen.append(engine.status(task_id).progress)
    assert seen == [0.5, 0.0, 1.0, 1.0, 0.25, 1.0, 0.0]
    job.proceed.release()
    assert wait_done(engine, task_id).state is TaskState.SUCCEEDED


def test_progress_is_zero_at_start_and_one_at_end(make_engine):
    engine = make_engine()
    job = Stepper([])
    task_id = engine.start("T.quiet", job)
    assert job.reported.acquire(timeout=30)
    record = engine.status(task_id)
    assert record.state is TaskState.RUNNING
    assert record.progress == 0.0
    assert record.started >= record.created > 0
    job.proceed.release()
    record = wait_done(engine, task_id)
    assert record.state is TaskState.SUCCEEDED
    assert record.progress == 1.0  # never reported by the job itself
    assert record.finished >= record.started


def test_duration_grows_while_running_and_is_frozen_after(make_engine):
    engine = make_engine()
    gate = Gate()
    task_id = engine.start("T.gated", gate)
    assert gate.started.wait(30)
    first = engine.status(task_id).duration
    wait_until(lambda: engine.status(task_id).duration > first + 0.05, message="duration to grow")
    gate.release.set()
    record = wait_done(engine, task_id)
    ended = record.duration
    assert ended == pytest.approx(record.finished - record.started)
    # Later reads, once the clock has clearly moved on, tell the same duration.
    wait_until(lambda: time.time() > record.finished + 0.1, message="the clock to move on")
    assert engine.status(task_id).duration == ended


def test_result_not_ready_while_queued_or_running(make_engine):
    engine = make_engine(threads=1)
    first, second = Gate(1), Gate(2)
    running_id = engine.start("T.gated", first)
    queued_id = engine.start("T.gated", second)
    assert first.started.wait(30)
    for task_id, state in ((running_id, "running"), (queued_id, "queued")):
        with pytest.raises(ResultNotReady) as raised:
            engine.result(task_id)
        assert state in str(raised.value)
        assert "succeeded" in str(raised.value)
    first.release.set()
    second.release.set()
    wait_done(engine, queued_id)
    assert engine.result(running_id) == 1 and engine.result(queued_id) == 2


def test_failed_task(make_engine):
    engine = make_engine()

    def job(update_progress):
        update_progress(0.5)
        raise ValueError("msg")

    task_id = engine.start("T.fail", job)
    record = wait_done(engine, task_id)
    assert record.state is TaskState.FAILED
    assert record.error == "ValueError: msg"
    with pytest.raises(TaskFailed) as raised:
        engine.result(task_id)
    assert raised.value.error == "ValueError: msg"
    assert raised.value.task_id == task_id
    assert not isinstance(raised.value, TaskLost)


def test_failure_without_message_and_debug_traceback(make_engine):
    plain = make_engine()
    debug = make_engine(debug=True)

    def job(update_progress):
        raise KeyError

    plain_id, debug_id = plain.start("T.fail", job), debug.start("T.fail", job)
    assert wait_done(plain, plain_id).error == "KeyError"
    error = wait_done(debug, debug_id).error
    assert error.startswith("KeyError") and "Traceback" in error


def test_falsy_results(make_engine):
    engine = make_engine()
    for value in (0, "", False, [], None):
        task_id = engine.start("T.falsy", lambda update_progress, value=value: value)
        assert wait_done(engine, task_id).state is TaskState.SUCCEEDED
        got = engine.result(task_id)
        assert got == value and type(got) is type(value)


def test_memory_stays_bounded(make_engine):
    engine = make_engine(threads=4, result_ttl=0.5)
    store = engine.store()
    ids = [engine.start("T.tiny", lambda update_progress, n=n: n) for n in range(3000)]
    wait_until(lambda: engine.status(ids[-1]).state.done, timeout=60, message="the last task")
    # Expiry is amortised over reads and writes, so keep reading while waiting.
    probe = ids[-1]

    def drained() -> bool:
        try:
            engine.status(probe)
        except TaskNotFound:
            pass
        return len(store) == 0

    wait_until(drained, timeout=30, message="expired records to be dropped")
    with pytest.raises(TaskNotFound) as raised:
        engine.result(ids[0])
    assert "expired" in str(raised.value)
    # The engine keeps working after the purge and holds only the new task.
    task_id = engine.start("T.tiny", lambda update_progress: "again")
    assert wait_done(engine, task_id).state is TaskState.SUCCEEDED
    assert len(store) == 1


def test_shutdown_refuses_new_tasks_and_records_running_ones_lost(make_engine):
    engine = make_engine(threads=1)
    running_gate, queued_gate = Gate(), Gate()
    try:
        running_id = engine.start("T.gated", running_gate)
        queued_id = engine.start("T.gated", queued_gate)
        assert running_gate.started.wait(30)

        lost = engine.shutdown(grace_period=0.2)
        with pytest.raises(ShuttingDown):
            engine.start("T.late", lambda update_progress: 1)
        record = engine.status(running_id)
        assert record.state is TaskState.LOST
        assert record.error.startswith("TaskLost") and "stopped" in record.error
        with pytest.raises(TaskLost):
            engine.result(running_id)
        # The task still waiting in the queue is cancelled, never run, and lost too.
        assert not queued_gate.started.is_set()
        assert engine.status(queued_id).state is TaskState.LOST
        assert set(lost) == {running_id, queued_id}
    finally:
        running_gate.release.set()
        queued_gate.release.set()

    # The task that outlived the grace period ends later; its verdict stays.
    wait_until(lambda: not running_gate.thread.is_alive(), message="the task thread to end")
    assert engine.status(running_id).state is TaskState.LOST
    assert not queued_gate.started.is_set()


def test_shutdown_with_nothing_unfinished_loses_nothing(make_engine):
    engine = make_engine()
    task_id = engine.start("T.quick", lambda update_progress: 1)
    wait_done(engine, task_id)
    assert engine.shutdown(grace_period=0.1) == []
    assert engine.status(task_id).state is TaskState.SUCCEEDED
    with pytest.raises(ShuttingDown):
        engine.start("T.late", lambda update_progress: 1)


def test_shutdown_waits_for_tasks_within_the_grace_period(make_engine):
    engine = make_engine(threads=2)
    gate = Gate("finished in time")
    task_id = engine.start("T.gated", gate)
    assert gate.started.wait(30)
    opener = threading.Timer(0.1, gate.release.set)
    opener.start()
    assert engine.shutdown(grace_period=20) == []
    assert engine.status(task_id).state is TaskState.SUCCEEDED
    assert engine.result(task_id) == "finished in time"


def test_get_current_task_inside_a_task(make_engine):
    engine = make_engine()
    assert get_current_task() is None

    def job(update_progress):
        task = get_current_task()
        task.update_progress(0.5)
        nested = threading.Event()
        seen = {}

        def deeper():
            seen["task"] = get_current_task()
            nested.set()

        deeper()
        assert nested.is_set()
        return {"task_id": task.task_id, "same": seen["task"] is task}

    task_id = engine.start("T.current", job)
    assert wait_done(engine, task_id).state is TaskState.SUCCEEDED
    assert engine.result(task_id) == {"task_id": task_id, "same": True}
    assert get_current_task() is None


def test_get_current_task_progress_reaches_the_record(make_engine):
    engine = make_engine()
    reported, finish = threading.Event(), threading.Event()

    def job(update_progress):
        get_current_task().update_progress(7)  # clamped like update_progress
        reported.set()
        finish.wait(30)
        return get_current_task().task_id

    task_id = engine.start("T.current", job)
    assert reported.wait(30)
    assert engine.status(task_id).progress == 1.0
    finish.set()
    wait_done(engine, task_id)
    assert engine.result(task_id) == task_id


def test_current_task_does_not_leak_between_tasks(make_engine):
    engine = make_engine(threads=1)
    ids = [engine.start("T.who", lambda update_progress: get_current_task().task_id) for _ in range(5)]
    for task_id in ids:
        wait_done(engine, task_id)
        assert engine.result(task_id) == task_id


def test_unknown_and_malformed_ids(make_engine):
    from ladon_tasks import InvalidTaskId
    from ladon_tasks.ids import new_task_id

    engine = make_engine()
    with pytest.raises(TaskNotFound):
        engine.status(new_task_id())
    with pytest.raises(TaskNotFound):
        engine.result(new_task_id())
    with pytest.raises(InvalidTaskId):
        engine.status("nope")
    with pytest.raises(InvalidTaskId):
        engine.result(None)


def test_engine_construction_starts_nothing():
    before = {t.ident for t in threading.enumerate()}
    engine = TaskEngine(TaskConfig(threads=3))
    assert {t.ident for t in threading.enumerate()} == before
    assert engine.shutdown(grace_period=0) == []
