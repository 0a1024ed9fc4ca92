"""Conformance of every TaskStore backend to the lifecycle of issue 7: cancel, requeue,
attempt fencing, dismiss, tombstones and liveness; then what only RedisStore promises."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
import redis
from conftest import OWNER, RETRIER
from helpers import wait_until
from test_store_conformance import queued, running

from ladon_tasks.ids import new_task_id
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.stores.memory import MemoryStore
from ladon_tasks.stores.redis import ENDED_CACHE_SECONDS, RedisStore, iter_task_keys
from ladon_tasks.stores.redis_ended import EndedCopies
from ladon_tasks.stores.redis_live import LiveCopies
from ladon_tasks.task import (
    CANCELLED_QUEUED,
    HEALTH_OK,
    HEALTH_SILENT,
    HEALTH_STALLED,
    Gone,
    TaskRecord,
    TaskState,
    snapshot,
)

#: A second server process that queues tasks again (registered in every store).


def record_count(store: TaskStore) -> int:
    """How many task records the store holds, dismissed ones included."""
    if isinstance(store, RedisStore):
        return len(list(iter_task_keys(store)))
    assert isinstance(store, MemoryStore)
    return len(store)


def ended(store: TaskStore, state: TaskState) -> TaskRecord:
    """A task that ended in ``state`` (a cancelled one: cancelled while queued)."""
    if state is TaskState.CANCELLED:
        record = queued(store)
        assert store.request_cancel(record.task_id, time.time()) is not None
    else:
        record = running(store)
        error = "" if state is TaskState.SUCCEEDED else f"{state.value}: E"
        assert store.finish(record.task_id, state, time.time(), result={"r": 1}, error=error)
    got = store.get(record.task_id)
    assert got is not None and got.state is state
    return got


ENDED_STATES = [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.LOST, TaskState.CANCELLED]


# -- request_cancel -------------------------------------------------------------------------


def test_request_cancel_of_a_queued_task_ends_it_cancelled_at_once(store):
    record = queued(store)
    now = time.time()
    answer = store.request_cancel(record.task_id, now)
    for got in (answer, store.get(record.task_id)):
        assert got is not None
        assert got.task_id == record.task_id
        assert got.state is TaskState.CANCELLED
        assert got.error.startswith("TaskCancelled:")
        assert got.error == CANCELLED_QUEUED
        assert got.progress == 1.0
        assert got.finished == pytest.approx(now, abs=1e-6)
        assert got.started == got.finished
        assert got.duration == 0.0
        assert got.cancel_requested == pytest.approx(now, abs=1e-6)
    # It never runs, and nothing else can end it.
    assert not store.mark_running(record.task_id, time.time(), OWNER)
    assert not store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=1)
    assert store.get(record.task_id).state is TaskState.CANCELLED
    assert store.get_result(record.task_id) is None


def test_request_cancel_of_a_running_task_asks_once_and_keeps_it_running(store):
    record = running(store)
    assert store.set_progress(record.task_id, 0.3, time.time())
    first = time.time()
    answer = store.request_cancel(record.task_id, first)
    assert answer is not None
    assert answer.state is TaskState.RUNNING
    assert answer.cancel_requested == pytest.approx(first, abs=1e-6)
    assert answer.progress == 0.3
    assert answer.finished == 0.0 and answer.error == ""
    # A second request keeps the time of the first.
    again = store.request_cancel(record.task_id, first + 7.0)
    assert again.state is TaskState.RUNNING
    assert again.cancel_requested == pytest.approx(first, abs=1e-6)
    got = store.get(record.task_id)
    assert got.state is TaskState.RUNNING
    assert got.cancel_requested == pytest.approx(first, abs=1e-6)
    assert got.progress == 0.3
    # The task still reports progress until its executor stops it.
    assert store.set_progress(record.task_id, 0.4, time.time())
    assert store.finish(record.task_id, TaskState.CANCELLED, time.time(), error="TaskCancelled: asked")
    assert store.get(record.task_id).state is TaskState.CANCELLED


def test_cancel_requests_lists_only_the_tasks_asked_to_stop(store):
    asked = running(store)
    other = running(store)
    waiting = queued(store)
    done = ended(store, TaskState.SUCCEEDED)
    unknown = new_task_id()
    assert store.cancel_requests([]) == set()
    ids = [asked.task_id, other.task_id, waiting.task_id, done.task_id, unknown]
    assert store.cancel_requests(ids) == set()
    assert store.request_cancel(asked.task_id, time.time()).state is TaskState.RUNNING
    assert store.cancel_requests(ids) == {asked.task_id}
    assert store.cancel_requests([other.task_id, unknown]) == set()
    assert store.cancel_requests([asked.task_id]) == {asked.task_id}
    assert store.get(other.task_id).cancel_requested == 0.0


@pytest.mark.parametrize("state", [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.LOST])
def test_request_cancel_of_an_ended_task_changes_nothing(store, state):
    before = ended(store, state)
    answer = store.request_cancel(before.task_id, time.time() + 3.0)
    for got in (answer, store.get(before.task_id)):
        assert got is not None
        assert got.state is state
        assert got.cancel_requested == 0.0
        assert got.error == before.error
        assert got.finished == before.finished
        assert got.progress == 1.0
    if state is TaskState.SUCCEEDED:
        assert store.get_result(before.task_id) == {"r": 1}
    assert store.cancel_requests([before.task_id]) == set()


def test_request_cancel_of_a_cancelled_task_keeps_its_first_cancel(store):
    record = queued(store)
    first = time.time()
    assert store.request_cancel(record.task_id, first).state is TaskState.CANCELLED
    again = store.request_cancel(record.task_id, first + 5.0)
    assert again.state is TaskState.CANCELLED
    assert again.cancel_requested == pytest.approx(first, abs=1e-6)
    assert again.finished == pytest.approx(first, abs=1e-6)
    assert again.error == CANCELLED_QUEUED


def test_cancel_and_dismiss_of_an_unknown_id_are_none_and_create_nothing(store):
    task_id = new_task_id()
    assert store.request_cancel(task_id, time.time()) is None
    assert store.dismiss(task_id, time.time()) is None
    assert store.get(task_id) is None
    assert store.tombstone(task_id) is None
    assert store.cancel_requests([task_id]) == set()
    assert record_count(store) == 0


# -- requeue ----------------------------------------------------------------------------------


def test_requeue_queues_a_running_task_as_its_next_attempt(store):
    record = running(store)
    assert store.set_progress(record.task_id, 0.6, time.time())
    note = "attempt 1 of 3 failed, next in 1 s: ValueError: bad"
    assert store.requeue(record.task_id, 2, note, RETRIER)
    got = store.get(record.task_id)
    assert got.state is TaskState.QUEUED
    assert got.attempt == 2
    assert got.error == note
    assert got.owner == RETRIER
    assert got.progress == 0.0
    assert got.started == 0.0 and got.finished == 0.0
    assert got.heartbeat == 0.0 and got.touched == 0.0
    assert got.cancel_requested == 0.0
    assert got.duration == 0.0
    # The same call again succeeds and changes nothing (a retried write) ...
    assert store.requeue(record.task_id, 2, note, RETRIER)
    assert store.get(record.task_id) == got
    # ... but the same attempt is not queued twice by another owner.
    assert not store.requeue(record.task_id, 2, "again", OWNER)
    assert store.get(record.task_id).owner == RETRIER


def test_a_requeued_task_runs_and_ends_as_its_next_attempt(store):
    record = running(store)
    assert store.set_progress(record.task_id, 0.5, time.time())
    assert store.requeue(record.task_id, 2, "E: first", RETRIER)
    started = time.time()
    assert store.mark_running(record.task_id, started, "worker:7")
    got = store.get(record.task_id)
    assert got.state is TaskState.RUNNING
    assert got.attempt == 2
    assert got.owner == "worker:7"
    assert got.started == pytest.approx(started, abs=1e-6)
    assert got.progress == 0.0 and got.touched == 0.0
    assert store.requeue(record.task_id, 3, "E: second", RETRIER)
    assert store.get(record.task_id).attempt == 3
    assert store.mark_running(record.task_id, time.time(), "worker:8")
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=[3], attempt=3)
    done = store.get(record.task_id)
    assert done.state is TaskState.SUCCEEDED and done.attempt == 3 and done.error == ""
    assert store.get_result(record.task_id) == [3]


def test_requeue_is_refused_once_a_cancel_was_asked_for(store):
    record = running(store)
    assert store.request_cancel(record.task_id, time.time()) is not None
    assert not store.requeue(record.task_id, 2, "E: x", RETRIER)
    got = store.get(record.task_id)
    assert got.state is TaskState.RUNNING
    assert got.attempt == 1
    assert got.error == ""
    assert got.owner == OWNER


@pytest.mark.parametrize("state", [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED])
def test_requeue_is_refused_for_an_ended_task(store, state):
    before = ended(store, state)
    assert not store.requeue(before.task_id, 2, "E: x", RETRIER)
    got = store.get(before.task_id)
    assert got.state is state
    assert got.attempt == 1
    assert got.error == before.error
    assert got.progress == 1.0


@pytest.mark.parametrize("attempt", [0, 1, 3, 4])
def test_requeue_is_refused_unless_the_attempt_is_the_next_one(store, attempt):
    record = running(store)
    assert not store.requeue(record.task_id, attempt, "E: x", RETRIER)
    got = store.get(record.task_id)
    assert got.state is TaskState.RUNNING
    assert got.attempt == 1
    assert got.error == ""


def test_requeue_is_refused_for_a_queued_or_unknown_task(store):
    record = queued(store)
    assert not store.requeue(record.task_id, 2, "E: x", RETRIER)
    got = store.get(record.task_id)
    assert got.state is TaskState.QUEUED and got.attempt == 1 and got.error == ""
    unknown = new_task_id()
    assert not store.requeue(unknown, 2, "E: x", RETRIER)
    assert store.get(unknown) is None
    assert record_count(store) == 1


def test_a_lost_task_may_be_queued_again(store):
    record = running(store)
    assert store.finish(record.task_id, TaskState.LOST, time.time(), error="TaskLost: worker died")
    assert store.requeue(record.task_id, 2, "attempt 1 of 2 failed: TaskLost: worker died", RETRIER)
    got = store.get(record.task_id)
    assert got.state is TaskState.QUEUED
    assert got.attempt == 2
    assert got.finished == 0.0 and got.progress == 0.0
    assert got.error.endswith("TaskLost: worker died")


def test_a_task_queued_again_after_it_was_lost_does_not_expire_with_the_result_ttl(make_store):
    store = make_store(result_ttl=1)
    retried = running(store)
    assert store.finish(retried.task_id, TaskState.LOST, time.time(), error="TaskLost: worker died")
    assert store.requeue(retried.task_id, 2, "TaskLost: worker died", RETRIER)
    # A task that ended after the requeue: once it has expired, result_ttl has passed.
    marker = running(store)
    assert store.finish(marker.task_id, TaskState.FAILED, time.time(), error="E: marker")
    wait_until(lambda: store.get(marker.task_id) is None, timeout=15, message="the marker to expire")
    got = store.get(retried.task_id)
    assert got is not None, "a queued task (requeued after lost) expired with the result TTL"
    assert got.state is TaskState.QUEUED and got.attempt == 2
    assert store.tombstone(retried.task_id) is None
    assert store.mark_running(retried.task_id, time.time(), OWNER)


# -- finish with attempt fencing ----------------------------------------------------------------


def test_a_stale_attempt_cannot_end_the_next_running_attempt(store):
    record = running(store)
    assert store.requeue(record.task_id, 2, "E: first", RETRIER)
    assert store.mark_running(record.task_id, time.time(), OWNER)
    assert store.set_progress(record.task_id, 0.2, time.time())
    for state in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED):
        assert not store.finish(record.task_id, state, time.time(), result="late", error="late", attempt=1)
    got = store.get(record.task_id)
    assert got.state is TaskState.RUNNING
    assert got.attempt == 2
    assert got.progress == 0.2
    assert store.get_result(record.task_id) is None
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result="mine", attempt=2)
    assert store.get(record.task_id).state is TaskState.SUCCEEDED
    assert store.get_result(record.task_id) == "mine"


def test_a_stale_attempt_cannot_end_a_task_waiting_for_its_retry(store):
    record = running(store)
    assert store.requeue(record.task_id, 2, "E: first", RETRIER)
    assert not store.finish(record.task_id, TaskState.FAILED, time.time(), error="late", attempt=1)
    got = store.get(record.task_id)
    assert got.state is TaskState.QUEUED
    assert got.error == "E: first"
    assert got.attempt == 2


def test_finish_without_an_attempt_ends_any_attempt(store):
    record = running(store)
    assert store.requeue(record.task_id, 2, "E: first", RETRIER)
    assert store.mark_running(record.task_id, time.time(), OWNER)
    assert store.finish(record.task_id, TaskState.FAILED, time.time(), error="E: second")
    got = store.get(record.task_id)
    assert got.state is TaskState.FAILED and got.error == "E: second" and got.attempt == 2


def test_finish_with_the_current_attempt_ends_the_first_attempt(store):
    record = running(store)
    assert not store.finish(record.task_id, TaskState.FAILED, time.time(), error="E", attempt=2)
    assert store.get(record.task_id).state is TaskState.RUNNING
    assert store.finish(record.task_id, TaskState.FAILED, time.time(), error="E: one", attempt=1)
    assert store.get(record.task_id).error == "E: one"


# -- dismiss -----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ENDED_STATES)
def test_dismiss_forgets_an_ended_task_at_once(store, state):
    before = ended(store, state)
    answer = store.dismiss(before.task_id, time.time())
    assert answer is not None
    assert answer.task_id == before.task_id
    assert answer.state is state
    assert answer.error == before.error
    assert answer.progress == 1.0
    assert answer.finished == before.finished
    assert store.get(before.task_id) is None
    assert store.tombstone(before.task_id) is Gone.DISMISSED
    assert store.get_result(before.task_id) is None
    assert store.dismiss(before.task_id, time.time()) is None
    assert store.request_cancel(before.task_id, time.time()) is None
    assert record_count(store) == 0
    # A late worker cannot bring it back (a lost task's real outcome included).
    assert not store.finish(before.task_id, TaskState.SUCCEEDED, time.time(), result=2)
    assert not store.set_progress(before.task_id, 0.5, time.time())
    assert store.get(before.task_id) is None
    assert store.tombstone(before.task_id) is Gone.DISMISSED


def test_dismiss_of_a_queued_task_cancels_it_then_forgets_it(store):
    record = queued(store)
    now = time.time()
    answer = store.dismiss(record.task_id, now)
    assert answer is not None
    assert answer.state is TaskState.CANCELLED
    assert answer.error.startswith("TaskCancelled:")
    assert answer.progress == 1.0
    assert answer.finished == pytest.approx(now, abs=1e-6)
    assert answer.cancel_requested == pytest.approx(now, abs=1e-6)
    assert store.get(record.task_id) is None
    assert store.tombstone(record.task_id) is Gone.DISMISSED
    assert store.get_result(record.task_id) is None
    assert record_count(store) == 0
    assert not store.mark_running(record.task_id, time.time(), OWNER)
    assert store.dismiss(record.task_id, time.time()) is None
    assert store.tombstone(record.task_id) is Gone.DISMISSED


@pytest.mark.parametrize("end", [TaskState.CANCELLED, TaskState.SUCCEEDED, TaskState.FAILED])
def test_dismiss_of_a_running_task_cancels_it_and_forgets_it_when_it_ends(store, end):
    record = running(store)
    other = running(store)
    assert store.set_progress(record.task_id, 0.4, time.time())
    now = time.time()
    answer = store.dismiss(record.task_id, now)
    assert answer is not None
    assert answer.state is TaskState.RUNNING
    assert answer.progress == 0.4
    assert answer.cancel_requested == pytest.approx(now, abs=1e-6)
    # Gone for readers at once...
    assert store.get(record.task_id) is None
    assert store.tombstone(record.task_id) is Gone.DISMISSED
    assert store.get_result(record.task_id) is None
    assert store.dismiss(record.task_id, time.time()) is None
    assert store.request_cancel(record.task_id, time.time()) is None
    # ...but its executor still sees the cancel and stops it; no retry is queued.
    assert store.cancel_requests([record.task_id, other.task_id]) == {record.task_id}
    assert not store.requeue(record.task_id, 2, "E: x", RETRIER)
    assert record_count(store) == 2
    # Its end deletes the record; the tombstone stays 'dismissed'.
    assert store.finish(record.task_id, end, time.time(), result="late", error=f"{end.value}: E")
    assert record_count(store) == 1
    assert store.get(record.task_id) is None
    assert store.get_result(record.task_id) is None
    assert store.tombstone(record.task_id) is Gone.DISMISSED
    assert store.cancel_requests([record.task_id]) == set()
    assert not store.finish(record.task_id, TaskState.FAILED, time.time(), error="again")
    assert store.tombstone(record.task_id) is Gone.DISMISSED
    # The other task is untouched.
    got = store.get(other.task_id)
    assert got.state is TaskState.RUNNING and got.cancel_requested == 0.0


# -- expiry and tombstones ---------------------------------------------------------------------


def test_an_expired_record_leaves_an_expired_tombstone(make_store):
    store = make_store(result_ttl=1)
    done = running(store)
    assert store.finish(done.task_id, TaskState.SUCCEEDED, time.time(), result=5)
    waiting = queued(store)
    wait_until(lambda: store.get(done.task_id) is None, timeout=15, message="the record to expire")
    assert store.tombstone(done.task_id) is Gone.EXPIRED
    assert store.get_result(done.task_id) is None
    # Cancelling or dismissing it now changes nothing: it stays expired.
    assert store.request_cancel(done.task_id, time.time()) is None
    assert store.dismiss(done.task_id, time.time()) is None
    assert store.tombstone(done.task_id) is Gone.EXPIRED
    assert store.get(done.task_id) is None
    assert store.tombstone(waiting.task_id) is None
    assert store.get(waiting.task_id).state is TaskState.QUEUED


def test_tombstone_ttl_bounds_how_long_an_expired_id_answers(make_store):
    store = make_store(result_ttl=1, tombstone_ttl=1)
    record = running(store)
    assert store.finish(record.task_id, TaskState.FAILED, time.time(), error="E: x")
    wait_until(lambda: store.get(record.task_id) is None, timeout=15, message="the record to expire")
    gone_at = time.monotonic()
    assert store.tombstone(record.task_id) is Gone.EXPIRED
    wait_until(lambda: store.tombstone(record.task_id) is None, timeout=10,
               message="the tombstone to expire")
    assert time.monotonic() - gone_at < 5.0
    assert store.get(record.task_id) is None


def test_tombstone_ttl_bounds_how_long_a_dismissed_id_answers(make_store):
    store = make_store(tombstone_ttl=1)
    record = ended(store, TaskState.SUCCEEDED)
    assert store.dismiss(record.task_id, time.time()) is not None
    dismissed_at = time.monotonic()
    assert store.tombstone(record.task_id) is Gone.DISMISSED
    wait_until(lambda: store.tombstone(record.task_id) is None, timeout=10,
               message="the tombstone to expire")
    assert time.monotonic() - dismissed_at < 5.0
    assert store.get(record.task_id) is None
    assert store.dismiss(record.task_id, time.time()) is None


def test_tombstone_of_a_never_seen_or_live_id_is_none(store):
    assert store.tombstone(new_task_id()) is None
    waiting = queued(store)
    busy = running(store)
    asked = running(store)
    assert store.request_cancel(asked.task_id, time.time()) is not None
    for record in (waiting, busy, asked):
        assert store.tombstone(record.task_id) is None


# -- liveness: touched, heartbeat, health from the store ------------------------------------------


def test_set_progress_sets_touched_and_heartbeats_do_not(store):
    record = queued(store)
    started = time.time()
    assert store.mark_running(record.task_id, started, OWNER)
    got = store.get(record.task_id)
    assert got.touched == 0.0
    assert got.heartbeat == pytest.approx(started, abs=1e-6)
    reported = started + 2.0
    assert store.set_progress(record.task_id, 0.5, reported)
    got = store.get(record.task_id)
    assert got.touched == pytest.approx(reported, abs=1e-6)
    assert got.heartbeat == pytest.approx(reported, abs=1e-6)
    store.heartbeat([record.task_id], reported + 3.0)
    got = store.get(record.task_id)
    assert got.heartbeat == pytest.approx(reported + 3.0, abs=1e-6)
    assert got.touched == pytest.approx(reported, abs=1e-6)
    assert got.silent_for(reported + 4.0) == pytest.approx(4.0, abs=1e-6)


def test_a_progress_sink_sets_touched(make_store):
    store = make_store(progress_interval=60.0, heartbeat_interval=30.0, lost_after=120.0)
    record = running(store)
    before = time.time()
    sink = store.progress_sink(record.task_id)
    sink(0.25)
    sink(0.25)
    store.close_progress_sink(sink)
    got = store.get(record.task_id)
    assert got.progress == 0.25
    assert before <= got.touched <= time.time()


def test_a_stored_running_task_keeps_max_silence_for_its_health(store):
    record = TaskRecord(task_id=new_task_id(), method="S.m", created=time.time(), owner=OWNER,
                        max_silence=10.0)
    store.create(record)
    assert store.get(record.task_id).health() == ""
    started = time.time()
    assert store.mark_running(record.task_id, started, OWNER)
    got = store.get(record.task_id)
    assert got.max_silence == 10.0
    assert got.health(started + 1.0) == HEALTH_OK
    assert got.health(started + 6.0) == HEALTH_SILENT
    assert got.health(started + 10.0) == HEALTH_STALLED
    assert store.set_progress(record.task_id, 0.1, started + 8.0)
    got = store.get(record.task_id)
    assert got.silent_for(started + 12.0) == pytest.approx(4.0, abs=1e-6)
    assert got.health(started + 12.0) == HEALTH_OK
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=None)
    done = store.get(record.task_id)
    assert done.health(started + 100.0) == ""
    assert done.silent_for(started + 100.0) == 0.0


# -- TaskRecord.health and silent_for (no store) --------------------------------------------------

T0 = 1_700_000_000.0


def _running_record(max_silence: float = 0.0, touched: float = 0.0, started: float = T0) -> TaskRecord:
    return TaskRecord(task_id="t", method="S.m", state=TaskState.RUNNING, created=T0 - 1.0,
                      started=started, heartbeat=started, touched=touched, max_silence=max_silence)


@pytest.mark.parametrize("state", [TaskState.QUEUED, *ENDED_STATES])
@pytest.mark.parametrize("max_silence", [0.0, 10.0])
def test_a_task_that_is_not_running_has_no_health(state, max_silence):
    record = TaskRecord(task_id="t", method="S.m", state=state, created=T0 - 1.0, max_silence=max_silence)
    if state.done:
        record.started, record.finished, record.touched = T0, T0 + 1.0, T0 + 0.5
    assert record.silent_for(T0 + 1000.0) == 0.0
    assert record.health(T0 + 1000.0) == ""
    assert record.health() == ""


@pytest.mark.parametrize("silence", [0.0, 5.0, 10.0, 1e6])
def test_without_max_silence_a_running_task_is_always_ok(silence):
    record = _running_record()
    assert record.silent_for(T0 + silence) == pytest.approx(silence)
    assert record.health(T0 + silence) == HEALTH_OK


@pytest.mark.parametrize("silence, health", [
    (0.0, HEALTH_OK),
    (4.999, HEALTH_OK),
    (5.0, HEALTH_SILENT),
    (9.999, HEALTH_SILENT),
    (10.0, HEALTH_STALLED),
    (500.0, HEALTH_STALLED),
])
def test_health_thresholds_are_half_and_all_of_max_silence(silence, health):
    record = _running_record(max_silence=10.0)
    assert record.silent_for(T0 + silence) == pytest.approx(silence)
    assert record.health(T0 + silence) == health


def test_silence_counts_from_the_last_progress_report():
    record = _running_record(max_silence=10.0, touched=T0 + 20.0)
    assert record.silent_for(T0 + 24.0) == pytest.approx(4.0)
    assert record.health(T0 + 24.0) == HEALTH_OK
    assert record.health(T0 + 26.0) == HEALTH_SILENT
    assert record.health(T0 + 30.0) == HEALTH_STALLED


def test_a_report_older_than_the_start_does_not_count():
    record = _running_record(max_silence=10.0, touched=T0 - 50.0)
    assert record.silent_for(T0 + 3.0) == pytest.approx(3.0)
    assert record.health(T0 + 3.0) == HEALTH_OK


def test_silent_for_is_never_negative():
    record = _running_record(max_silence=10.0, touched=T0 + 5.0)
    assert record.silent_for(T0 + 1.0) == 0.0
    assert record.health(T0 + 1.0) == HEALTH_OK


def test_a_running_record_without_a_start_is_not_silent():
    record = _running_record(max_silence=10.0, started=0.0)
    assert record.silent_for(T0) == 0.0
    assert record.health(T0) == HEALTH_OK


def test_silent_for_and_health_default_to_now():
    now = time.time()
    record = _running_record(max_silence=10.0, started=now - 30.0)
    assert 30.0 <= record.silent_for() < 60.0
    assert record.health() == HEALTH_STALLED
    fresh = _running_record(max_silence=10.0, started=now - 30.0, touched=time.time())
    assert fresh.silent_for() < 5.0
    assert fresh.health() == HEALTH_OK


def test_snapshot_copies_the_lifecycle_fields_but_not_the_result():
    record = TaskRecord(task_id="t", method="S.m", state=TaskState.RUNNING, progress=0.5, created=T0,
                        started=T0 + 1, error="E: before", owner="o:1", heartbeat=T0 + 2, attempt=3,
                        cancel_requested=T0 + 3, touched=T0 + 4, max_silence=9.0, result={"x": 1})
    copy = snapshot(record)
    assert copy is not record
    assert copy.result is None
    assert (copy.attempt, copy.cancel_requested, copy.touched, copy.max_silence) == (3, T0 + 3, T0 + 4, 9.0)
    assert (copy.state, copy.progress, copy.error, copy.owner, copy.heartbeat) == (
        TaskState.RUNNING, 0.5, "E: before", "o:1", T0 + 2)


# -- RedisStore only ------------------------------------------------------------------------


@pytest.fixture
def two_redis_stores(redis_url: str) -> Iterator[tuple[RedisStore, RedisStore]]:
    """Two server processes' stores on the same Redis."""
    stores = (RedisStore(redis_url), RedisStore(redis_url))
    for one in stores:
        one.register_owner(OWNER, 3600)
    yield stores
    for one in stores:
        one.close()


