"""A task record as the console's JSON shows it."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from ladon_tasks.task import TaskRecord


def timestamp(seconds: float) -> str | None:
    """RFC 3339 in UTC with milliseconds (``2026-12-03T07:41:02.250Z``); None for 0 (not yet)."""
    if not seconds:
        return None
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def task_row(record: TaskRecord, now: float | None = None) -> dict[str, Any]:
    """The JSON object of one task. ``owner`` is the identity that started it (None for
    none); ``worker`` the server or worker process that holds or held it."""
    now = time.time() if now is None else now
    return {
        "task_id": record.task_id,
        "method": record.method,
        "state": record.state.value,
        "progress": record.progress,
        "message": record.message,
        "owner": record.caller or None,
        "attempt": record.attempt,
        "created": timestamp(record.created),
        "started": timestamp(record.started),
        "finished": timestamp(record.finished),
        "duration": round(record.duration, 3),
        "health": record.health(now) or None,
        "silent_for": round(record.silent_for(now), 3),
        "cancel_requested": timestamp(record.cancel_requested),
        "error": record.error,
        "worker": record.owner or None,
    }
