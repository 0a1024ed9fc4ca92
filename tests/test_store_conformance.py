"""One conformance suite for every TaskStore backend, then what only RedisStore promises."""

from __future__ import annotations

import json
import time
from typing import Iterator

import pytest
import redis
from conftest import OWNER, free_port  # noqa: E402
from helpers import wait_until

from ladon_tasks import ResultTooLarge, StoreUnavailable, TaskRecord, TaskState
from ladon_tasks.ids import new_task_id
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.stores.redis import RedisStore, iter_task_keys


def queued(store: TaskStore, method: str = "Service.method") -> TaskRecord:
    record = TaskRecord(task_id=new_task_id(), method=method, created=time.time(), owner=OWNER)
    store.create(record)
    return record


def running(store: TaskStore) -> TaskRecord:
    record = queued(store)
    assert store.mark_running(record.task_id, time.time(), OWNER)
    return record


def _state(store: TaskStore, task_id: str) -> TaskState | None:
    record = store.get(task_id)
    return None if record is None else record.state


# -- conformance: every backend ---------------------------------------------------------------


def test_create_then_get(store):
    created = time.time()
    record = TaskRecord(task_id=new_task_id(), method="Calc.add", created=created, owner=OWNER)
    store.create(record)
    got = store.get(record.task_id)
    assert got is not None
    assert got.task_id == record.task_id
    assert got.method == "Calc.add"
    assert got.state is TaskState.QUEUED
    assert got.progress == 0.0
    assert got.created == pytest.approx(created, abs=1e-6)
    assert got.started == 0.0 and got.finished == 0.0
    assert got.error == ""
    assert got.duration == 0.0
    assert got.result is None


def test_get_unknown_is_none(store):
    assert store.get(new_task_id()) is None


def test_get_returns_a_copy(store):
    record = queued(store)
    copy = store.get(record.task_id)
    copy.state = TaskState.FAILED
    copy.progress = 0.9
    assert store.get(record.task_id).state is TaskState.QUEUED
    assert store.get(record.task_id).progress == 0.0


def test_mark_running_only_from_queued(store):
    record = queued(store)
    started = time.time()
    assert store.mark_running(record.task_id, started, "worker:2")
    got = store.get(record.task_id)
    assert got.state is TaskState.RUNNING
    assert got.started == pytest.approx(started, abs=1e-6)
    assert got.progress == 0.0
    assert got.owner == "worker:2"
    # The very same call again succeeds (a write retried after its reply was lost) ...
    assert store.mark_running(record.task_id, started, "worker:2")
    assert store.get(record.task_id).started == pytest.approx(started, abs=1e-6)
    # ... but no other start, and none after the end.
    assert not store.mark_running(record.task_id, started + 1, "worker:2")
    assert not store.mark_running(record.task_id, time.time(), "worker:3")
    assert store.get(record.task_id).owner == "worker:2"
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=1)
    assert not store.mark_running(record.task_id, time.time(), "worker:3")
    assert store.get(record.task_id).state is TaskState.SUCCEEDED


def test_set_progress_while_running(store):
    record = queued(store)
    assert not store.set_progress(record.task_id, 0.5, time.time())  # still queued
    assert store.get(record.task_id).progress == 0.0
    assert store.mark_running(record.task_id, time.time(), OWNER)
    for value in (0.25, 0.5, 0.75):
        assert store.set_progress(record.task_id, value, time.time())
        assert store.get(record.task_id).progress == value
    assert store.finish(record.task_id, TaskState.FAILED, time.time(), error="E: x")
    assert not store.set_progress(record.task_id, 0.9, time.time())
    assert store.get(record.task_id).progress == 1.0


def test_finish_succeeded(store):
    record = running(store)
    finished = time.time()
    assert store.finish(record.task_id, TaskState.SUCCEEDED, finished, result={"a": [1, 2]})
    got = store.get(record.task_id)
    assert got.state is TaskState.SUCCEEDED
    assert got.state.done
    assert got.progress == 1.0
    assert got.finished == pytest.approx(finished, abs=1e-6)
    assert got.error == ""
    assert got.result is None  # get() never carries the result
    assert store.get_result(record.task_id) == {"a": [1, 2]}


