"""Listing tasks from every store: newest first, filtered, paged with stable cursors, and
the Redis index that makes it: bounded, and no key outliving its tasks."""

from __future__ import annotations

import time

import pytest
from conftest import OWNER
from helpers import wait_until
from test_store_conformance import raw_redis as raw_redis  # a fixture
from test_store_lifecycle import ended

from ladon_tasks.exceptions import InvalidQuery
from ladon_tasks.ids import new_task_id
from ladon_tasks.listing import Position, TaskQuery, decode_cursor, encode_cursor, page_of
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskRecord, TaskState


def made(store: TaskStore, method: str = "Service.method", caller: str = "") -> TaskRecord:
    record = TaskRecord(task_id=new_task_id(), method=method, created=time.time(), owner=OWNER,
                        caller=caller)
    store.create(record)
    return record


def page(store: TaskStore, **query: object) -> tuple[list[str], str | None]:
    """One page of ids, as the engine pages: ``limit + 1`` rows asked, one more = a next page."""
    limit = int(query.pop("limit", 10))  # type: ignore[call-overload]
    cursor = query.pop("cursor", None)
    after = None if cursor is None else decode_cursor(str(cursor))
    found = page_of(store.list_tasks(TaskQuery(limit=limit, after=after, **query)), limit)  # type: ignore[arg-type]
    return [record.task_id for record in found.records], found.next_cursor


def test_tasks_are_listed_newest_first_with_their_fields(store):
    first = made(store, caller="alice")
    second = made(store)
    assert store.mark_running(second.task_id, time.time(), OWNER)
    ids, cursor = page(store)
    assert ids == [second.task_id, first.task_id] and cursor is None
    rows = store.list_tasks(TaskQuery())
    assert rows[0].state is TaskState.RUNNING and rows[1].caller == "alice"
    assert rows[1].method == "Service.method" and rows[1].created == pytest.approx(first.created)


def test_filters_by_state_method_and_caller(store):
    failed = ended(store, TaskState.FAILED)
    succeeded = ended(store, TaskState.SUCCEEDED)
    waiting = made(store, method="Other.method", caller="bob")
    assert page(store, state=TaskState.FAILED)[0] == [failed.task_id]
    assert page(store, state=TaskState.SUCCEEDED)[0] == [succeeded.task_id]
    assert page(store, state=TaskState.QUEUED)[0] == [waiting.task_id]
    assert page(store, method="Other.method")[0] == [waiting.task_id]
    assert page(store, caller="bob")[0] == [waiting.task_id]
    assert page(store, caller="bob", state=TaskState.FAILED)[0] == []
    assert page(store, state=TaskState.RUNNING)[0] == []


def test_pages_are_stable_while_tasks_are_added(store):
    older = [made(store).task_id for _ in range(25)]
    seen: list[str] = []
    ids, cursor = page(store, limit=10)
    seen += ids
    newer = [made(store).task_id for _ in range(5)]  # meanwhile: they sort before the cursor
    while cursor is not None:
        ids, cursor = page(store, limit=10, cursor=cursor)
        seen += ids
        made(store)
    assert seen == list(reversed(older))
    fresh, _ = page(store, limit=100)  # a fresh listing shows the newer ones first
    assert fresh.index(newer[-1]) < fresh.index(older[-1])


def test_a_task_moves_between_live_and_ended_and_keeps_its_place(store):
    a = made(store)
    b = made(store)
    c = made(store)
    assert store.mark_running(b.task_id, time.time(), OWNER)
    assert store.finish(b.task_id, TaskState.SUCCEEDED, time.time(), result=1)
    assert store.request_cancel(a.task_id, time.time()) is not None
    assert page(store)[0] == [c.task_id, b.task_id, a.task_id]
    assert page(store, limit=1)[0] == [c.task_id]
    _, cursor = page(store, limit=1)
    assert page(store, limit=1, cursor=cursor)[0] == [b.task_id]


def test_dismissed_and_expired_tasks_are_not_listed(make_store):
    store = make_store(result_ttl=1)
    kept = made(store)
    dismissed = made(store)
    store.dismiss(dismissed.task_id, time.time())
    expiring = ended(store, TaskState.SUCCEEDED)
    assert page(store)[0] == [expiring.task_id, kept.task_id]
    wait_until(lambda: page(store)[0] == [kept.task_id], timeout=15, message="the ended task to expire")


