"""The history of each method's successful durations in Redis, read at most every few
seconds per process: ``expected_duration`` costs a poll no round trip."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ladon_tasks.constants import DURATIONS_KEY
from ladon_tasks.estimate import typical_duration
from ladon_tasks.exceptions import StoreUnavailable

T = TypeVar("T")

#: Seconds a method's durations, read once, answer for every process's polls.
DURATIONS_FRESH = 5.0
#: Methods whose durations one process keeps at most (a guard, not a limit anyone meets).
MAX_METHODS_CACHED = 10_000


class MethodHistory:
    """Durations of a method's latest successes (appended by the finish script)."""

    #: method -> (monotonic time read, its recent successful durations, their median).
    _durations: dict[str, tuple[float, list[float], float]]

    if TYPE_CHECKING:  # the store's own
        client: Any

        def key(self, kind: str, name: str) -> str: ...

        def _call(self, what: str, operation: Callable[[], T]) -> T: ...

    def durations(self, method: str) -> list[float]:
        return self._history(method)[1]

    def expected_duration(self, method: str) -> float:
        return self._history(method)[2]

    def _history(self, method: str) -> tuple[float, list[float], float]:
        # Read at most every DURATIONS_FRESH s per method: polls cost no round trip more.
        now = time.monotonic()
        cached = self._durations.get(method)
        if cached is not None and now - cached[0] < DURATIONS_FRESH:
            return cached
        key = self.key(DURATIONS_KEY, method)
        try:
            values = [float(value) for value in self._call(
                "read durations", lambda: self.client.lrange(key, 0, -1))]
        except StoreUnavailable:
            # An estimate never fails a poll: the last history known, or none, for a while.
            values = cached[1] if cached is not None else []
        if len(self._durations) >= MAX_METHODS_CACHED:
            self._durations.clear()
        entry = self._durations[method] = (now, values, typical_duration(values))
        return entry
