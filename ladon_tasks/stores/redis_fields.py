"""A task record as the fields of its Redis hash, and back."""

from __future__ import annotations

from ladon_tasks.task import TaskRecord, TaskState

#: The hash fields every read takes (the result, when there is one, is read apart).
FIELDS = ("method", "state", "progress", "created", "started", "finished", "error", "owner",
           "heartbeat", "attempt", "cancel_requested", "touched", "max_silence", "dismissed", "message",
           "caller")
DISMISSED_AT = FIELDS.index("dismissed")
#: The field holding a task's job (celery mode), read only by the process that runs it.
JOB_FIELD = "job"


def record_fields(record: TaskRecord) -> dict[str, str]:
    """The hash fields of ``record`` (a new task's, or one written again)."""
    return {
        "method": record.method,
        "state": record.state.value,
        "progress": repr(float(record.progress)),
        "created": repr(float(record.created)),
        "started": repr(float(record.started)) if record.started else "0",
        "finished": "0",
        "error": record.error,
        "owner": record.owner,
        "heartbeat": repr(float(record.heartbeat)) if record.heartbeat else "0",
        "attempt": str(record.attempt),
        "cancel_requested": "0",
        "touched": repr(float(record.touched)) if record.touched else "0",
        "max_silence": repr(float(record.max_silence)),
        "dismissed": "0",
        "message": record.message,
        "caller": record.caller,
    }


def record_from_fields(task_id: str, values: list[str | None]) -> TaskRecord:
    fields = dict(zip(FIELDS, values, strict=False))
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
        attempt=int(fields.get("attempt") or 1),
        cancel_requested=float(fields.get("cancel_requested") or 0.0),
        touched=float(fields.get("touched") or 0.0),
        max_silence=float(fields.get("max_silence") or 0.0),
        message=fields.get("message") or "",
        caller=fields.get("caller") or "",
    )
