"""One retry policy for every write of a task's life while its store cannot take it.

A worker that cannot reach Redis (restarting, failing over, out of memory) keeps what it
has to write, and writes it again, pausing a little longer each time, for up to
``store_retry_for`` seconds. Only then does it give up, and says so in the log. The first
failure of an outage and the recovery are logged once each, not every retry.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from ladon_tasks.exceptions import StoreUnavailable

log = logging.getLogger("ladon_tasks.store")
T = TypeVar("T")

#: Seconds of the first pause between two tries, and of the longest.
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0


class RecordMissing(StoreUnavailable):
    """The store has neither the task's record nor its tombstone while the task lives:
    it lost its data (Redis restarted empty), and the server holding the task writes the
    record again once it notices. Retried like an unreachable store."""


class StoreRetry:
    """Retries a store write on StoreUnavailable until it succeeds or ``seconds`` pass."""

    def __init__(self, seconds: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.seconds = float(seconds)
        self._sleep = sleep

    def run(self, what: str, write: Callable[[], T], task_id: str) -> T:
        """``write()``'s answer; re-raises its last StoreUnavailable once time is up."""
        try:
            return write()
        except StoreUnavailable as first:
            return self._again(what, write, task_id, first)

    def _again(self, what: str, write: Callable[[], T], task_id: str, error: StoreUnavailable) -> T:
        began = time.monotonic()
        log.warning("task %s: cannot %s, retrying for up to %g s (store_retry_for): %s",
                    task_id, what, self.seconds, error)
        pause = FIRST_PAUSE
        while True:
            if time.monotonic() - began >= self.seconds:
                log.error("task %s: gave up trying to %s after %g s (store_retry_for): %s",
                          task_id, what, self.seconds, error)
                raise error
            self._sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
            try:
                value = write()
            except StoreUnavailable as exc:
                error = exc
                continue
            log.info("task %s: could %s again after %.1f s", task_id, what, time.monotonic() - began)
            return value
