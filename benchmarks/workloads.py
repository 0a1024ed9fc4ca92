"""Task workloads over HTTP: progress loops, tiny-task throughput, memory under churn."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

from calls import Endpoint, fetch_results, run_one_task, task_ids, wait_done

CONCURRENCY = 32


def progress_rates(runs: list[tuple[Endpoint, int]], rounds: int) -> dict[str, list[int]]:
    """``update_progress`` calls/s reported by ``progressLoop(calls)``, ``rounds`` times each."""
    rates: dict[str, list[int]] = {ep.label: [] for ep, _ in runs}
    for _ in range(rounds):
        for ep, calls in runs:
            rates[ep.label].append(int(run_one_task(ep, "progressLoop", calls=calls)))
    return rates


@dataclass
class Churn:
    """One batch of tiny tasks through their whole life: start, wait, fetch the result."""

    tasks: int
    start_seconds: float
    wait_seconds: float
    errors: int
    last_id: str

    @property
    def seconds(self) -> float:
        """Start of the first task to the last task seen done."""
        return self.start_seconds + self.wait_seconds


def churn(ep: Endpoint, tasks: int, concurrency: int = CONCURRENCY) -> Churn:
    """Start ``tasks`` tiny tasks, wait until all are done, then fetch every result once."""
    started = ep.load([ep.request("tiny")] * tasks, concurrency, keep_bodies=True)
    ids = task_ids(started)
    waited = wait_done(ep, "tiny", ids, concurrency)
    fetched = fetch_results(ep, "tiny", ids, concurrency)
    return Churn(tasks, started.elapsed, waited, started.errors + fetched.errors, ids[-1])


def tiny_throughput(endpoints: list[Endpoint], tasks: int, rounds: int) -> dict[str, list[float]]:
    """Tasks/s end to end (start all, wait until all done), ``rounds`` interleaved batches."""
    rates: dict[str, list[float]] = {ep.label: [] for ep in endpoints}
    for _ in range(rounds):
        for ep in endpoints:
            batch = churn(ep, tasks)
            if batch.errors:
                raise RuntimeError(f"{ep.label}: {batch.errors} failed calls in the tiny-task batch")
            rates[ep.label].append(tasks / batch.seconds)
    return rates


@dataclass
class MemoryRun:
    """Server RSS while tiny tasks churn through it."""

    rss_idle: float = 0.0
    rss_first: float = 0.0
    rss_last: float = 0.0
    tasks: int = 0
    seconds: float = 0.0
    errors: int = 0
    batches: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds if self.seconds else 0.0

    @property
    def growth(self) -> float:
        return self.rss_last - self.rss_first


def memory_growth(endpoints: list[Endpoint], first: int, total: int, batch: int, settle: float,
                  say: Callable[[str], None] = print) -> dict[str, MemoryRun]:
    """RSS after ``first`` and after ``total`` finished tasks, batches interleaved.

    Before each reading the servers idle ``settle`` seconds (longer than the result TTL
    of ladon_tasks), then answer one ``_progress`` call, which is when ladon_tasks drops
    expired records; the same is done to every server.
    """
    runs = {ep.label: MemoryRun() for ep in endpoints}
    last_ids: dict[str, str] = {}
    for ep in endpoints:
        ep.call("noop")
        runs[ep.label].rss_idle = ep.server.rss_mb()
    sizes = [first] + [batch] * ((total - first) // batch)
    if sum(sizes) < total:
        sizes.append(total - sum(sizes))
    for index, size in enumerate(sizes):
        for ep in endpoints:
            done = churn(ep, size)
            run = runs[ep.label]
            run.tasks += done.tasks
            run.seconds += done.seconds
            run.errors += done.errors
            run.batches.append(done.tasks / done.seconds)
            last_ids[ep.label] = done.last_id
        if index == 0 or index == len(sizes) - 1:
            _settle(endpoints, last_ids, settle)
            for ep in endpoints:
                run = runs[ep.label]
                if index == 0:
                    run.rss_first = ep.server.rss_mb()
                else:
                    run.rss_last = ep.server.rss_mb()
        finished = sum(sizes[:index + 1])
        if index == 0 or finished * 10 // total != (finished - size) * 10 // total:
            say(f"  {finished:>6} tasks: " + ", ".join(
                f"{ep.label} {runs[ep.label].batches[-1]:,.0f} tasks/s" for ep in endpoints))
    return runs


def _settle(endpoints: list[Endpoint], last_ids: dict[str, str], seconds: float) -> None:
    time.sleep(seconds)
    for ep in endpoints:
        ep.call("tiny_progress", task_id=last_ids[ep.label])


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
