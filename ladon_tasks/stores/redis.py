"""Task records in Redis: the store of multiprocessing mode, shared by processes and hosts.

Key layout (every key but the paused methods' has a TTL):

``{prefix}:task:{task_id}``
    A hash: ``method state progress created started finished error owner heartbeat
    attempt cancel_requested touched max_silence dismissed`` and, once succeeded,
    ``result`` (JSON). TTL ``live_ttl`` while queued or running (refreshed by every
    heartbeat), ``result_ttl`` once done.
``{prefix}:gone:{task_id}``
    The tombstone of an ended task: ``expired`` (set at its end, TTL ``result_ttl +
    tombstone_ttl``) or ``dismissed`` (TTL ``tombstone_ttl``).
``{prefix}:index:live``, ``{prefix}:index:ended``
    Sorted sets of the ids of queued and running tasks, and of ended ones, scored by
    creation time, for listing (see redis_index); each with a TTL no shorter than its
    longest-lived task's, and no key at all once empty.
``{prefix}:dismissed``
    A pub/sub channel, not a key: the id of every task dismissed, so that each server
    process drops its own copy of that ended task.
``{prefix}:unique:{key}``
    The id of the queued or running task of a unique method with these arguments and
    caller (the key is a hash of them); TTL ``live_ttl``, renewed by the running task's
    heartbeats, deleted as the task ends.
``{prefix}:paused``
    The paused methods, a hash of method (or ``*``: every one) -> since when. A setting,
    not a task: no TTL, a pause lasts until it is resumed.
``{prefix}:metrics``
    The metrics' counters (see redis_operations); TTL ``METRICS_TTL`` (30 days) from the
    last change of any task.
``{prefix}:owner:{owner}``
    Present while the server process that holds tasks (the ``owner`` of their records) is
    alive (TTL ``lost_after``).

Values are JSON or plain numbers and strings, never pickles.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

import redis
from redis.connection import parse_url

from ladon_tasks.constants import (
    DEFAULT_KEY_PREFIX,
    DISMISSED_CHANNEL,
    DURATIONS_KEY,
    ENDED_CHANNEL,
    GONE_KEY,
    OWNER_KEY,
    TASK_KEY,
    UNIQUE_KEY,
)
from ladon_tasks.estimate import HISTORY
from ladon_tasks.exceptions import TaskPaused
from ladon_tasks.sizes import too_large
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.stores.end_signals import EndSignals
from ladon_tasks.stores.redis_dismissals import DismissalListener
from ladon_tasks.stores.redis_ended import NOT_READ, EndedCopies
from ladon_tasks.stores.redis_fields import DISMISSED_AT, FIELDS, JOB_FIELD, record_fields, record_from_fields
from ladon_tasks.stores.redis_history import MethodHistory
from ladon_tasks.stores.redis_index import TaskIndex
from ladon_tasks.stores.redis_link import RedisLink
from ladon_tasks.stores.redis_live import LiveCopies
from ladon_tasks.stores.redis_operations import RedisOperations
from ladon_tasks.stores.redis_progress import CoalescedProgress
from ladon_tasks.task import CANCELLED_QUEUED, Gone, TaskRecord, TaskState, snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")

_FINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})
#: Redis's own limit on one value (``proto-max-bulk-len``) when CONFIG cannot be read.
DEFAULT_BULK_LIMIT = 512 * 1024 * 1024
_SMALLEST_BULK_LIMIT = 1024 * 1024
#: Room left in a bulk string for the rest of the write that carries a result.
_BULK_MARGIN = 64 * 1024
#: Seconds a server process answers an ended task from its own copy before it asks Redis
#: again, while it is not subscribed to dismissals (see redis_dismissals): how long a
#: dismissal made through another process may then go unseen here.
ENDED_CACHE_SECONDS = 1.0


#: Seconds a method's history outlives its last success.
DURATIONS_TTL = 30 * 86400


class RedisStore(CoalescedProgress, MethodHistory, TaskIndex, RedisOperations, TaskStore):
    """Task records in Redis hashes, with coalesced progress writes and heartbeats.

    The client and its connection pool are made lazily, once per process id, so a
    store built before ``fork()`` never shares a socket with a child.
    """

    needs_encoded_results = True

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        result_ttl: float = 3600.0,
        progress_interval: float = 0.1,
        heartbeat_interval: float = 1.0,
        lost_after: float = 10.0,
        tombstone_ttl: float = 86400.0,
        max_result_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.url = url
        self.key_prefix = key_prefix
        self.result_ttl = max(1, int(round(result_ttl)))
        self.tombstone_ttl = max(1, int(round(tombstone_ttl)))
        self.live_ttl = max(self.result_ttl, 86400)
        self.progress_interval = progress_interval
        self.heartbeat_interval = heartbeat_interval
        self.lost_after = lost_after
        self.max_result_bytes = int(max_result_bytes)
        self._bulk_limit: int | None = None
        self.link = RedisLink(url)
        self._sinks: dict[str, list] = {}
        self._sinks_lock = threading.Lock()
        self._reporter: threading.Thread | None = None
        self._stop_reporter = threading.Event()
        #: Copies of ended tasks, dropped when another process dismisses one.
        self.ended = EndedCopies()
        self.dismissal_channel = f"{key_prefix}:{DISMISSED_CHANNEL}"
        self.ended_channel = f"{key_prefix}:{ENDED_CHANNEL}"
        #: method -> (monotonic time read, its recent successful durations, their median).
        self._durations: dict[str, tuple[float, list[float], float]] = {}
        self.end_signals = EndSignals()
        #: Copies of queued and running tasks, 50 ms at most (see redis_live).
        self.live = LiveCopies()
        self._dismissals = DismissalListener(url, self.dismissal_channel, self._heard_dismissal,
                                             self._missed_messages,
                                             more={self.ended_channel: self._heard_end})
        #: Called with a running task whose worker is found gone, and the error it would be
        #: recorded lost with; True if it queued the task again instead (celery mode's
        #: retries, which any reader may start).
        self.lost_handler: Callable[[TaskRecord, str], bool] | None = None

    @classmethod
    def from_config(cls, config: Any, url: str | None = None) -> RedisStore:
        """A store with the Redis settings of a :class:`~ladon_tasks.TaskConfig`."""
        return cls(
            url or config.redis_url or "",
            key_prefix=config.key_prefix,
            result_ttl=config.result_ttl,
            progress_interval=config.progress_interval,
            heartbeat_interval=config.heartbeat_interval,
            lost_after=config.lost_after,
            tombstone_ttl=config.tombstone_ttl,
            max_result_bytes=config.max_result_bytes,
        )

    # -- connection -------------------------------------------------------------------

    @property
    def client(self) -> redis.Redis:
        """This process's client; a new one (and pool) after a fork."""
        return self.link.client

    def key(self, kind: str, name: str) -> str:
        """The one place Redis key names are built."""
        return f"{self.key_prefix}:{kind}:{name}"

    def _keys(self, task_id: str) -> list[str]:
        """The task's hash and its tombstone."""
        return [self.key(TASK_KEY, task_id), self.key(GONE_KEY, task_id)]

    def _indexed_keys(self, task_id: str) -> list[str]:
        """The keys of every script that may move a task in the index: its hash, its
        tombstone, the live and ended index (see redis_index), and the metrics."""
        return [*self._keys(task_id), self.live_index_key, self.ended_index_key, self.metrics_key]

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        return self.link.call(what, operation)

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self.link.script(name, keys, args)

    def _script(self, name: str, keys: list[str], args: list[Any]) -> int:
        return int(self._run(name, keys, args))

    # -- TaskStore --------------------------------------------------------------------

    def create(self, record: TaskRecord, job: Any = None, unique: str | None = None) -> str:
        args = self._write_args(record)
        if job is not None:
            args += (JOB_FIELD, json.dumps(job, separators=(",", ":")))
        keys = self._indexed_keys(record.task_id)
        if unique is not None:
            keys.append(self.key(UNIQUE_KEY, unique))
        created = self._call("create task", lambda: self._run("create", keys, args))
        return record.task_id if created == 1 else str(created)

    def get_with_job(self, task_id: str) -> tuple[TaskRecord | None, Any]:
        key = self.key(TASK_KEY, task_id)
        *values, raw_job = self._call("read task", lambda: self.client.hmget(key, (*FIELDS, JOB_FIELD)))
        if values[1] is None or values[DISMISSED_AT] == "1":
            return None, None
        record = self._detect_lost(record_from_fields(task_id, values))
        return record, None if raw_job is None or record is None else json.loads(raw_job)

    def _heard_dismissal(self, task_id: str) -> None:
        self.live.forget(task_id)
        self.ended.forget(task_id)

    def _heard_end(self, task_id: str) -> None:
        self.live.forget(task_id)  # before the waiters wake: they read it afresh
        self.end_signals.signal(task_id)

    def _missed_messages(self) -> None:
        """A (new) subscription: dismissals and ends may have been missed meanwhile."""
        self.live.forget_all()
        self.ended.forget_all()
        self.end_signals.signal_all()

    def wake_interval(self) -> float:
        # Subscribed: every end is published, and read again every 5 s only as a safety
        # net. Not subscribed (Redis away, just started): every second.
        return 5.0 if self._dismissals.wait_live(1.0) else 1.0

    def get_job(self, task_id: str) -> Any:
        key = self.key(TASK_KEY, task_id)
        state, dismissed, raw = self._call("read job", lambda: self.client.hmget(
            key, ("state", "dismissed", JOB_FIELD)))
        if state is None or dismissed == "1" or raw is None:
            return None
        return json.loads(raw)

    def get(self, task_id: str) -> TaskRecord | None:
        ended = self.ended.entry(task_id)
        if ended is not None:
            return snapshot(ended[0])
        live = self.live.get(task_id)
        if live is not None and self._dismissals.live:
            return live
        # A process that reads tasks will keep copies of ended ones: hear of dismissals
        # before it has any (a copy made before that lasts ENDED_CACHE_SECONDS only).
        self._dismissals.ensure_started()
        key = self.key(TASK_KEY, task_id)
        live_since, ended_since = self.live.generation, self.ended.generation
        values = self._call("read task", lambda: self.client.hmget(key, FIELDS))
        if values[1] is None or values[DISMISSED_AT] == "1":
            return None
        record = self._detect_lost(record_from_fields(task_id, values))
        if record is not None and record.state in _FINAL:
            self._remember_ended(record, NOT_READ, ended_since)
        elif record is not None and not record.state.done and self._dismissals.live:
            self.live.keep(record, live_since)
        return record

    def gone(self, task_id: str) -> tuple[Gone, str] | None:
        stone = self._call("read tombstone", lambda: self.client.get(self.key(GONE_KEY, task_id)))
        if stone is None:
            return None
        why, _, caller = stone.partition("|")
        return Gone(why), caller

    def _remember_ended(self, record: TaskRecord, raw_result: Any, since: int,
                        result: Any = NOT_READ) -> None:
        # Succeeded, failed and cancelled tasks never change again (only 'lost' may still
        # yield to its worker's real outcome), so polls after the end need no Redis round
        # trip. Another process may dismiss the task: the copy lasts while we hear of that.
        if record.state is TaskState.SUCCEEDED:
            self._durations.pop(record.method, None)  # its history just grew: read it afresh
        fresh_until = record.finished + self.result_ttl
        if not self._dismissals.live:
            fresh_until = min(fresh_until, time.time() + ENDED_CACHE_SECONDS)
        self.ended.keep(record, raw_result, fresh_until, since, result)

    def _detect_lost(self, record: TaskRecord) -> TaskRecord | None:
        """The record, recorded lost first if the server process holding it is gone.

        A live server answers for its tasks itself (it sees its workers die), so a task
        is lost only once its server's registration has lapsed, and, for a running one,
        its worker's heartbeats have stopped too; never within ``lost_after`` of an outage
        of Redis, when a live server may not have registered again yet.
        """
        now = time.time()
        if record.state is TaskState.RUNNING:
            if now - record.heartbeat <= self.lost_after:
                return record
            error = (f"TaskLost: the server process running it stopped, and its worker sent "
                     f"no heartbeat for {now - record.heartbeat:.0f} s (killed or crashed)")
        elif record.state is TaskState.QUEUED:
            error = "TaskLost: the server process that queued this task stopped before it started"
        else:
            return record
        if not record.owner or self._owner_alive(record.owner) or self.link.disrupted_within(self.lost_after):
            return record
        if record.state is TaskState.RUNNING and self.lost_handler is not None \
                and self.lost_handler(record, error):
            return self.get(record.task_id)
        if not self.finish(record.task_id, TaskState.LOST, now, error=error):
            return self.get(record.task_id)  # its worker recorded the end meanwhile
        record.state, record.error, record.finished, record.progress = TaskState.LOST, error, now, 1.0
        if not record.started:
            record.started = now
        return record

    def mark_running(self, task_id: str, started: float, owner: str) -> bool:
        self.live.forget(task_id)
        keys = [self.key(TASK_KEY, task_id), self.paused_key, self.metrics_key]
        started_now = self._call("mark running", lambda: self._script(
            "mark_running", keys, [repr(started), owner, self.live_ttl]))
        if started_now < 0:
            raise TaskPaused(f"task {task_id}: its method is paused")
        return bool(started_now)

    def set_progress(self, task_id: str, progress: float, heartbeat: float,
                     message: str | None = None, reported: float | None = None) -> bool:
        self.live.forget(task_id)
        key = self.key(TASK_KEY, task_id)
        touched = heartbeat if reported is None else reported
        args = [repr(progress), repr(heartbeat), self.live_ttl, repr(touched)]
        if message is not None:
            args.append(message)
        return bool(self._call("write progress", lambda: self._script("progress", [key], args)))

    def heartbeat(self, task_ids: list[str], now: float) -> None:
        if task_ids:
            for task_id in task_ids:  # a write of this process's: its copies are older
                self.live.forget(task_id)
            keys = [*(self.key(TASK_KEY, task_id) for task_id in task_ids), self.live_index_key]
            self._call("heartbeat", lambda: self._script("heartbeat", keys, [repr(now), self.live_ttl]))

    def finish(
        self, task_id: str, state: TaskState, finished: float, result: Any = None, error: str = "",
        attempt: int = 0,
    ) -> bool:
        self.live.forget(task_id)
        encoded = ""
        if state is TaskState.SUCCEEDED:
            encoded = json.dumps(result, separators=(",", ":"), allow_nan=False)
            self._check_size(len(encoded))
        return bool(self._call("record end", lambda: self._script(
            "finish", self._indexed_keys(task_id),
            [state.value, repr(finished), error, self.result_ttl, encoded, self.tombstone_ttl,
             str(attempt), self.key(DURATIONS_KEY, ""), HISTORY, DURATIONS_TTL, self.ended_channel,
             task_id])))

    def requeue(self, task_id: str, attempt: int, note: str, owner: str) -> bool:
        self.live.forget(task_id)
        return bool(self._call("queue again", lambda: self._script(
            "requeue", self._indexed_keys(task_id),
            [str(attempt), note, owner, self.live_ttl, task_id, repr(time.time())])))

    def request_cancel(self, task_id: str, now: float) -> TaskRecord | None:
        return self._control("cancel", task_id, now)

    def dismiss(self, task_id: str, now: float) -> TaskRecord | None:
        record = self._control("dismiss", task_id, now)
        self.ended.forget(task_id)
        return record

    def _control(self, name: str, task_id: str, now: float) -> TaskRecord | None:
        """Run the cancel or dismiss script; the record it answers, or None if gone."""
        self.live.forget(task_id)
        args = [repr(now), self.result_ttl, self.tombstone_ttl, CANCELLED_QUEUED, task_id, *FIELDS]
        keys = [*self._indexed_keys(task_id), self.dismissal_channel, self.ended_channel]
        values = self._call(name, lambda: self._run(name, keys, args))
        if not values or values[1] is None:
            return None
        return record_from_fields(task_id, values)

    def cancel_requests(self, task_ids: list[str]) -> set[str]:
        if not task_ids:
            return set()
        keys = [self.key(TASK_KEY, task_id) for task_id in task_ids]
        asked = self._call("read cancel requests", lambda: self._run("cancel_requests", keys, []))
        return {task_ids[int(index) - 1] for index in asked}

    def _check_size(self, size: int) -> None:
        """Raise ResultTooLarge for a result over max_result_bytes or Redis's own limit
        (read once; Redis allows no limit below 1 MB, so smaller results need no read)."""
        if size <= self.max_result_bytes and size <= _SMALLEST_BULK_LIMIT - _BULK_MARGIN:
            return
        if size > self.max_result_bytes:
            raise too_large(size, self.max_result_bytes)
        if self._bulk_limit is None:
            self._bulk_limit = self._read_bulk_limit()
        if size > self._bulk_limit - _BULK_MARGIN:
            raise too_large(size, self._bulk_limit - _BULK_MARGIN, "Redis's proto-max-bulk-len")

    def _read_bulk_limit(self) -> int:
        """Redis's proto-max-bulk-len; the default where CONFIG is not allowed."""
        try:
            answer = self._call("read limits", lambda: self.client.config_get("proto-max-bulk-len"))
            return int(answer.get("proto-max-bulk-len", DEFAULT_BULK_LIMIT))
        except redis.ResponseError:  # CONFIG renamed or forbidden (managed Redis)
            log.info("cannot read Redis's proto-max-bulk-len; assuming %d", DEFAULT_BULK_LIMIT)
            return DEFAULT_BULK_LIMIT

    def get_result(self, task_id: str) -> Any:
        since = self.ended.generation
        ended = self.ended.entry(task_id)
        if ended is not None and ended[3] is not NOT_READ:
            return ended[3]  # read and decoded once
        raw = self._call("read result", lambda: self.client.hget(self.key(TASK_KEY, task_id), "result"))
        if raw is None:
            return None
        result = json.loads(raw)
        if ended is not None:
            self._remember_ended(ended[0], raw, since, result)
        return result

    def _owner_alive(self, owner: str) -> bool:
        return bool(self._call("read owner", lambda: self.client.exists(self.key(OWNER_KEY, owner))))

    def register_owner(self, owner: str, ttl: float) -> bool:
        key = self.key(OWNER_KEY, owner)
        before = self._call("register owner", lambda: self.client.set(
            key, str(os.getpid()), px=int(ttl * 1000), get=True))
        return before is not None

    def _write_args(self, record: TaskRecord) -> list[Any]:
        """The arguments of the scripts that write a whole record: its TTL, its id (for
        the index), then field, value, field, value..."""
        args: list[Any] = [self.live_ttl, record.task_id, self.key(TASK_KEY, "")]
        for name, value in record_fields(record).items():
            args += (name, value)
        return args

    def restore(self, records: list[TaskRecord]) -> int:
        return sum(self._restore_one(record) for record in records)

    def _restore_one(self, record: TaskRecord) -> int:
        args = self._write_args(record)
        keys = self._indexed_keys(record.task_id)
        return self._call("restore task", lambda: self._script("restore", keys, args))

    def knows(self, task_id: str) -> bool:
        return bool(self._call("read task", lambda: self.client.exists(*self._keys(task_id))))

    def location(self) -> Any:
        try:
            where = parse_url(self.url)
        except ValueError:
            return (self.url, self.key_prefix)
        return (where.get("host", "localhost"), where.get("port", 6379), where.get("path"),
                where.get("db", 0), self.key_prefix)

    def ping(self) -> None:
        self._call("ping", self.client.ping)

    def close(self) -> None:
        self._dismissals.stop()
        self._stop_reporter.set()
        if self._reporter is not None:
            self._reporter.join(timeout=5)
        self.link.close()


def iter_task_keys(store: RedisStore) -> Iterator[str]:
    """Every task key under the store's prefix (for tests and operators)."""
    yield from store.client.scan_iter(match=store.key(TASK_KEY, "*"))
