"""A server process's registration in Redis, kept through outages and data loss.

The owner key tells every reader that the server process holding some tasks is alive;
while it is, no reader records those tasks lost. It is renewed every half
``heartbeat_interval``, and on every supervisor turn while Redis is away, so it is back
as soon as Redis answers. A renewal that finds the key gone (an outage longer than
``lost_after``, or a Redis restarted without its data) has the store write again every
record of a task this process still holds that Redis lost.
"""

from __future__ import annotations

import logging
from typing import Callable

from ladon_tasks.exceptions import StoreUnavailable
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.task import TaskRecord

log = logging.getLogger("ladon_tasks.executors.process")


class OwnerRegistration:
    """The owner key of one server process; ``held()`` lists the records of its tasks."""

    def __init__(self, store: TaskStore, owner: str, ttl: float, period: float,
                 held: Callable[[], list[TaskRecord]]) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self.period = period
        self._held = held
        self._last = -float("inf")
        self._once = False
        #: The last renewal could not be written: try again at once, and before a start.
        self.failed = False

    def register(self) -> None:
        """Renew the key now; raises StoreUnavailable (and is due again) if Redis is away."""
        try:
            was_registered = self.store.register_owner(self.owner, self.ttl)
        except StoreUnavailable:
            self.failed = True
            raise
        self.failed = False
        if not was_registered and self._once:
            log.warning("the registration of this server process (%s) had lapsed in Redis; "
                        "checking that Redis still holds its tasks", self.owner)
            self._restore()
        self._once = True

    def beat(self, now: float) -> None:
        """A supervisor turn: renew the key if it is due (always, while Redis is away)."""
        if not self.failed and now - self._last < self.period:
            return
        self._last = now
        try:
            self.register()
        except StoreUnavailable:
            pass  # the store logged the outage; the next turn tries again

    def _restore(self) -> None:
        written = self.store.restore(self._held())
        if written:
            log.warning("Redis had lost the records of %d task(s) held by this server process "
                        "(restarted without its data?): they are written again", written)