def test_finish_failed(store):
    record = running(store)
    assert store.set_progress(record.task_id, 0.4, time.time())
    assert store.finish(record.task_id, TaskState.FAILED, time.time(), error="ValueError: bad input")
    got = store.get(record.task_id)
    assert got.state is TaskState.FAILED
    assert got.error == "ValueError: bad input"
    assert got.progress == 1.0  # Ladon's contract: 1.0 once ended, however it ended
    assert store.get_result(record.task_id) is None


def test_finish_a_queued_task_sets_its_start(store):
    record = queued(store)
    finished = time.time()
    assert store.finish(record.task_id, TaskState.LOST, finished, error="TaskLost: gone")
    got = store.get(record.task_id)
    assert got.state is TaskState.LOST
    assert got.started == pytest.approx(finished, abs=1e-6)
    assert got.duration == 0.0
    assert got.progress == 1.0


def test_writes_to_unknown_ids_return_false_and_create_nothing(store):
    task_id = new_task_id()
    assert store.mark_running(task_id, time.time(), OWNER) is False
    assert store.set_progress(task_id, 0.5, time.time()) is False
    store.heartbeat([task_id], time.time())
    assert store.finish(task_id, TaskState.SUCCEEDED, time.time(), result=1) is False
    assert store.finish(task_id, TaskState.LOST, time.time(), error="TaskLost") is False
    assert store.get(task_id) is None
    assert store.get_result(task_id) is None


@pytest.mark.parametrize("first, second", [
    (TaskState.SUCCEEDED, TaskState.FAILED),
    (TaskState.SUCCEEDED, TaskState.SUCCEEDED),
    (TaskState.SUCCEEDED, TaskState.LOST),
    (TaskState.FAILED, TaskState.SUCCEEDED),
    (TaskState.FAILED, TaskState.FAILED),
    (TaskState.FAILED, TaskState.LOST),
])
def test_finish_is_final(store, first, second):
    record = running(store)
    assert store.finish(record.task_id, first, time.time(), result="first", error="first")
    first_record = store.get(record.task_id)
    assert not store.finish(record.task_id, second, time.time() + 5, result="second", error="second")
    got = store.get(record.task_id)
    assert got.state is first
    assert got.error == first_record.error
    assert got.finished == first_record.finished
    if first is TaskState.SUCCEEDED:
        assert store.get_result(record.task_id) == "first"


def test_lost_cannot_be_lost_twice(store):
    record = running(store)
    assert store.finish(record.task_id, TaskState.LOST, time.time(), error="TaskLost: one")
    assert not store.finish(record.task_id, TaskState.LOST, time.time(), error="TaskLost: two")
    assert store.get(record.task_id).error == "TaskLost: one"


def test_results_are_readable_repeatedly(store):
    record = running(store)
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=[1, "two", 3.5])
    for _ in range(5):
        assert store.get_result(record.task_id) == [1, "two", 3.5]
        assert store.get(record.task_id).state is TaskState.SUCCEEDED


@pytest.mark.parametrize("value", [0, 0.0, "", False, [], {}, None])
def test_falsy_results_are_kept(store, value):
    record = running(store)
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=value)
    got = store.get_result(record.task_id)
    assert got == value
    assert type(got) is type(value)


def test_finished_records_expire(make_store):
    store = make_store(result_ttl=1)
    done = running(store)
    assert store.finish(done.task_id, TaskState.SUCCEEDED, time.time(), result=5)
    failed = running(store)
    assert store.finish(failed.task_id, TaskState.FAILED, time.time(), error="E: x")
    waiting = queued(store)
    assert store.get_result(done.task_id) == 5
    wait_until(lambda: store.get(done.task_id) is None and store.get(failed.task_id) is None,
               timeout=15, message="finished records to expire")
    assert store.get_result(done.task_id) is None
    # An expired task is never resurrected by a late write.
    assert not store.finish(done.task_id, TaskState.SUCCEEDED, time.time(), result=6)
    assert not store.set_progress(done.task_id, 0.5, time.time())
    assert store.get(done.task_id) is None
    # Tasks that have not ended do not expire with the result TTL.
    assert store.get(waiting.task_id).state is TaskState.QUEUED


