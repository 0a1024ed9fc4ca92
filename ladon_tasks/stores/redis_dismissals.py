"""Dismissals told to every server process, so each may keep its copy of ended tasks.

A server process answers polls of an ended task from its own copy of the record, with no
Redis round trip. A task dismissed through another process must not go on being answered
from that copy: every dismissal is published on ``{prefix}:dismissed``, and each process
that keeps copies listens there and drops the task's copy. While the listener is not
subscribed (starting, or Redis away), new copies are kept for ENDED_CACHE_SECONDS only;
the copies it has go on answering while Redis is away (nobody can dismiss through a Redis
that is down), and all of them are dropped when it subscribes again, since dismissals may
have been made meanwhile (a Redis that came back, a network split).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

import redis

log = logging.getLogger(__name__)

#: Seconds between two attempts to subscribe again after Redis went away.
RESUBSCRIBE_PAUSE = 1.0


class DismissalListener:
    """A daemon thread subscribed to the dismissal channel of one store.

    ``forget(task_id)`` is called for every dismissal, ``forget_all()`` on every (new)
    subscription, when messages may have been missed. :attr:`live` is True while
    dismissals are sure to reach us.
    """

    def __init__(self, url: str, channel: str, forget: Callable[[str], None],
                 forget_all: Callable[[], None],
                 more: dict[str, Callable[[str], None]] | None = None) -> None:
        self.url = url
        self.channel = channel
        self._forget = forget
        self._forget_all = forget_all
        #: Every channel listened to on the one connection, and what hears its messages
        #: (``more``: other channels, such as the ended tasks of _wait).
        self._handlers = {channel: forget, **(more or {})}
        self._live = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = -1

    @property
    def live(self) -> bool:
        """True while subscribed in this process (a fork starts unsubscribed)."""
        return self._pid == os.getpid() and self._live.is_set()

    def wait_live(self, timeout: float) -> bool:
        """Start listening if needed and wait up to ``timeout`` s to be subscribed."""
        self.ensure_started()
        return self._live.wait(timeout) and self.live

    def ensure_started(self) -> None:
        """Start listening, once per process."""
        if self._pid == os.getpid() and self._thread is not None:
            return
        self._pid = os.getpid()
        self._live.clear()
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen_forever, name="ladon-tasks-dismissals",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (within a second; the thread's own connection closes then)."""
        self._stop.set()

    def _listen_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen_once()
            except Exception as exc:  # Redis away, or gone mid-read: listen again
                if not self._stop.is_set():
                    log.info("dismissal channel lost, copies of ended tasks dropped: %s", exc)
            finally:
                self._live.clear()
            self._stop.wait(RESUBSCRIBE_PAUSE)

    def _listen_once(self) -> None:
        # A client of its own: the store may close its pool while we listen.
        client = redis.Redis.from_url(self.url, decode_responses=True, socket_connect_timeout=2,
                                      health_check_interval=30)
        pubsub = client.pubsub(ignore_subscribe_messages=False)
        try:
            pubsub.subscribe(*self._handlers)
            subscribed = 0
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    subscribed += 1
                    if subscribed == len(self._handlers):
                        self._forget_all()
                        self._live.set()
                elif message["type"] == "message":
                    self._handlers[message["channel"]](message["data"])
        finally:
            pubsub.close()
            client.close()
