"""The LadonTypes a task method's three endpoints answer with."""

from __future__ import annotations

from ladon.types.ladontype import LadonType

_TASK_ID = {
    "type": str,
    "doc": "Opaque task id: 22 URL-safe characters carrying 128 random bits",
}


class TaskInfoResponse(LadonType):
    """What starting a task returns: the id for ``<method>_progress`` and ``<method>_result``."""

    task_id = _TASK_ID


class TaskProgressResponse(LadonType):
    """Where a task is: what ``<method>_progress`` returns."""

    task_id = _TASK_ID
    state = {
        "type": str,
        "doc": "queued, running, succeeded, failed, lost or cancelled",
    }
    done = {
        "type": bool,
        "doc": "True once the task has ended (succeeded, failed, lost or cancelled)",
    }
    progress = {
        "type": float,
        "doc": "Between 0.0 and 1.0; 0.0 when the task starts, 1.0 once it has ended",
    }
    duration = {
        "type": float,
        "doc": "Seconds the task has run; grows while it runs, frozen once it ends; 0.0 while queued",
    }
    starttime = {
        "type": float,
        "doc": "When the task started running, in seconds since the epoch; 0.0 while queued",
    }
    createtime = {
        "type": float,
        "doc": "When the task was accepted, in seconds since the epoch",
    }
    endtime = {
        "type": float,
        "doc": "When the task ended, in seconds since the epoch; 0.0 until then",
    }
    error = {
        "type": str,
        "doc": "'ExceptionType: message' if the task failed, was lost or was cancelled; while it "
               "waits for a retry, why the last attempt failed; else empty",
    }
    attempt = {
        "type": int,
        "doc": "Which run of the task this is: 1, then one more for each retry",
    }
    cancel_requested = {
        "type": bool,
        "doc": "True once a cancel was asked for; a running task may still be stopping",
    }
    silent_for = {
        "type": float,
        "doc": "Seconds since the running task last reported progress (or started); 0.0 unless running",
    }
    health = {
        "type": str,
        "doc": "Empty unless running; then ok, silent (half of max_silence without progress) or "
               "stalled (all of it: the task is being ended)",
    }
