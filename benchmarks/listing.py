"""Issue 12: listing tasks with 100,000 in the store, and what the index costs.

    .venv-test-3.11/bin/python benchmarks/listing.py              # about 2 minutes
    .venv-test-3.11/bin/python benchmarks/listing.py --tasks 20000

L1. One page (``TaskStore.list_tasks``, the call behind ``GET /_tasks/api/tasks``), p50 and
    p99 over many reads, for the usual queries: the newest page, a state, a method, an
    owner that 1% of the tasks have, and a page from a cursor half way down. Redis store
    (a private redis-server) and memory store, side by side; the baseline is listing
    without an index, as one would otherwise: SCAN every task hash, read it, sort.
L2. Memory of the index at that size: Redis ``MEMORY USAGE`` of the two sorted sets; the
    memory store's sorted positions (tracemalloc); each per task.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import report
from procs import RedisProcess

from ladon_tasks.ids import new_task_id
from ladon_tasks.listing import Position, TaskQuery
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.stores.memory import MemoryStore
from ladon_tasks.stores.memory_index import MemoryIndex
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskRecord, TaskState

OWNER = "bench:1"
METHODS = ("Reports.render", "Reports.mail", "Images.resize", "Images.crop")


def fill(store: TaskStore, count: int) -> list[TaskRecord]:
    """``count`` tasks, created a millisecond apart: 70% succeeded, 10% failed, 10%
    running, 10% queued; every 100th started by alice."""
    records = []
    base = time.time() - count / 1000
    for number in range(count):
        record = TaskRecord(task_id=new_task_id(), method=METHODS[number % len(METHODS)],
                            created=base + number / 1000, owner=OWNER,
                            caller="alice" if number % 100 == 0 else f"user{number % 37}")
        store.create(record)
        kind = number % 10
        if kind < 9:
            store.mark_running(record.task_id, record.created, OWNER)
        if kind < 7:
            store.finish(record.task_id, TaskState.SUCCEEDED, record.created + 0.5, result=number)
        elif kind == 7:
            store.finish(record.task_id, TaskState.FAILED, record.created + 0.5, error="E: x")
        records.append(record)
        if number and number % 20000 == 0:
            print(f"  {type(store).__name__}: {number:,} tasks", file=sys.stderr)
    return records


def timed(call: Callable[[], object], reads: int) -> tuple[float, float]:
    """p50 and p99 seconds of ``call``."""
    call()
    samples = []
    for _ in range(reads):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def queries(records: list[TaskRecord]) -> list[tuple[str, TaskQuery]]:
    middle = records[len(records) // 2]
    return [
        ("newest 50", TaskQuery()),
        ("state=running", TaskQuery(state=TaskState.RUNNING)),
        ("state=failed", TaskQuery(state=TaskState.FAILED)),
        ("method=Images.crop", TaskQuery(method="Images.crop")),
        ("owner=alice (1%)", TaskQuery(caller="alice")),
        ("cursor half way", TaskQuery(after=Position(middle.created, middle.task_id))),
    ]


def scan_listing(store: RedisStore) -> list[TaskRecord]:
    """The baseline: the newest 50 without an index (SCAN, HMGET each, sort)."""
    client = store.client
    keys = list(client.scan_iter(match=f"{store.key_prefix}:task:*", count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, "created", "state", "method")
    rows = sorted(zip(pipe.execute(), keys, strict=True), key=lambda row: float(row[0][0]), reverse=True)
    return rows[:50]


def index_memory(count: int) -> float:
    """Bytes of a MemoryIndex of ``count`` tasks."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = MemoryIndex()
    base = time.time()
    for number in range(count):
        index.add(TaskRecord(task_id=new_task_id(), method="M.m", created=base + number))
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del index
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        redis_process = RedisProcess(Path(workdir))
        try:
            run(args.tasks, args.reads, redis_process.url)
        finally:
            redis_process.stop()


def run(count: int, reads: int, redis_url: str) -> None:
    redis_store = RedisStore(redis_url, result_ttl=86400)
    memory_store = MemoryStore(result_ttl=86400)
    redis_store.register_owner(OWNER, 86400)
    print(f"filling both stores with {count:,} tasks", file=sys.stderr)
    records = fill(redis_store, count)
    fill(memory_store, count)
    rows = []
    for name, query in queries(records):
        redis_p50, redis_p99 = timed(lambda query=query: redis_store.list_tasks(query), reads)
        memory_p50, memory_p99 = timed(lambda query=query: memory_store.list_tasks(query), reads)
        found = len(redis_store.list_tasks(query))
        rows.append([name, found, report.ms(redis_p50), report.ms(redis_p99),
                     report.ms(memory_p50), report.ms(memory_p99)])
    scan_p50, scan_p99 = timed(lambda: scan_listing(redis_store), 5)
    newest = float(rows[0][2])
    rows.append(["baseline: SCAN + sort", 50, report.ms(scan_p50), report.ms(scan_p99), "-", "-"])
    print(report.table(
        f"L1. One page of 50 (51 read) with {count:,} tasks in the store (ms)",
        ["query", "rows", "redis p50", "redis p99", "memory p50", "memory p99"], rows,
        [f"newest page vs the SCAN baseline: {scan_p50 * 1e3 / newest:,.0f}x faster",
         "rows: what the page held (51 = a full page and the one that says there is a next)"]))
    client = redis_store.client
    live = client.memory_usage(redis_store.live_index_key, samples=0) or 0
    ended = client.memory_usage(redis_store.ended_index_key, samples=0) or 0
    hashes = [client.memory_usage(f"{redis_store.key_prefix}:task:{record.task_id}", samples=0) or 0
              for record in records[: count : max(1, count // 200)]]
    memory_index = index_memory(count)
    print(report.table(
        f"L2. Memory of the index with {count:,} tasks",
        ["store", "index bytes", "per task", "a task's hash, for scale"],
        [["redis (two sorted sets)", f"{live + ended:,}", f"{(live + ended) / count:.0f}",
          f"{statistics.median(hashes):,.0f}"],
         ["memory (sorted positions)", f"{memory_index:,.0f}", f"{memory_index / count:.0f}", "-"]]))
    redis_store.close()


if __name__ == "__main__":
    main()