def test_a_retried_task_is_listed_once_as_queued(make_store):
    store = make_store()
    record = made(store)
    assert store.mark_running(record.task_id, time.time(), OWNER)
    assert store.finish(record.task_id, TaskState.LOST, time.time(), error="TaskLost: x")
    assert store.requeue(record.task_id, 2, "TaskLost: x", OWNER)
    rows = store.list_tasks(TaskQuery())
    assert [(row.task_id, row.state, row.attempt) for row in rows] == [(record.task_id, TaskState.QUEUED, 2)]


def test_a_cursor_no_page_gave_is_refused():
    position = Position(1234.5, new_task_id())
    assert decode_cursor(encode_cursor(position)) == position
    for bad in ("", "!!!", "bm90IGEgY3Vyc29y", encode_cursor(position)[:-3] + "@@@",
                encode_cursor(Position(float("nan"), new_task_id()))):
        with pytest.raises(InvalidQuery):
            decode_cursor(bad)


def test_the_redis_index_lives_no_longer_than_its_tasks(redis_url, raw_redis):
    store = RedisStore(redis_url, result_ttl=2, tombstone_ttl=1)
    try:
        store.register_owner(OWNER, 3600)
        done = made(store)
        assert store.mark_running(done.task_id, time.time(), OWNER)
        assert store.finish(done.task_id, TaskState.SUCCEEDED, time.time(), result=1)
        live = made(store)
        assert raw_redis.exists(store.live_index_key) and raw_redis.exists(store.ended_index_key)
        assert 0 < raw_redis.ttl(store.ended_index_key) <= 2
        assert raw_redis.ttl(store.live_index_key) >= raw_redis.ttl(store.key("task", live.task_id))
        store.dismiss(live.task_id, time.time())
        assert not raw_redis.exists(store.live_index_key)  # its last member gone: no key
        wait_until(lambda: not raw_redis.exists(store.ended_index_key), timeout=15,
                   message="the ended index to expire with its task")
        # What stays is not a task's: the server's own key, the method's duration history,
        # which outlives any one task by design (it feeds the ETA of the next), and the
        # metrics' counters (they count every task there was).
        kept = (b"ladon_tasks:owner:", b"ladon_tasks:durations:", b"ladon_tasks:metrics")
        wait_until(lambda: not [key for key in raw_redis.scan_iter(match="ladon_tasks:*")
                                if not key.startswith(kept)],
                   timeout=15, message="every key of the tasks to be gone")
    finally:
        store.close()


def test_a_filter_that_matches_few_reads_on_until_its_page_is_full(make_store):
    store = make_store()
    records = [made(store, caller="rare" if number % 40 == 0 else "common") for number in range(400)]
    rare = [record.task_id for record in records if record.caller == "rare"][::-1]
    ids, cursor = page(store, caller="rare", limit=4)
    assert ids == rare[:4] and cursor is not None
    ids, cursor = page(store, caller="rare", limit=4, cursor=cursor)
    assert ids == rare[4:8] and cursor is not None
    ids, cursor = page(store, caller="rare", limit=4, cursor=cursor)
    assert ids == rare[8:] and cursor is None
    assert page(store, caller="nobody", limit=4) == ([], None)


def test_a_filtered_page_walks_the_redis_index_in_batches_dropping_ids_of_hashes_gone(
        redis_url, raw_redis, monkeypatch):
    from ladon_tasks.stores import redis_index

    monkeypatch.setattr(redis_index, "FILTER_BATCH", 7)  # many calls of the filter script
    store = RedisStore(redis_url)
    try:
        store.register_owner(OWNER, 3600)
        records = [made(store, caller="rare" if number % 10 == 0 else "common") for number in range(60)]
        gone = [record for record in records[::3] if record.caller == "common"]
        raw_redis.delete(*[store.key("task", record.task_id) for record in gone])  # expired, say
        rare = [record.task_id for record in records if record.caller == "rare"][::-1]
        ids, cursor = page(store, caller="rare", limit=4)
        assert ids == rare[:4] and cursor is not None
        ids, cursor = page(store, caller="rare", limit=4, cursor=cursor)
        assert ids == rare[4:] and cursor is None
        assert len(raw_redis.zrange(store.live_index_key, 0, -1)) == 60 - len(gone)
        common = [record.task_id for record in records
                  if record.caller == "common" and record not in gone][::-1]
        assert page(store, caller="common", limit=100)[0] == common
    finally:
        store.close()
