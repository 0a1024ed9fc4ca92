"""What administrators do through every store: retry an ended task, pause and resume
methods, unique starts, and the metrics' counts; the same behaviour in memory and Redis."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import OWNER
from test_store_listing import made

from ladon_tasks.exceptions import TaskPaused
from ladon_tasks.ids import new_task_id
from ladon_tasks.metrics import DURATION_BUCKETS
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.task import ALL_METHODS, TaskRecord, TaskState

METHOD = "Images.crop"


def ended_as(store: TaskStore, state: TaskState, method: str = METHOD) -> TaskRecord:
    record = made(store, method)
    if state is TaskState.CANCELLED:
        store.request_cancel(record.task_id, time.time())
        return record
    assert store.mark_running(record.task_id, time.time(), OWNER)
    assert store.finish(record.task_id, state, time.time(), result=1, error=f"{state.value}!")
    return record


# -- retry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [TaskState.FAILED, TaskState.LOST, TaskState.CANCELLED])
def test_an_ended_task_is_queued_again_as_its_next_attempt(store, state):
    record = ended_as(store, state)
    assert store.retry(record.task_id, 2, OWNER)
    again = store.get(record.task_id)
    assert (again.state, again.attempt, again.error, again.progress) == (TaskState.QUEUED, 2, "", 0.0)
    assert (again.started, again.finished, again.cancel_requested) == (0.0, 0.0, 0.0)
    assert (again.method, again.caller, again.created) == (record.method, record.caller, record.created)
    assert store.retry(record.task_id, 2, OWNER), "the same call again (a retried write) succeeds"
    assert store.mark_running(record.task_id, time.time(), OWNER)
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=7, attempt=2)
    assert store.get_result(record.task_id) == 7


def test_a_retry_is_refused_unless_the_task_ended_without_success(store):
    queued = made(store)
    succeeded = ended_as(store, TaskState.SUCCEEDED)
    failed = ended_as(store, TaskState.FAILED)
    assert not store.retry(queued.task_id, 2, OWNER)
    assert not store.retry(succeeded.task_id, 2, OWNER)
    assert not store.retry(failed.task_id, 3, OWNER), "only its next attempt"
    assert not store.retry(new_task_id(), 2, OWNER)
    store.dismiss(failed.task_id, time.time())
    assert not store.retry(failed.task_id, 2, OWNER)


def test_two_retries_of_one_attempt_queue_it_once(store):
    record = ended_as(store, TaskState.FAILED)
    assert store.retry(record.task_id, 2, "server:1")
    assert not store.retry(record.task_id, 2, "server:2")


def test_a_retried_task_is_listed_as_queued_and_lives_again(make_store):
    store = make_store(result_ttl=1)
    record = ended_as(store, TaskState.FAILED)
    assert store.retry(record.task_id, 2, OWNER)
    time.sleep(1.3)  # past the ended record's TTL: the retried one must not expire with it
    assert store.get(record.task_id).state is TaskState.QUEUED
    from ladon_tasks.listing import TaskQuery

    assert [r.task_id for r in store.list_tasks(TaskQuery(state=TaskState.QUEUED))] == [record.task_id]
    assert store.list_tasks(TaskQuery(state=TaskState.FAILED)) == []


# -- pause ----------------------------------------------------------------------------------


def test_a_paused_method_accepts_tasks_but_starts_none(store):
    store.pause(METHOD, 1000.0)
    held = made(store, METHOD)
    other = made(store, "Images.rotate")
    with pytest.raises(TaskPaused):
        store.mark_running(held.task_id, time.time(), OWNER)
    assert store.get(held.task_id).state is TaskState.QUEUED
    assert store.mark_running(other.task_id, time.time(), OWNER)
    assert store.paused() == {METHOD: 1000.0}
    store.pause(METHOD, 2000.0)
    assert store.paused() == {METHOD: 1000.0}, "paused since the first pause"
    store.resume(METHOD)
    assert store.paused() == {}
    assert store.mark_running(held.task_id, time.time(), OWNER)


def test_a_pause_of_every_method_holds_them_all_until_resumed(store):
    store.pause(ALL_METHODS, 5.0)
    store.pause(METHOD, 6.0)
    record = made(store, "Any.method")
    with pytest.raises(TaskPaused):
        store.mark_running(record.task_id, time.time(), OWNER)
    store.resume(None)
    assert store.paused() == {}
    assert store.mark_running(record.task_id, time.time(), OWNER)


def test_a_pause_does_not_stop_a_running_task(store):
    record = made(store, METHOD)
    started = time.time()
    assert store.mark_running(record.task_id, started, OWNER)
    store.pause(ALL_METHODS, time.time())
    assert store.mark_running(record.task_id, started, OWNER), "a retried start write still succeeds"
    assert store.set_progress(record.task_id, 0.5, time.time())
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=1)


# -- unique ---------------------------------------------------------------------------------


def unique_record(method: str = METHOD) -> TaskRecord:
    return TaskRecord(task_id=new_task_id(), method=method, created=time.time(), owner=OWNER)


def test_a_unique_start_answers_the_task_still_queued_or_running(store):
    first = unique_record()
    assert store.create(first, unique="k1") == first.task_id
    second = unique_record()
    assert store.create(second, unique="k1") == first.task_id
    assert store.get(second.task_id) is None, "nothing written for the second"
    assert store.mark_running(first.task_id, time.time(), OWNER)
    assert store.create(unique_record(), unique="k1") == first.task_id
    other = unique_record()
    assert store.create(other, unique="k2") == other.task_id
    assert store.finish(first.task_id, TaskState.SUCCEEDED, time.time(), result=1)
    third = unique_record()
    assert store.create(third, unique="k1") == third.task_id, "an ended task holds its key no more"


def test_a_cancelled_or_dismissed_unique_task_frees_its_key(store):
    first = unique_record()
    store.create(first, unique="k")
    store.request_cancel(first.task_id, time.time())
    second = unique_record()
    assert store.create(second, unique="k") == second.task_id
    store.dismiss(second.task_id, time.time())
    third = unique_record()
    assert store.create(third, unique="k") == third.task_id


def test_unique_starts_from_many_threads_make_one_task(store):
    records = [unique_record() for _ in range(16)]
    answers: list[str] = []
    barrier = threading.Barrier(len(records))

    def start(record: TaskRecord) -> None:
        barrier.wait()
        answers.append(store.create(record, unique="same"))

    threads = [threading.Thread(target=start, args=(record,)) for record in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(answers)) == 1
    assert sum(store.get(record.task_id) is not None for record in records) == 1


# -- metrics --------------------------------------------------------------------------------


def test_the_metrics_count_every_change_of_state(store):
    for state in (TaskState.SUCCEEDED, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.LOST):
        ended_as(store, state)
    cancelled = ended_as(store, TaskState.CANCELLED)
    store.retry(cancelled.task_id, 2, OWNER)
    running = made(store, METHOD)
    store.mark_running(running.task_id, time.time(), OWNER)
    made(store, METHOD)
    made(store, "Other.method")
    counts = store.metrics()
    assert set(counts) == {METHOD, "Other.method"}
    crop = counts[METHOD]
    assert crop.events == {"started": 5, "succeeded": 2, "failed": 1, "cancelled": 1, "lost": 1,
                           "retried": 1}
    assert (crop.queued, crop.running) == (2, 1), "the retried one and a new one queued"
    assert crop.runs == 4 and len(crop.buckets) == len(DURATION_BUCKETS) + 1
    assert crop.buckets[0] == 4, "runs of a few microseconds fall in the first bucket"
    assert 0 <= crop.duration_sum < 1
    assert (counts["Other.method"].queued, counts["Other.method"].events["started"]) == (1, 0)


def test_the_gauges_follow_the_tasks_to_their_end(store):
    record = made(store, METHOD)
    store.mark_running(record.task_id, time.time(), OWNER)
    assert (store.metrics()[METHOD].queued, store.metrics()[METHOD].running) == (0, 1)
    store.request_cancel(record.task_id, time.time())
    store.finish(record.task_id, TaskState.CANCELLED, time.time())
    counts = store.metrics()[METHOD]
    assert (counts.queued, counts.running, counts.events["cancelled"]) == (0, 0, 1)


def test_an_attempt_queued_again_is_timed_as_a_run(store):
    record = made(store, METHOD)
    assert store.mark_running(record.task_id, time.time(), OWNER)
    assert store.requeue(record.task_id, 2, "attempt 1 failed", OWNER)
    counts = store.metrics()[METHOD]
    assert (counts.runs, counts.events["retried"], counts.queued, counts.running) == (1, 1, 1, 0)


def test_two_spellings_of_one_redis_database_are_one_location():
    from ladon_tasks.stores.redis import RedisStore

    stores = [RedisStore(url) for url in ("redis://127.0.0.1:6390", "redis://127.0.0.1:6390/0",
                                          "redis://127.0.0.1:6390/1")]
    stores.append(RedisStore("redis://127.0.0.1:6390/0", key_prefix="elsewhere"))
    try:  # no connection is made: where a store's data lives is told by its URL
        places = [store.location() for store in stores]
        assert places[0] == places[1] and len(set(places)) == 3
    finally:
        for store in stores:
            store.close()
