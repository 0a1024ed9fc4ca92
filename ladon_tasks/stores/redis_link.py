"""One process's link to one Redis: its client, and the outages it went through.

The client and its connection pool are made lazily, once per process id, so a store
built before ``fork()`` never shares a socket with a child. Every operation goes through
:meth:`RedisLink.call`: an unreachable Redis, or one that cannot write for now (full,
loading its data, a replica after a failover), is :exc:`StoreUnavailable`; the start and
the end of each outage are logged once.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

import redis

from ladon_tasks.exceptions import StoreUnavailable
from ladon_tasks.stores.redis_scripts import SCRIPTS

log = logging.getLogger("ladon_tasks.stores.redis")
T = TypeVar("T")

#: Errors of a Redis that is there but cannot take writes for now: retried as an
#: unreachable one. redis-py names some; others are known by their prefix.
_TRANSIENT_ERRORS = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError,
                     redis.exceptions.TryAgainError, redis.exceptions.MasterDownError,
                     redis.exceptions.ClusterDownError)
_TRANSIENT_PREFIXES = ("OOM", "MISCONF", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN",
                       "NOREPLICAS", "BUSY", "CLUSTERDOWN")
#: Seconds Redis's uptime, once read, is trusted (then extrapolated) before it is read again.
UPTIME_FRESH = 1.0


class RedisLink:
    """A client per process, its scripts, and the memory of its outages."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pid = -1
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        #: Monotonic times of the first failure of the current outage (None: none now)
        #: and of the latest failure.
        self._failing_since: float | None = None
        self._last_failure = -float("inf")
        self._uptime_checked = (-float("inf"), 0.0)

    @property
    def client(self) -> redis.Redis:
        """This process's client; a new one (and pool) after a fork."""
        pid = os.getpid()
        if self._client is None or self._pid != pid:
            client = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5,
                                          socket_connect_timeout=2, health_check_interval=30)
            self._scripts = {name: client.register_script(source) for name, source in SCRIPTS.items()}
            self._client, self._pid = client, pid
        return self._client

    def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one of :data:`SCRIPTS` (not through :meth:`call`)."""
        client = self.client
        return self._scripts[name](keys=keys, args=args, client=client)

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """Run one Redis operation; ``what`` names it in messages."""
        try:
            value = operation()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise self._unavailable(what, exc, "is unreachable") from exc
        except redis.ResponseError as exc:
            if not (isinstance(exc, _TRANSIENT_ERRORS) or str(exc).startswith(_TRANSIENT_PREFIXES)):
                raise
            raise self._unavailable(what, exc, f"cannot write now ({type(exc).__name__})") from exc
        if self._failing_since is not None:
            self._recovered()
        return value

    def _unavailable(self, what: str, exc: Exception, how: str) -> StoreUnavailable:
        now = time.monotonic()
        self._last_failure = now
        if self._failing_since is None:
            self._failing_since = now
            log.warning("Redis at %s %s (%s): %s", safe_url(self.url), how, what, exc)
        return StoreUnavailable(f"Redis at {safe_url(self.url)} {how} ({what}): {exc}")

    def _recovered(self) -> None:
        since, self._failing_since = self._failing_since, None
        if since is not None:
            log.warning("Redis at %s answers again after %.1f s", safe_url(self.url),
                        time.monotonic() - since)

    def disrupted_within(self, seconds: float) -> bool:
        """True within ``seconds`` of an outage: this process failed to reach Redis, or
        Redis itself (re)started that recently (another process may have seen it)."""
        now = time.monotonic()
        if now - self._last_failure < seconds:
            return True
        checked_at, uptime = self._uptime_checked
        if now - checked_at > UPTIME_FRESH:
            uptime = float(self.call("read uptime", lambda: self.client.info("server"))
                           .get("uptime_in_seconds", 0))
            self._uptime_checked = (now, uptime)
        else:
            uptime += now - checked_at
        return uptime < seconds

    def close(self) -> None:
        """Close this process's pool (a fork's inherited one is left to its owner)."""
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    parts = urlparse(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