def test_messages_are_kept_until_the_next_attempt_and_after_the_end(make_store):
    store = make_store()
    record = running(store)
    sink = store.progress_sink(record.task_id)
    sink(0.2, "reading")
    sink(0.3)  # a value without a message keeps the last message
    store.close_progress_sink(sink)
    got = store.get(record.task_id)
    assert (got.progress, got.message) == (0.3, "reading")
    assert store.set_progress(record.task_id, 0.5, time.time(), "writing")
    assert store.get(record.task_id).message == "writing"
    assert store.set_progress(record.task_id, 0.6, time.time())
    assert store.get(record.task_id).message == "writing"
    assert store.requeue(record.task_id, 2, "again", OWNER)
    assert store.get(record.task_id).message == ""  # a new attempt says nothing yet
    assert store.mark_running(record.task_id, time.time(), OWNER)
    assert store.set_progress(record.task_id, 0.9, time.time(), "last words")
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=1, attempt=2)
    assert store.get(record.task_id).message == "last words"


def test_a_progress_write_keeps_when_the_task_said_it(store):
    record = running(store)
    now = time.time()
    assert store.set_progress(record.task_id, 0.4, now, reported=now - 3.0)
    got = store.get(record.task_id)
    assert got.progress == 0.4
    assert got.touched == pytest.approx(now - 3.0, abs=1e-6) and got.heartbeat == pytest.approx(now, abs=1e-6)
    assert store.set_progress(record.task_id, 0.5, now + 1.0)  # no report time: the write's
    assert store.get(record.task_id).touched == pytest.approx(now + 1.0, abs=1e-6)


def test_a_coalesced_report_is_dated_at_the_call_not_at_the_write(make_store):
    store = make_store(progress_interval=3600.0)  # Redis: nothing written until the sink closes
    record = running(store)
    sink = store.progress_sink(record.task_id)
    said = time.time()
    sink(0.4)
    wait_until(lambda: time.time() > said + 0.3, message="the clock to move on")
    store.close_progress_sink(sink)
    got = store.get(record.task_id)
    assert got.progress == 0.4
    assert said <= got.touched < said + 0.3


def test_successful_durations_make_the_history_of_their_method(make_store):
    from ladon_tasks.estimate import HISTORY

    store = make_store()
    assert store.durations("S.slow") == []
    for seconds in range(1, HISTORY + 3):
        record = queued(store, "S.slow")
        started = time.time() - seconds
        assert store.mark_running(record.task_id, started, OWNER)
        assert store.finish(record.task_id, TaskState.SUCCEEDED, started + seconds, result=1)
    failed = running(store)
    assert store.finish(failed.task_id, TaskState.FAILED, time.time(), error="E: x")
    fresh = make_store()  # another process: no copy of its own yet
    durations = fresh.durations("S.slow") if isinstance(store, RedisStore) else store.durations("S.slow")
    assert durations == pytest.approx([float(s) for s in range(HISTORY + 2, 2, -1)], abs=1e-3)
    assert store.durations("Service.method") == []  # failures are no history


def test_a_job_is_kept_with_its_record_and_goes_with_it(store):
    job = {"entry": "module:function", "payload": {"args": [1, "two", [3.5]]}, "policy": {"retries": 2}}
    record = TaskRecord(task_id=new_task_id(), method="S.m", created=time.time(), owner=OWNER)
    store.create(record, job)
    assert store.get_job(record.task_id) == job
    read, read_job = store.get_with_job(record.task_id)
    assert (read.task_id, read.state, read_job) == (record.task_id, TaskState.QUEUED, job)
    assert store.get_with_job(new_task_id()) == (None, None)
    assert store.mark_running(record.task_id, time.time(), OWNER)
    assert store.finish(record.task_id, TaskState.FAILED, time.time(), error="E: x")
    assert store.get_job(record.task_id) == job  # an ended task keeps it, to run it again
    assert store.get_job(queued(store).task_id) is None  # created without one
    assert store.get_job(new_task_id()) is None
    assert store.dismiss(record.task_id, time.time()) is not None
    assert store.get_job(record.task_id) is None


def test_a_job_expires_with_its_record(make_store):
    store = make_store(result_ttl=1)
    record = TaskRecord(task_id=new_task_id(), method="S.m", created=time.time(), owner=OWNER)
    store.create(record, {"entry": "m:f"})
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=1)
    wait_until(lambda: store.get(record.task_id) is None, timeout=15, message="the record to expire")
    assert store.get_job(record.task_id) is None


