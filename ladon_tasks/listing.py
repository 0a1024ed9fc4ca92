"""Listing tasks: the query, the page, and the cursor that makes paging stable.

Tasks are listed newest first, ordered by ``(created, task_id)``. A cursor names the last
row of a page; the next page starts just after it. A task started meanwhile sorts before
the cursor, so paging on shows neither a row twice nor skips one.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from dataclasses import dataclass, field
from typing import Iterable

from ladon_tasks.exceptions import InvalidQuery, InvalidTaskId
from ladon_tasks.ids import validate_task_id
from ladon_tasks.task import TaskRecord, TaskState

#: Rows a page holds unless the query says otherwise; and the most it may ask for.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Position:
    """Where a row sorts: newer rows are greater."""

    created: float
    task_id: str

    @classmethod
    def of(cls, record: TaskRecord) -> Position:
        return cls(record.created, record.task_id)

    def key(self) -> tuple[float, str]:
        return (self.created, self.task_id)


@dataclass(frozen=True)
class TaskQuery:
    """Which tasks to list: each filter given must match; ``after`` is a decoded cursor."""

    state: TaskState | None = None
    method: str | None = None
    caller: str | None = None
    limit: int = DEFAULT_LIMIT
    after: Position | None = None

    def matches(self, record: TaskRecord) -> bool:
        return ((self.state is None or record.state is self.state)
                and (self.method is None or record.method == self.method)
                and (self.caller is None or record.caller == self.caller))

    def before_cursor(self, position: tuple[float, str]) -> bool:
        """True if a row at ``position`` belongs after the cursor (is older than it)."""
        return self.after is None or position < self.after.key()


@dataclass
class TaskPage:
    """One page: its records, newest first, and the cursor of the next (None: the last)."""

    records: list[TaskRecord] = field(default_factory=list)
    next_cursor: str | None = None


def encode_cursor(position: Position) -> str:
    text = f"{position.created!r}|{position.task_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; InvalidQuery for one no page gave."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        created, task_id = raw.decode("ascii").split("|", 1)
        position = Position(float(created), validate_task_id(task_id))
    except (ValueError, binascii.Error, UnicodeDecodeError, InvalidTaskId):
        raise InvalidQuery(f"cursor {cursor[:40]!r} is not one a page gave") from None
    if position.created != position.created or position.created in (float("inf"), float("-inf")):
        raise InvalidQuery(f"cursor {cursor[:40]!r} is not one a page gave")
    return position


def page_of(rows: list[TaskRecord], limit: int) -> TaskPage:
    """The page of ``rows`` (newest first, up to ``limit + 1`` of them: one more says
    there is a next page)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return TaskPage(rows, encode_cursor(Position.of(rows[-1])))
    return TaskPage(rows, None)


def merge_rows(pages: Iterable[list[TaskRecord]]) -> list[TaskRecord]:
    """The rows of several lists, each newest first, as one list newest first; a task
    in more than one, once."""
    rows: list[TaskRecord] = []
    seen: set[str] = set()
    for record in heapq.merge(*pages, key=lambda record: (record.created, record.task_id), reverse=True):
        if record.task_id not in seen:
            seen.add(record.task_id)
            rows.append(record)
    return rows


def merged(pages: Iterable[list[TaskRecord]], limit: int) -> TaskPage:
    """One page from the rows of several stores, each newest first."""
    return page_of(merge_rows(pages)[:limit + 1], limit)