def test_the_ended_cache_does_not_hide_another_processs_dismissal_for_long(two_redis_stores):
    here, there = two_redis_stores
    record = running(here)
    assert here.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result={"v": 2})
    # The other process reads the ended task (and keeps its copy)...
    assert there.get(record.task_id).state is TaskState.SUCCEEDED
    assert there.get_result(record.task_id) == {"v": 2}
    # ...then this one dismisses it.
    assert here.dismiss(record.task_id, time.time()).state is TaskState.SUCCEEDED
    dismissed_at = time.monotonic()
    assert here.get(record.task_id) is None
    wait_until(lambda: there.get(record.task_id) is None and there.get_result(record.task_id) is None,
               timeout=ENDED_CACHE_SECONDS + 5.0, interval=0.01,
               message="the other store to see the dismissal")
    assert time.monotonic() - dismissed_at <= ENDED_CACHE_SECONDS + 0.5
    assert there.tombstone(record.task_id) is Gone.DISMISSED
    assert there.dismiss(record.task_id, time.time()) is None


def test_a_subscribed_process_keeps_its_copy_until_a_dismissal_is_published(two_redis_stores, raw_redis):
    here, there = two_redis_stores
    record = running(here)
    assert there.get(record.task_id).state is TaskState.RUNNING  # starts its listener
    wait_until(lambda: there._dismissals.live, message="the other store to subscribe")
    assert here.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=3)
    assert there.get(record.task_id).state is TaskState.SUCCEEDED  # its copy, from now on
    # Changed behind both stores' backs: only a copy can still say "succeeded" with no error,
    # and it does for longer than the short life a copy has without the subscription.
    raw_redis.hset(f"ladon_tasks:task:{record.task_id}", "error", "changed in Redis")
    watched_until = time.monotonic() + ENDED_CACHE_SECONDS + 0.5
    while time.monotonic() < watched_until:
        assert there.get(record.task_id).error == ""
        time.sleep(0.05)
    assert here.dismiss(record.task_id, time.time()) is not None
    wait_until(lambda: there.get(record.task_id) is None, timeout=10, interval=0.01,
               message="the published dismissal to reach the other store")


