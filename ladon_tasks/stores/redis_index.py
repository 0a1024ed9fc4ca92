"""The Redis store's task index, for listing tasks newest first: two sorted sets of task
ids scored by creation time, ``{prefix}:index:live`` (queued and running tasks) and
``{prefix}:index:ended``.

The scripts keep them (see redis_scripts): create and restore add a task to the live set,
an end moves it to the ended set (a retry back), a dismissal takes it out. Each set holds
at most :data:`MAX_INDEXED` ids and keeps a TTL no shorter than that of any task hash it
indexes; an empty set is no key at all. An id whose hash has expired is dropped by the
first listing that meets it.
"""

from __future__ import annotations

from typing import Any, Callable

from ladon_tasks.constants import INDEX_KEY, TASK_KEY
from ladon_tasks.listing import TaskQuery, merge_rows
from ladon_tasks.stores.redis_fields import DISMISSED_AT, FIELDS, record_from_fields
from ladon_tasks.task import TaskRecord, TaskState

#: The most task ids each index set holds; the oldest go first.
MAX_INDEXED = 1_000_000
#: The most ids read per round trip while listing.
INDEX_BATCH = 1000
#: The most ids one call of the filter script walks (a few milliseconds of Redis's time).
FILTER_BATCH = 5000
_LIVE_STATES = frozenset({TaskState.QUEUED, TaskState.RUNNING})


class TaskIndex:
    """Mixin of RedisStore: the index's keys, and the listing."""

    key_prefix: str
    client: Any
    _call: Callable[..., Any]
    _run: Callable[..., Any]

    @property
    def live_index_key(self) -> str:
        return f"{self.key_prefix}:{INDEX_KEY}:live"

    @property
    def ended_index_key(self) -> str:
        return f"{self.key_prefix}:{INDEX_KEY}:ended"

    def list_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        sets = [self.live_index_key, self.ended_index_key]
        if query.state is not None:
            sets = [self.live_index_key if query.state in _LIVE_STATES else self.ended_index_key]
        # A task that ends meanwhile may be read in both sets: merge_rows keeps it once.
        return merge_rows([self._rows_of(key, query) for key in sets])[:query.limit + 1]

    def _rows_of(self, index_key: str, query: TaskQuery) -> list[TaskRecord]:
        """Up to ``query.limit + 1`` matching records of one index set, newest first.
        The first read takes as many ids as the page needs; each next one four times more
        (a filter that matches few), up to :data:`INDEX_BATCH`."""
        top = "+inf" if query.after is None else repr(query.after.created)
        wanted = (query.state.value if query.state else None, query.method, query.caller)
        if wanted != (None, None, None):
            return self._filtered_rows_of(index_key, query, top)
        found: list[TaskRecord] = []
        dead: list[str] = []
        offset, batch_size = 0, query.limit + 2
        while len(found) <= query.limit:
            batch = self._call("list tasks", lambda start=offset, num=batch_size:
                               self.client.zrevrangebyscore(index_key, top, "-inf", start=start,
                                                            num=num, withscores=True))
            if not batch:
                break
            offset += len(batch)
            batch_size = min(INDEX_BATCH, batch_size * 4)
            for (task_id, score), values in zip(batch, self._read_rows([m for m, _ in batch]), strict=True):
                if not query.before_cursor((score, task_id)):
                    continue
                if values[1] is None or values[DISMISSED_AT] == "1":
                    dead.append(task_id)
                    continue
                if not _may_match(values, wanted):
                    continue
                found.append(record_from_fields(task_id, values))
                if len(found) > query.limit:
                    break
        if dead:
            self._call("tidy the index", lambda: self.client.zrem(index_key, *dead))
        return found

    def _filtered_rows_of(self, index_key: str, query: TaskQuery, top: str) -> list[TaskRecord]:
        """As :meth:`_rows_of`, for a filtered query: Redis walks the index itself (the
        ``filter_index`` script, :data:`FILTER_BATCH` ids a call), reading only the fields
        the filters need, and answers the ids that match; only their records are read."""
        state = query.state.value if query.state else ""
        caller = ("1", query.caller) if query.caller is not None else ("0", "")
        task_prefix = f"{self.key_prefix}:{TASK_KEY}:"
        found: list[TaskRecord] = []
        offset = 0
        while len(found) <= query.limit:
            wanted = query.limit + 1 - len(found)
            args = [top, offset, FILTER_BATCH, task_prefix, state, query.method or "", *caller, wanted]
            walked, removed, matches = self._call("list tasks", lambda args=args: self._run(
                "filter_index", [index_key], args))
            pairs = [(matches[i], float(matches[i + 1])) for i in range(0, len(matches), 2)]
            ids = [task_id for task_id, score in pairs if query.before_cursor((score, task_id))]
            for task_id, values in zip(ids, self._read_rows(ids), strict=True):
                if values[1] is not None and values[DISMISSED_AT] != "1":
                    found.append(record_from_fields(task_id, values))
            offset += int(walked) - int(removed)
            if int(walked) < FILTER_BATCH and len(matches) // 2 < wanted:
                break  # the index has no more
        return found[:query.limit + 1]

    def _read_rows(self, task_ids: list[str], fields: tuple[str, ...] = FIELDS,
                   what: str = "list tasks") -> list[list[str | None]]:
        """``fields`` of each task's hash, in one pipelined round trip (``what`` it is for)."""
        def read() -> list:
            pipe = self.client.pipeline(transaction=False)
            for task_id in task_ids:
                pipe.hmget(f"{self.key_prefix}:{TASK_KEY}:{task_id}", fields)
            return pipe.execute()

        return self._call(what, read)


_METHOD, _STATE, _CALLER = FIELDS.index("method"), FIELDS.index("state"), FIELDS.index("caller")


def _may_match(values: list[str | None], wanted: tuple[str | None, str | None, str | None]) -> bool:
    """Whether a hash's raw fields match the query's ``(state, method, caller)`` filters
    (None: any), before a record is made of them."""
    state, method, caller = wanted
    return ((state is None or values[_STATE] == state)
            and (method is None or values[_METHOD] == method)
            and (caller is None or (values[_CALLER] or "") == caller))
