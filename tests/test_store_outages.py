"""The Redis store when Redis cannot take writes, loses its data, or is handed too much:
transient errors, owner registration, records written again, result limits, the
bounded copies of ended tasks; and the one retry policy every write goes through."""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import pytest
import redis
from conftest import OWNER
from helpers import wait_until

from ladon_tasks.exceptions import ResultTooLarge, StoreUnavailable
from ladon_tasks.ids import new_task_id
from ladon_tasks.store_retry import StoreRetry
from ladon_tasks.stores import redis_ended
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskRecord, TaskState


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url, result_ttl=60, heartbeat_interval=0.1, lost_after=0.5)
    store.register_owner(OWNER, 3600)
    yield store
    store.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.config_set("maxmemory", "0")
    client.close()


def queued(store: RedisStore, owner: str = OWNER) -> TaskRecord:
    record = TaskRecord(task_id=new_task_id(), method="S.m", created=time.time(), owner=owner)
    store.create(record)
    return record


# -- Redis that is there but cannot write --------------------------------------------------


def test_a_full_redis_is_unavailable_not_an_error(store, raw):
    record = queued(store)
    raw.config_set("maxmemory", "1")  # every write now answers OOM
    with pytest.raises(StoreUnavailable, match="cannot write now") as raised:
        store.create(TaskRecord(task_id=new_task_id(), method="S.m", created=time.time(), owner=OWNER))
    assert "OutOfMemoryError" in str(raised.value)
    with pytest.raises(StoreUnavailable):
        store.mark_running(record.task_id, time.time(), OWNER)
    # Reads still work, and writes do once memory is free again.
    assert store.get(record.task_id).state is TaskState.QUEUED
    raw.config_set("maxmemory", "0")
    assert store.mark_running(record.task_id, time.time(), OWNER)


def test_other_redis_errors_are_not_taken_for_an_outage(store, raw):
    raw.set("ladon_tasks:task:" + "A" * 22, "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        store.get("A" * 22)


def test_an_outage_is_logged_once_and_its_end_once(store, redis_server, collect_logs):
    logs = collect_logs("ladon_tasks.stores.redis")
    redis_server.stop(save=True)
    try:
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                store.ping()
    finally:
        redis_server.start()
    store.ping()
    store.ping()
    messages = [r.getMessage() for r in logs.records]
    assert len([m for m in messages if "is unreachable" in m]) == 1, messages
    assert len([m for m in messages if "answers again" in m]) == 1, messages


# -- owners, lost verdicts and records written again ---------------------------------------


def test_register_owner_tells_whether_the_registration_held(store, raw):
    assert store.register_owner("host:7", 30) is False  # the first time
    assert store.register_owner("host:7", 30) is True
    raw.delete("ladon_tasks:owner:host:7")  # lapsed, or lost with the data
    assert store.register_owner("host:7", 30) is False


def test_restore_writes_only_records_the_store_lost(store, raw):
    kept = queued(store)
    lost = TaskRecord(task_id=new_task_id(), method="S.m", created=time.time(), owner=OWNER)
    dismissed = queued(store)
    assert store.dismiss(dismissed.task_id, time.time()) is not None  # a tombstone now
    assert not store.knows(lost.task_id)
    assert store.knows(kept.task_id) and store.knows(dismissed.task_id)
    assert store.restore([kept, lost, dismissed]) == 1
    got = store.get(lost.task_id)
    assert (got.state, got.owner, got.method) == (TaskState.QUEUED, OWNER, "S.m")
    assert raw.ttl(store.key("task", lost.task_id)) > 0
    assert store.get(dismissed.task_id) is None


def test_a_queued_task_of_a_vanished_owner_waits_out_an_outage(store, redis_server):
    record = queued(store, owner="gone:1")
    redis_server.stop(save=True)
    try:
        with pytest.raises(StoreUnavailable):
            store.get(record.task_id)
    finally:
        redis_server.start()
    # Right after the outage its owner may simply not have registered again yet.
    assert store.get(record.task_id).state is TaskState.QUEUED
    got = wait_until(lambda: (r := store.get(record.task_id)).state is TaskState.LOST and r,
                     timeout=10, message="the verdict once lost_after has passed")
    assert "stopped before it started" in got.error


def test_a_freshly_started_redis_gives_no_verdict(redis_url, raw):
    # Redis's own uptime counts as an outage too: another process may have seen nothing.
    uptime = int(raw.info("server")["uptime_in_seconds"])
    store = RedisStore(redis_url, lost_after=uptime + 30.0)
    try:
        record = queued(store, owner="gone:2")
        assert store.get(record.task_id).state is TaskState.QUEUED
    finally:
        store.close()


# -- results too large ----------------------------------------------------------------------


def test_a_result_over_max_result_bytes_is_refused_before_any_write(redis_url):
    store = RedisStore(redis_url, max_result_bytes=1000)
    try:
        record = queued(store)
        assert store.mark_running(record.task_id, time.time(), OWNER)
        with pytest.raises(ResultTooLarge, match=r"^ResultTooLarge: .*max_result_bytes"):
            store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result="x" * 2000)
        assert store.get(record.task_id).state is TaskState.RUNNING
        assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result="x" * 900)
    finally:
        store.close()