def test_a_dismissal_is_seen_at_once_by_the_store_that_made_it(two_redis_stores):
    here, _ = two_redis_stores
    record = running(here)
    assert here.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=7)
    assert here.get(record.task_id).state is TaskState.SUCCEEDED  # cached here now
    assert here.get_result(record.task_id) == 7
    assert here.dismiss(record.task_id, time.time()) is not None
    assert here.get(record.task_id) is None
    assert here.get_result(record.task_id) is None


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_lifecycle_keys_all_have_ttls(redis_url, raw_redis):
    store = RedisStore(redis_url, result_ttl=60, tombstone_ttl=30)
    try:
        store.register_owner(OWNER, 3600)
        store.register_owner(RETRIER, 3600)
        dismissed_running = running(store)
        assert store.dismiss(dismissed_running.task_id, time.time()) is not None
        dismissed_ended = ended(store, TaskState.FAILED)
        assert store.dismiss(dismissed_ended.task_id, time.time()) is not None
        cancelled = ended(store, TaskState.CANCELLED)
        retried = running(store)
        assert store.requeue(retried.task_id, 2, "E: x", RETRIER)
        keys = list(raw_redis.scan_iter(match="*"))
        assert len(keys) >= 6
        for key in keys:
            assert raw_redis.ttl(key) > 0, key
        assert 0 < raw_redis.ttl(store.key("gone", dismissed_ended.task_id)) <= 30
        assert 0 < raw_redis.ttl(store.key("gone", dismissed_running.task_id)) <= 30
        assert 0 < raw_redis.ttl(store.key("task", cancelled.task_id)) <= 60
        assert raw_redis.ttl(store.key("task", retried.task_id)) > 60
    finally:
        store.close()


