"""Task records in Redis: the store of multiprocessing mode, shared by processes and hosts.

Key layout (every key has a TTL):

``{prefix}:task:{task_id}``
    A hash: ``method state progress created started finished error owner heartbeat``
    and, once succeeded, ``result`` (JSON). TTL ``live_ttl`` while queued or running
    (refreshed by every heartbeat), ``result_ttl`` once done.
``{prefix}:owner:{owner}``
    Present while the server process that queued tasks is alive (TTL ``lost_after``).

Values are JSON or plain numbers and strings, never pickles.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Iterator, TypeVar

import redis

from ladon_tasks.constants import DEFAULT_KEY_PREFIX, OWNER_KEY, TASK_KEY
from ladon_tasks.exceptions import StoreUnavailable
from ladon_tasks.stores.base import ProgressSink, TaskStore
from ladon_tasks.task import TaskRecord, TaskState

log = logging.getLogger(__name__)
T = TypeVar("T")

_FIELDS = ("method", "state", "progress", "created", "started", "finished", "error", "owner",
           "heartbeat")
#: A read takes the result too: it is there only once the task succeeded, and then kept.
_READ_FIELDS = (*_FIELDS, "result")
_FINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED})
#: Tasks that ended whose record each server process keeps, to answer polls without Redis.
ENDED_CACHE_SIZE = 10_000

# Each script changes a task only if it exists and is in the expected state, so writes
# from a late or restarted worker can neither resurrect nor reopen a task.
# A new task: all its fields and its TTL in one atomic step, or nothing.
_CREATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
_MARK_RUNNING = """
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'running', 'started', ARGV[1], 'heartbeat', ARGV[1],
           'owner', ARGV[2], 'progress', '0.0')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
_PROGRESS = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1], 'heartbeat', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
_HEARTBEAT = """
for i, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'state') == 'running' then
    redis.call('HSET', key, 'heartbeat', ARGV[1])
    redis.call('EXPIRE', key, ARGV[2])
  end
end
return 1
"""
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' and state ~= 'lost' then return 0 end
if state == 'lost' and ARGV[1] == 'lost' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished', ARGV[2], 'error', ARGV[3], 'progress', '1.0')
if ARGV[1] == 'succeeded' then
  redis.call('HSET', KEYS[1], 'result', ARGV[5])