def test_progress_sink_and_close_flush_the_final_value(make_store):
    # A long progress interval: only the close can write the last value in time.
    store = make_store(progress_interval=60.0, heartbeat_interval=30.0, lost_after=120.0)
    record = running(store)
    sink = store.progress_sink(record.task_id)
    for step in range(1, 1001):
        sink(step / 2000.0)
    sink(0.75)
    store.close_progress_sink(sink)
    assert store.get(record.task_id).progress == 0.75
    assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=None)
    assert store.get(record.task_id).progress == 1.0


def test_progress_sink_reaches_the_record_while_running(make_store):
    store = make_store(progress_interval=0.05, heartbeat_interval=0.1, lost_after=10.0)
    record = running(store)
    sink = store.progress_sink(record.task_id)
    sink(0.3)
    wait_until(lambda: store.get(record.task_id).progress == 0.3, timeout=10,
               message="progress to reach the store")
    sink(0.6)
    wait_until(lambda: store.get(record.task_id).progress == 0.6, timeout=10,
               message="progress to reach the store")
    store.close_progress_sink(sink)


def test_many_tasks_do_not_mix(store):
    records = [running(store) for _ in range(20)]
    for index, record in enumerate(records):
        assert store.set_progress(record.task_id, index / 20.0, time.time())
    for index, record in enumerate(records):
        if index % 2:
            assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=index)
    for index, record in enumerate(records):
        got = store.get(record.task_id)
        if index % 2:
            assert got.state is TaskState.SUCCEEDED and store.get_result(record.task_id) == index
        else:
            assert got.state is TaskState.RUNNING and got.progress == index / 20.0


def test_a_result_over_max_result_bytes_is_refused_and_the_task_still_runs(make_store):
    store = make_store(max_result_bytes=1000)
    record = running(store)
    for value in ("x" * 1000, ["y" * 10] * 100, {"k": "z" * 999}):
        with pytest.raises(ResultTooLarge, match=r"^ResultTooLarge: .*\(max_result_bytes\)$"):
            store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=value)
        got = store.get(record.task_id)
        assert got.state is TaskState.RUNNING and got.result is None
    # The task can still end: failed, with the refusal as its error, or with a smaller result.
    assert store.finish(record.task_id, TaskState.FAILED, time.time(), error="ResultTooLarge: ...")
    assert store.get(record.task_id).state is TaskState.FAILED
    small = running(store)
    assert store.finish(small.task_id, TaskState.SUCCEEDED, time.time(), result="x" * 900)
    assert store.get_result(small.task_id) == "x" * 900


# -- RedisStore only ------------------------------------------------------------------------


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url, result_ttl=60, progress_interval=0.05, heartbeat_interval=0.1,
                       lost_after=0.5)
    store.register_owner(OWNER, 3600)
    yield store
    store.close()


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_every_redis_key_has_a_ttl(redis_store, raw_redis):
    records = [queued(redis_store) for _ in range(3)]
    assert redis_store.mark_running(records[1].task_id, time.time(), OWNER)
    assert redis_store.mark_running(records[2].task_id, time.time(), OWNER)
    assert redis_store.set_progress(records[1].task_id, 0.5, time.time())
    redis_store.heartbeat([records[1].task_id], time.time())
    assert redis_store.finish(records[2].task_id, TaskState.SUCCEEDED, time.time(), result={"x": 1})
    redis_store.register_owner("other:2", 30)
    keys = list(raw_redis.scan_iter(match="*"))
    assert len(keys) >= 5
    for key in keys:
        assert raw_redis.ttl(key) > 0, key
    # A finished record lives result_ttl, a live one much longer (refreshed by heartbeats).
    finished_ttl = raw_redis.ttl(redis_store.key("task", records[2].task_id))
    live_ttl = raw_redis.ttl(redis_store.key("task", records[1].task_id))
    assert 0 < finished_ttl <= 60 < live_ttl


def test_a_running_unique_tasks_key_lives_as_long_as_its_record(redis_store, raw_redis):
    record = TaskRecord(task_id=new_task_id(), method="Service.method", created=time.time(), owner=OWNER)
    assert redis_store.create(record, unique="k") == record.task_id
    assert redis_store.mark_running(record.task_id, time.time(), OWNER)
    unique_key = redis_store.key("unique", "k")
    task_key = redis_store.key("task", record.task_id)
    raw_redis.expire(unique_key, 5)  # as if it had run for almost all of live_ttl
    raw_redis.expire(task_key, 5)
    redis_store.heartbeat([record.task_id], time.time())
    assert raw_redis.ttl(unique_key) > 3600 and raw_redis.ttl(task_key) > 3600
    assert redis_store.create(TaskRecord(task_id=new_task_id(), method="Service.method",
                                         created=time.time(), owner=OWNER), unique="k") == record.task_id