def test_a_task_queued_again_after_it_was_lost_gets_the_live_ttl_back(redis_url, raw_redis):
    store = RedisStore(redis_url, result_ttl=60)
    try:
        store.register_owner(OWNER, 3600)
        record = running(store)
        assert store.finish(record.task_id, TaskState.LOST, time.time(), error="TaskLost: gone")
        assert 0 < raw_redis.ttl(store.key("task", record.task_id)) <= 60
        assert store.requeue(record.task_id, 2, "TaskLost: gone", OWNER)
        assert store.get(record.task_id).state is TaskState.QUEUED
        assert raw_redis.ttl(store.key("task", record.task_id)) > 60, "queued again with the result TTL"
    finally:
        store.close()


# -- callers: a task bound to who started it ------------------------------------------------


def _bound(store: TaskStore, caller: str) -> TaskRecord:
    record = TaskRecord(task_id=new_task_id(), method="Service.method", created=time.time(),
                        owner=OWNER, caller=caller)
    store.create(record)
    return record


def test_a_tasks_caller_is_kept_through_its_life_and_in_its_tombstones(make_store):
    store = make_store(result_ttl=1)
    alice = _bound(store, "alice|with:odd chars \u00e9")
    assert store.get(alice.task_id).caller == "alice|with:odd chars \u00e9"
    assert store.mark_running(alice.task_id, time.time(), OWNER)
    assert store.finish(alice.task_id, TaskState.SUCCEEDED, time.time(), result=1)
    assert store.get(alice.task_id).caller == "alice|with:odd chars \u00e9"
    wait_until(lambda: store.get(alice.task_id) is None, timeout=15, message="the record to expire")
    assert store.gone(alice.task_id) == (Gone.EXPIRED, "alice|with:odd chars \u00e9")
    assert store.tombstone(alice.task_id) is Gone.EXPIRED

    bob = _bound(store, "bob")
    assert store.dismiss(bob.task_id, time.time()).caller == "bob"
    assert store.gone(bob.task_id) == (Gone.DISMISSED, "bob")

    running_bob = _bound(store, "bob")
    assert store.mark_running(running_bob.task_id, time.time(), OWNER)
    store.dismiss(running_bob.task_id, time.time())  # forgotten once it ends
    store.finish(running_bob.task_id, TaskState.CANCELLED, time.time())
    assert store.gone(running_bob.task_id) == (Gone.DISMISSED, "bob")

    nobody = _bound(store, "")
    store.dismiss(nobody.task_id, time.time())
    assert store.gone(nobody.task_id) == (Gone.DISMISSED, "")
    assert store.gone(new_task_id()) is None


