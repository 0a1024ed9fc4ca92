"""A lock that counts its releases, so that a reader may copy an object without it.

A reader notes :attr:`CountedLock.releases`, checks that nobody holds the lock, copies
what it wants and checks both again: if the lock was free at both ends and never released
in between, nobody held it during the copy, so no writer that works under it can have
changed the object half-way. Otherwise the reader takes the lock. Under the GIL these
reads and writes of plain attributes are seen in order, which is all this needs.
"""

from __future__ import annotations

import threading
from typing import Any


class CountedLock:
    """``threading.Lock`` as a context manager, counting the times it was released."""

    __slots__ = ("_lock", "releases")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: How many times the lock has been released (by anyone).
        self.releases = 0

    def __enter__(self) -> CountedLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.releases += 1  # before the release: a reader that sees the lock free sees this too
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()
