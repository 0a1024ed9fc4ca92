"""What administrators do through the Redis store: retry a task, pause and resume
methods, read the metrics' counts.

``{prefix}:paused`` is a hash of paused methods (``*``: every one) -> when; the
``mark_running`` script reads it, so a pause holds on every host from its answer on.
``{prefix}:metrics`` is a hash of counters, written by the scripts that change a task
(``event|method``, ``bucket<i>|method``, ``sum|method``): every process reads the same
numbers. Gauges are counted from the live index when asked, so they cannot drift.
"""

from __future__ import annotations

from typing import Any, Callable

from ladon_tasks.constants import METRICS_KEY, PAUSED_KEY
from ladon_tasks.metrics import DURATION_BUCKETS, EVENTS, MethodMetrics

#: Live task ids whose method and state one round trip reads, counting the gauges.
GAUGE_BATCH = 1000


class RedisOperations:
    """Mixin of RedisStore: retry, pause and resume, metrics."""

    key_prefix: str
    live_ttl: int
    live_index_key: str
    dismissal_channel: str
    client: Any
    _call: Callable[..., Any]
    _script: Callable[..., int]
    _indexed_keys: Callable[[str], list[str]]
    _read_rows: Callable[..., list]
    live: Any
    ended: Any

    @property
    def paused_key(self) -> str:
        return f"{self.key_prefix}:{PAUSED_KEY}"

    @property
    def metrics_key(self) -> str:
        return f"{self.key_prefix}:{METRICS_KEY}"

    def retry(self, task_id: str, attempt: int, owner: str) -> bool:
        self.live.forget(task_id)
        self.ended.forget(task_id)
        keys = [*self._indexed_keys(task_id), self.dismissal_channel]
        return bool(self._call("retry", lambda: self._script(
            "retry", keys, [str(attempt), owner, self.live_ttl, task_id])))

    def pause(self, method: str, now: float) -> None:
        self._call("pause", lambda: self.client.hsetnx(self.paused_key, method, repr(now)))

    def resume(self, method: str | None) -> None:
        if method is None:
            self._call("resume", lambda: self.client.delete(self.paused_key))
        else:
            self._call("resume", lambda: self.client.hdel(self.paused_key, method))

    def paused(self) -> dict[str, float]:
        found = self._call("read pauses", lambda: self.client.hgetall(self.paused_key))
        return {method: float(since) for method, since in found.items()}

    def metrics(self) -> dict[str, MethodMetrics]:
        raw = self._call("read metrics", lambda: self.client.hgetall(self.metrics_key))
        methods: dict[str, MethodMetrics] = {}

        def of(method: str) -> MethodMetrics:
            return methods.setdefault(method, MethodMetrics(method))

        for name, value in raw.items():
            kind, _, method = name.partition("|")
            if kind in EVENTS:
                of(method).events[kind] = int(value)
            elif kind == "sum":
                of(method).duration_sum = float(value)
            elif kind.startswith("bucket") and kind[6:].isdigit() and int(kind[6:]) <= len(DURATION_BUCKETS):
                of(method).buckets[int(kind[6:])] = int(value)
        for method, state in self._live_tasks():
            of(method).count_live(state)
        return dict(sorted(methods.items()))

    def _live_tasks(self) -> list[tuple[str, str]]:
        """``(method, state)`` of every task in the live index, read in batches."""
        found: list[tuple[str, str]] = []
        start = 0
        while True:
            ids = self._call("read live index", lambda first=start: self.client.zrange(
                self.live_index_key, first, first + GAUGE_BATCH - 1))
            if not ids:
                return found
            rows = self._read_rows(ids, ("method", "state", "dismissed"), "read live tasks")
            found += [(method, state) for method, state, dismissed in rows
                      if method is not None and dismissed != "1"]
            if len(ids) < GAUGE_BATCH:
                return found
            start += GAUGE_BATCH