def test_this_processs_heartbeat_drops_its_copy_of_the_running_task(redis_store):
    record = running(redis_store)
    redis_store.get(record.task_id)
    wait_until(lambda: redis_store._dismissals.live, message="the store to subscribe")
    # Read again once subscribed, so this read is kept as a copy: the start's heartbeat.
    assert redis_store.get(record.task_id).heartbeat < record.created + 60
    beat = time.time() + 60.0
    redis_store.heartbeat([record.task_id], beat)
    assert redis_store.get(record.task_id).heartbeat == pytest.approx(beat, abs=1e-6)


def test_keys_use_the_prefix(redis_url, raw_redis):
    store = RedisStore(redis_url, key_prefix="myapp")
    try:
        store.register_owner(OWNER, 60)
        record = queued(store)
        keys = sorted(key.decode() for key in raw_redis.scan_iter(match="*"))
        assert keys == ["myapp:index:live", f"myapp:owner:{OWNER}", f"myapp:task:{record.task_id}"]
        assert list(iter_task_keys(store)) == [f"myapp:task:{record.task_id}"]
    finally:
        store.close()


def test_values_are_json_never_pickles(redis_store, raw_redis):
    record = running(redis_store)
    result = {"name": "x", "items": [1, 2.5, True, None], "nested": {"k": "ü"}}
    assert redis_store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=result)
    fields = raw_redis.hgetall(redis_store.key("task", record.task_id))
    assert fields
    for name, value in fields.items():
        assert not value.startswith(b"\x80"), (name, value)  # the pickle protocol marker
        value.decode("utf-8")
    assert json.loads(fields[b"result"]) == result
    assert fields[b"state"] == b"succeeded"
    float(fields[b"progress"])
    float(fields[b"created"])


def test_a_result_json_cannot_hold_is_refused_not_stored(redis_store):
    record = running(redis_store)
    for value in (float("nan"), float("inf"), {1, 2}, object()):
        with pytest.raises((TypeError, ValueError)):
            redis_store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=value)
    assert redis_store.get(record.task_id).state is TaskState.RUNNING


def test_running_task_without_heartbeats_reads_lost(redis_store, redis_url):
    # Its server process is gone (never registered) and its worker sends no heartbeat.
    record = queued(redis_store)
    assert redis_store.mark_running(record.task_id, time.time(), "gone:99")
    assert redis_store.get(record.task_id).state is TaskState.RUNNING
    got = wait_until(lambda: (r := redis_store.get(record.task_id)).state is TaskState.LOST and r,
                     timeout=10, message="the silent task to read lost")
    assert "heartbeat" in got.error
    assert got.error.startswith("TaskLost")
    assert got.finished > 0
    # The verdict is stored: another store (another process) sees it too.
    other = RedisStore(redis_url)
    try:
        assert other.get(record.task_id).state is TaskState.LOST
        assert "heartbeat" in other.get(record.task_id).error
    finally:
        other.close()


def test_a_live_server_keeps_its_running_task_alive_without_heartbeats(redis_store):
    # The server process answers for its workers (it sees them die): heartbeats that stop
    # while it is registered mean its worker cannot reach Redis, not that it is dead.
    record = running(redis_store)
    began = time.monotonic()
    wait_until(lambda: time.monotonic() - began > 4 * redis_store.lost_after
               and redis_store.get(record.task_id), message="four times lost_after")
    assert redis_store.get(record.task_id).state is TaskState.RUNNING


def test_heartbeats_keep_a_running_task_alive(redis_store):
    record = running(redis_store)
    sink = redis_store.progress_sink(record.task_id)  # starts the reporter's heartbeats
    try:
        # Well past lost_after, with heartbeats flowing, the task still runs.
        first = redis_store.get(record.task_id).heartbeat
        wait_until(lambda: redis_store.get(record.task_id).heartbeat > first + 1.0, timeout=10,
                   message="heartbeats for longer than lost_after")
        assert redis_store.get(record.task_id).state is TaskState.RUNNING
    finally:
        redis_store.close_progress_sink(sink)