def test_a_result_over_redis_bulk_limit_fails_at_once(small_bulk_redis):
    store = RedisStore(small_bulk_redis.url)  # max_result_bytes: 64 MiB, Redis takes 1 MB
    try:
        record = queued(store)
        assert store.mark_running(record.task_id, time.time(), OWNER)
        began = time.monotonic()
        with pytest.raises(ResultTooLarge, match="proto-max-bulk-len"):
            store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result="x" * 2_000_000)
        assert time.monotonic() - began < 5  # not 60 s of retried writes
        assert store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result="x" * 500_000)
    finally:
        store.close()


# -- what a process keeps of ended tasks ----------------------------------------------------


def _ended(store: RedisStore, result: Any) -> str:
    record = queued(store)
    store.mark_running(record.task_id, time.time(), OWNER)
    store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=result)
    return record.task_id


def test_progress_of_an_ended_task_never_reads_its_result(store, raw):
    task_id = _ended(store, "x" * 5_000_000)
    reader = RedisStore(store.url)
    try:
        before = int(raw.info("stats")["total_net_output_bytes"])
        assert reader.get(task_id).state is TaskState.SUCCEEDED
        read = int(raw.info("stats")["total_net_output_bytes"]) - before
        assert read < 50_000, read
        assert reader.get_result(task_id) == "x" * 5_000_000
    finally:
        reader.close()


def test_copies_of_ended_tasks_are_bounded_in_bytes(store, monkeypatch):
    monkeypatch.setattr(redis_ended, "ENDED_CACHE_BYTES", 100_000)
    monkeypatch.setattr(redis_ended, "ENDED_CACHE_LARGEST", 40_000)
    ids = [_ended(store, "y" * 30_000) for _ in range(6)]
    big = _ended(store, "z" * 60_000)
    for task_id in [*ids, big]:
        assert store.get(task_id).state is TaskState.SUCCEEDED
        assert len(store.get_result(task_id)) in (30_000, 60_000)
    held = store.ended.results()
    assert store.ended.result_bytes == sum(len(v) for v in held.values() if isinstance(v, str))
    assert store.ended.result_bytes <= 100_000
    assert not isinstance(held.get(big), str)  # too large to keep: read from Redis each time
    assert store.get_result(big) == "z" * 60_000


# -- the retry policy -----------------------------------------------------------------------


def test_store_retry_retries_until_the_write_succeeds():
    answers: list[Any] = [StoreUnavailable("away"), StoreUnavailable("away"), True]
    pauses: list[float] = []

    def write() -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert StoreRetry(60, sleep=pauses.append).run("write", write, "T") is True
    assert len(pauses) == 2 and pauses[1] > pauses[0]


def test_store_retry_gives_up_after_its_deadline(collect_logs):
    logs = collect_logs("ladon_tasks.store")

    def write() -> bool:
        raise StoreUnavailable("still away")

    with pytest.raises(StoreUnavailable, match="still away"):
        StoreRetry(0.2).run("record its end", write, "T")
    assert any(r.levelno == logging.ERROR and "gave up" in r.getMessage() for r in logs.records)