end
if redis.call('HGET', KEYS[1], 'started') == '0' then
  redis.call('HSET', KEYS[1], 'started', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


class RedisStore(TaskStore):
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
    ) -> None:
        self.url = url
        self.key_prefix = key_prefix
        self.result_ttl = max(1, int(round(result_ttl)))
        self.live_ttl = max(self.result_ttl, 86400)
        self.progress_interval = progress_interval
        self.heartbeat_interval = heartbeat_interval
        self.lost_after = lost_after
        self._pid = -1
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._sinks: dict[str, list] = {}
        self._sinks_lock = threading.Lock()
        self._reporter: threading.Thread | None = None
        self._stop_reporter = threading.Event()
        self._ended: dict[str, tuple[TaskRecord, str | None, float]] = {}
        self._ended_lock = threading.Lock()

    # -- connection -------------------------------------------------------------------

    @property
    def client(self) -> redis.Redis:
        """This process's client; a new one (and pool) after a fork."""
        pid = os.getpid()
        if self._client is None or self._pid != pid:
            client = redis.Redis.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=2,
                health_check_interval=30,
            )
            self._scripts = {
                name: client.register_script(source)
                for name, source in (("create", _CREATE), ("mark_running", _MARK_RUNNING),
                                     ("progress", _PROGRESS),
                                     ("heartbeat", _HEARTBEAT), ("finish", _FINISH))
            }
            self._client, self._pid = client, pid
            if self._reporter is not None and not self._reporter.is_alive():
                self._reporter = None
        return self._client

    def key(self, kind: str, name: str) -> str:
        """The one place Redis key names are built."""
        return f"{self.key_prefix}:{kind}:{name}"

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"Redis at {_safe_url(self.url)} is unreachable ({what}): {exc}") from exc

    def _script(self, name: str, keys: list[str], args: list[Any]) -> int:
        client = self.client
        return int(self._scripts[name](keys=keys, args=args, client=client))

    # -- TaskStore --------------------------------------------------------------------

    def create(self, record: TaskRecord) -> None:
        mapping = {
            "method": record.method,
            "state": record.state.value,
            "progress": repr(record.progress),
            "created": repr(record.created),
            "started": "0",
            "finished": "0",
            "error": "",
            "owner": record.owner,
            "heartbeat": "0",
        }
        key = self.key(TASK_KEY, record.task_id)
        args: list[Any] = [self.live_ttl]
        for name, value in mapping.items():
            args += (name, value)
        self._call("create task", lambda: self._script("create", [key], args))

    def get(self, task_id: str) -> TaskRecord | None:
        ended = self._ended_entry(task_id)
        if ended is not None:
            return replace(ended[0])
        key = self.key(TASK_KEY, task_id)
        values = self._call("read task", lambda: self.client.hmget(key, _READ_FIELDS))
        if values[1] is None:
            return None
        record = self._detect_lost(_record_from_fields(task_id, values[:-1]))
        if record is not None and record.state in _FINAL:
            self._remember_ended(record, values[-1])
        return record

    def _ended_entry(self, task_id: str) -> tuple[TaskRecord, str | None, float] | None:
        """This process's copy of a task that ended for good, while Redis keeps it too."""
        entry = self._ended.get(task_id)
        if entry is not None and entry[2] <= time.time():
            self._ended.pop(task_id, None)
            return None
        return entry

    def _remember_ended(self, record: TaskRecord, raw_result: str | None) -> None:
        # Succeeded and failed tasks never change again (only 'lost' may still yield to
        # its worker's real outcome), so polls after the end need no Redis round trip.
        with self._ended_lock:
            while len(self._ended) >= ENDED_CACHE_SIZE:
                self._ended.pop(next(iter(self._ended)))
            self._ended[record.task_id] = (record, raw_result, record.finished + self.result_ttl)

    def _detect_lost(self, record: TaskRecord) -> TaskRecord | None:
        """The record, recorded lost first if its worker or owner has gone silent."""
        now = time.time()
        if record.state is TaskState.RUNNING and now - record.heartbeat > self.lost_after:
            error = (f"TaskLost: the worker process stopped sending heartbeats "
                     f"{now - record.heartbeat:.0f} s ago (killed or crashed)")
        elif record.state is TaskState.QUEUED and record.owner and not self._call(
            "read owner", lambda: self.client.exists(self.key(OWNER_KEY, record.owner))
        ):
            error = "TaskLost: the server process that queued this task stopped before it started"
        else:
            return record
        if not self.finish(record.task_id, TaskState.LOST, now, error=error):
            return self.get(record.task_id)  # its worker recorded the end meanwhile
        record.state, record.error, record.finished, record.progress = TaskState.LOST, error, now, 1.0
        if not record.started:
            record.started = now
        return record

    def mark_running(self, task_id: str, started: float, owner: str) -> bool:
        key = self.key(TASK_KEY, task_id)
        return bool(self._call("mark running", lambda: self._script(
            "mark_running", [key], [repr(started), owner, self.live_ttl])))

    def set_progress(self, task_id: str, progress: float, heartbeat: float) -> bool:
        key = self.key(TASK_KEY, task_id)
        return bool(self._call("write progress", lambda: self._script(
            "progress", [key], [repr(progress), repr(heartbeat), self.live_ttl])))

    def heartbeat(self, task_ids: list[str], now: float) -> None:
        if task_ids:
            keys = [self.key(TASK_KEY, task_id) for task_id in task_ids]
            self._call("heartbeat", lambda: self._script("heartbeat", keys, [repr(now), self.live_ttl]))

    def finish(
        self, task_id: str, state: TaskState, finished: float, result: Any = None, error: str = ""
    ) -> bool:
        key = self.key(TASK_KEY, task_id)
        encoded = ""
        if state is TaskState.SUCCEEDED:
            encoded = json.dumps(result, separators=(",", ":"), allow_nan=False)
        return bool(self._call("record end", lambda: self._script(
            "finish", [key], [state.value, repr(finished), error, self.result_ttl, encoded])))

    def get_result(self, task_id: str) -> Any:
        ended = self._ended_entry(task_id)
        if ended is not None:
            raw = ended[1]
        else:
            raw = self._call("read result", lambda: self.client.hget(self.key(TASK_KEY, task_id), "result"))
        return None if raw is None else json.loads(raw)

    def register_owner(self, owner: str, ttl: float) -> None:
        key = self.key(OWNER_KEY, owner)
        self._call("register owner", lambda: self.client.set(key, str(os.getpid()), px=int(ttl * 1000)))

    def ping(self) -> None:
        self._call("ping", self.client.ping)

    def close(self) -> None:
        self._stop_reporter.set()
        if self._reporter is not None:
            self._reporter.join(timeout=5)
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None

    # -- coalesced progress -----------------------------------------------------------

    def progress_sink(self, task_id: str) -> ProgressSink:
        cell: list = [None, None]  # [latest value, last value written]

        def sink(progress: float) -> None:
            cell[0] = progress

        sink.cell = cell  # type: ignore[attr-defined]
        sink.task_id = task_id  # type: ignore[attr-defined]
        with self._sinks_lock:
            self._sinks[task_id] = cell
        self._ensure_reporter()
        return sink

    def close_progress_sink(self, sink: ProgressSink) -> None:
        task_id: str = sink.task_id  # type: ignore[attr-defined]
        with self._sinks_lock:
            cell = self._sinks.pop(task_id, None)
        if cell is not None and cell[0] is not None and cell[0] != cell[1]:
            self.set_progress(task_id, cell[0], time.time())

    def _ensure_reporter(self) -> None:
        if self._reporter is not None and self._reporter.is_alive():
            return
        self._stop_reporter.clear()
        self._reporter = threading.Thread(
            target=self._report_forever, name="ladon-tasks-progress", daemon=True)
        self._reporter.start()

    def _report_forever(self) -> None:
        """Write changed progress every ``progress_interval``, heartbeats every ``heartbeat_interval``."""
        last_beat = 0.0
        while not self._stop_reporter.wait(self.progress_interval):
            now = time.time()
            with self._sinks_lock:
                changed = [(task_id, cell) for task_id, cell in self._sinks.items()
                           if cell[0] is not None and cell[0] != cell[1]]
                running = list(self._sinks)
            try:
                for task_id, cell in changed:
                    value = cell[0]
                    self.set_progress(task_id, value, now)
                    cell[1] = value
                if now - last_beat >= self.heartbeat_interval:
                    self.heartbeat(running, now)
                    last_beat = now
            except StoreUnavailable as exc:
                log.warning("progress and heartbeats not written, will retry: %s", exc)


def _record_from_fields(task_id: str, values: list[str | None]) -> TaskRecord:
    fields = dict(zip(_FIELDS, values, strict=True))
    return TaskRecord(
        task_id=task_id,
        method=fields["method"] or "",
        state=TaskState(fields["state"]),
        progress=float(fields["progress"] or 0.0),
        created=float(fields["created"] or 0.0),
        started=float(fields["started"] or 0.0),
        finished=float(fields["finished"] or 0.0),
        error=fields["error"] or "",
        owner=fields["owner"] or "",
        heartbeat=float(fields["heartbeat"] or 0.0),
    )


def _safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    from urllib.parse import urlparse

    parts = urlparse(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def iter_task_keys(store: RedisStore) -> Iterator[str]:
    """Every task key under the store's prefix (for tests and operators)."""
    yield from store.client.scan_iter(match=store.key(TASK_KEY, "*"))