def test_a_retry_elsewhere_drops_the_other_processs_copy_of_the_ended_task(two_redis_stores):
    here, there = two_redis_stores
    record = running(here)
    assert here.finish(record.task_id, TaskState.FAILED, time.time(), error="ValueError: once")
    assert there.get(record.task_id).state is TaskState.FAILED  # starts its listener
    wait_until(lambda: there._dismissals.live, message="the other store to subscribe")
    assert there.get(record.task_id).state is TaskState.FAILED  # its copy: kept for result_ttl
    assert here.retry(record.task_id, 2, OWNER)
    again = wait_until(lambda: (found := there.get(record.task_id)).state is TaskState.QUEUED and found,
                       timeout=10, interval=0.01, message="the published retry to reach the other store")
    assert (again.attempt, again.error) == (2, "")


def test_a_read_on_its_way_while_a_copy_is_dropped_keeps_nothing():
    """What a read brings back from Redis may be older than the change that dropped a copy
    meanwhile (a dismissal, a retry, an end): it is answered, but not kept."""
    record = TaskRecord(task_id=new_task_id(), method="Service.method", created=time.time())
    live = LiveCopies()
    since = live.generation
    live.forget("another task")
    live.keep(record, since)
    assert live.get(record.task_id) is None
    live.keep(record, live.generation)
    assert live.get(record.task_id).task_id == record.task_id
    ended = EndedCopies()
    since = ended.generation
    ended.forget_all()
    ended.keep(record, '"result"', time.time() + 60, since)
    assert ended.entry(record.task_id) is None
    ended.keep(record, '"result"', time.time() + 60, ended.generation)
    assert ended.entry(record.task_id)[1] == '"result"'