def test_a_kept_result_is_read_from_redis_and_decoded_once(redis_store, monkeypatch):
    import ladon_tasks.stores.redis as redis_module

    record = running(redis_store)
    redis_store.get(record.task_id)
    # Subscribing drops every copy (an end may have been missed before): copy after it.
    wait_until(lambda: redis_store._dismissals.live, message="the store to subscribe")
    assert redis_store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result={"a": [1, 2]})
    assert redis_store.get(record.task_id).state is TaskState.SUCCEEDED  # the copy is made
    first = redis_store.get_result(record.task_id)
    assert first == {"a": [1, 2]}

    def refused(*args, **kwargs):
        raise AssertionError("the kept result was read or decoded again")

    monkeypatch.setattr(redis_store.client, "hget", refused)
    monkeypatch.setattr(redis_module, "json", type("NoJson", (), {"loads": staticmethod(refused)}))
    assert redis_store.get_result(record.task_id) is first
    assert json.loads(redis_store.ended.results()[record.task_id]) == first  # the raw copy, as Redis had it


def test_a_stalled_workers_real_outcome_replaces_lost(redis_store):
    # Documented for process mode: lost is a reader's verdict on silent heartbeats; a
    # worker that was only stalled records its real end when it finishes, once.
    record = running(redis_store)
    assert redis_store.finish(record.task_id, TaskState.LOST, time.time(), error="TaskLost: silent")
    assert redis_store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=3)
    got = redis_store.get(record.task_id)
    assert got.state is TaskState.SUCCEEDED and got.error == ""
    assert redis_store.get_result(record.task_id) == 3
    assert not redis_store.finish(record.task_id, TaskState.FAILED, time.time(), error="E")
    assert not redis_store.finish(record.task_id, TaskState.LOST, time.time(), error="TaskLost")


def test_queued_task_of_a_vanished_owner_reads_lost(redis_store):
    record = TaskRecord(task_id=new_task_id(), method="S.m", created=time.time(), owner="gone:99")
    redis_store.create(record)
    got = redis_store.get(record.task_id)
    assert got.state is TaskState.LOST
    assert got.error.startswith("TaskLost")
    alive = queued(redis_store)
    assert redis_store.get(alive.task_id).state is TaskState.QUEUED


@pytest.mark.parametrize("retried", [True, False])
def test_a_lost_handler_may_run_a_task_of_a_dead_worker_again(redis_store, retried):
    # Celery mode: a reader that finds a running task's worker gone asks the handler first.
    record = queued(redis_store)
    assert redis_store.mark_running(record.task_id, time.time() - 60, "gone:99")
    asked = []

    def handler(found: TaskRecord, error: str) -> bool:
        asked.append((found.task_id, found.attempt, error))
        return retried and redis_store.requeue(found.task_id, found.attempt + 1, "again", "")

    redis_store.lost_handler = handler
    got = wait_until(lambda: (r := redis_store.get(record.task_id)).state is not TaskState.RUNNING
                     and r, timeout=15, message="the reader to find the worker gone")
    assert asked and asked[0][:2] == (record.task_id, 1) and asked[0][2].startswith("TaskLost")
    if retried:
        assert (got.state, got.attempt, got.error, got.owner) == (TaskState.QUEUED, 2, "again", "")
        # Queued by no process: a queued task without an owner is never found lost.
        assert redis_store.get(record.task_id).state is TaskState.QUEUED
    else:
        assert got.state is TaskState.LOST and got.attempt == 1


def test_closed_port_raises_store_unavailable():
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    record = TaskRecord(task_id=new_task_id(), method="S.m", created=time.time(), owner=OWNER)
    operations = [
        lambda: store.create(record),
        lambda: store.get(record.task_id),
        lambda: store.mark_running(record.task_id, time.time(), OWNER),
        lambda: store.set_progress(record.task_id, 0.5, time.time()),
        lambda: store.finish(record.task_id, TaskState.FAILED, time.time(), error="E"),
        lambda: store.get_result(record.task_id),
        lambda: store.register_owner(OWNER, 10),
        store.ping,
    ]
    try:
        for operation in operations:
            with pytest.raises(StoreUnavailable) as raised:
                operation()
            assert not isinstance(raised.value, redis.RedisError)
            assert "unreachable" in str(raised.value)
    finally:
        store.close()


def test_store_unavailable_hides_the_password():
    store = RedisStore(f"redis://user:s3cret@127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StoreUnavailable) as raised:
            store.ping()
        assert "s3cret" not in str(raised.value)
    finally:
        store.close()
