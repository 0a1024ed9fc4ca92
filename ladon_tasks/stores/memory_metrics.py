"""The counts of the memory store (see :mod:`ladon_tasks.metrics`), kept as tasks change."""

from __future__ import annotations

import copy

from ladon_tasks.metrics import MethodMetrics, bucket_of
from ladon_tasks.task import TaskState


class MemoryMetrics:
    """Counters, gauges and durations per method. Not locked: the store calls it under
    its own lock."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodMetrics] = {}

    def _of(self, method: str) -> MethodMetrics:
        counts = self._methods.get(method)
        if counts is None:
            counts = self._methods[method] = MethodMetrics(method)
        return counts

    def moved(self, method: str, was: TaskState | None, now: TaskState) -> None:
        """A task of ``method`` went from ``was`` (None: it is new) to ``now``."""
        counts = self._of(method)
        if was is not None:
            counts.count_live(was, -1)
        counts.count_live(now)
        if now is TaskState.RUNNING:
            counts.events["started"] += 1
        elif now is TaskState.QUEUED and was is not None:
            counts.events["retried"] += 1
        elif now.done:
            counts.events[now.value] += 1

    def ran(self, method: str, seconds: float) -> None:
        """A run of ``method`` ended after ``seconds``."""
        counts = self._of(method)
        counts.buckets[bucket_of(seconds)] += 1
        counts.duration_sum += seconds

    def snapshot(self) -> dict[str, MethodMetrics]:
        """A copy of every method's counts."""
        return {name: copy.deepcopy(counts) for name, counts in sorted(self._methods.items())}
