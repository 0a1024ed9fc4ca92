"""The memory store answers reads without its lock while nobody holds it: a read that
meets a write in progress must wait for it and see the whole record, never half of it."""

from __future__ import annotations

import sys
import threading
import time

from conftest import OWNER
from helpers import wait_until
from test_store_listing import made

from ladon_tasks.stores.counted_lock import CountedLock
from ladon_tasks.stores.memory import MemoryStore
from ladon_tasks.task import TaskRecord, TaskState


def test_the_lock_counts_its_releases():
    lock = CountedLock()
    assert (lock.locked(), lock.releases) == (False, 0)
    with lock:
        assert lock.locked() and lock.releases == 0
    with lock:
        pass
    assert (lock.locked(), lock.releases) == (False, 2)


def read_in_thread(store: MemoryStore, task_id: str) -> tuple[threading.Thread, list[TaskRecord | None]]:
    got: list[TaskRecord | None] = []
    reader = threading.Thread(target=lambda: got.append(store.get(task_id)))
    reader.start()
    return reader, got


def test_a_read_during_a_write_waits_for_it_and_sees_it_whole():
    store = MemoryStore()
    record = made(store)
    assert store.mark_running(record.task_id, time.time(), OWNER)
    live = store._records[record.task_id]
    with store._lock:  # a writer half-way: the state says ended, the rest does not yet
        live.state = TaskState.SUCCEEDED
        reader, got = read_in_thread(store, record.task_id)
        # A reader that did not wait would be back at once with the half-written record;
        # one that waits is still waiting when this gives up.
        try:
            wait_until(lambda: got, timeout=1.0, message="")
        except AssertionError:
            pass
        assert got == [], f"the read did not wait for the write: {got}"
        live.progress, live.finished = 1.0, time.time()
    reader.join(10)
    assert got[0].state is TaskState.SUCCEEDED and got[0].progress == 1.0 and got[0].finished > 0


def test_reads_racing_with_ends_and_retries_always_see_whole_records():
    """Threads poll one task while another ends it and retries it, over and over: each
    copy must be one the writer left between two of its writes."""
    store = MemoryStore()
    record = made(store)
    stop = threading.Event()
    torn: list[TaskRecord] = []

    def poll() -> None:
        while not stop.is_set():
            copy = store.get(record.task_id)
            whole = (copy.state is TaskState.QUEUED and copy.finished == 0.0 and copy.started == 0.0) \
                or (copy.state is TaskState.RUNNING and copy.started > 0 and copy.finished == 0.0) \
                or (copy.state is TaskState.FAILED and copy.finished > 0 and copy.error == "boom")
            if not whole:
                torn.append(copy)

    readers = [threading.Thread(target=poll) for _ in range(4)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython can: races show at once
    for reader in readers:
        reader.start()
    try:
        for attempt in range(2, 2002):
            assert store.mark_running(record.task_id, time.time(), OWNER)
            assert store.finish(record.task_id, TaskState.FAILED, time.time(), error="boom")
            assert store.retry(record.task_id, attempt, OWNER)
    finally:
        sys.setswitchinterval(switch)
        stop.set()
        for reader in readers:
            reader.join(10)
    assert torn == []
