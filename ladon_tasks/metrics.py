"""What tasks did, per method: the counts a store keeps for metrics and the status page.

Counters (:data:`EVENTS`) only grow, from the store's first task on: the Redis store keeps
them in Redis, written by the same scripts that change a task, so every process and host
reads the same numbers (kept :data:`METRICS_TTL` after the last change); the memory store
in its process. Gauges (queued, running) are counted from the live tasks (Redis: when
asked, so they cannot drift). Durations are of every run that ended after it started, in
the buckets of :data:`DURATION_BUCKETS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

#: What a counter counts: a run started, a task ended in one of four ways, a task queued again.
EVENTS = ("started", "succeeded", "failed", "cancelled", "lost", "retried")
#: Seconds the Redis store's counters outlive the last change of any task (then they start
#: again from zero, which Prometheus reads as a counter reset).
METRICS_TTL = 30 * 86400
#: Upper bounds (seconds) of the duration histogram's buckets; one more catches the rest.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0)


def bucket_of(seconds: float) -> int:
    """The index of the bucket a duration falls in (``len(DURATION_BUCKETS)``: beyond all)."""
    for index, bound in enumerate(DURATION_BUCKETS):
        if seconds <= bound:
            return index
    return len(DURATION_BUCKETS)


@dataclass
class MethodMetrics:
    """The counts of one task method (``Service.method``)."""

    method: str
    #: Each of :data:`EVENTS` -> how many times it happened.
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENTS, 0))
    queued: int = 0
    running: int = 0
    #: Runs per duration bucket (not cumulative), ``len(DURATION_BUCKETS) + 1`` of them.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0

    def count_live(self, state: str, change: int = 1) -> None:
        """Count one task more (``change`` -1: fewer) in ``state`` (a TaskState or its
        value), if it is a gauged one: queued or running."""
        if state == "queued":
            self.queued += change
        elif state == "running":
            self.running += change

    @property
    def runs(self) -> int:
        """Runs in the duration histogram."""
        return sum(self.buckets)

    def add(self, other: MethodMetrics) -> None:
        """Add ``other``'s counts (the same method, in another store) to these."""
        for event, count in other.events.items():
            self.events[event] = self.events.get(event, 0) + count
        self.queued += other.queued
        self.running += other.running
        self.buckets = [mine + theirs for mine, theirs in zip(self.buckets, other.buckets, strict=True)]
        self.duration_sum += other.duration_sum


def merge(snapshots: Iterable[dict[str, MethodMetrics]]) -> dict[str, MethodMetrics]:
    """The counts of several stores as one, by method name (sorted)."""
    merged: dict[str, MethodMetrics] = {}
    for snapshot in snapshots:
        for name, counts in snapshot.items():
            merged.setdefault(name, MethodMetrics(name)).add(counts)
    return dict(sorted(merged.items()))
