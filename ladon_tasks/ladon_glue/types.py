"""The LadonTypes a task method's three endpoints answer with."""

from __future__ import annotations

from typing import Any

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
    message = {
        "type": str,
        "doc": "What the task last said with update_progress(value, message), at most 500 "
               "characters; kept after it ended; empty if it said nothing",
    }
    eta = {
        "type": float,
        "doc": "Seconds until the task is expected to end, from its pace and its method's "
               "history; -1 when unknown, 0 once it has ended",
    }
    expected_duration = {
        "type": float,
        "doc": "Seconds the method typically runs (the median of its recent successful runs); "
               "0 without history",
    }
    poll_after = {
        "type": float,
        "doc": "Seconds to wait before asking again (always more than 0)",
    }

    @classmethod
    def of(cls, values: dict) -> TaskProgressResponse:
        """A response holding ``values`` (every field, each of exactly its declared type)."""
        response = cls()
        response._values = values
        return response

    def __dict__(self, tc: Any, response_attachments: Any = None) -> dict:  # type: ignore[override]
        """Ladon's serialisation, short-cut: made by :meth:`of`, every field holds a value of
        exactly its declared type, without filters, so a converter that leaves non-strings
        as they are (JSON-WSP, JSON-RPC) would give each value back unchanged: the values
        are the answer. Others (SOAP's) take Ladon's own path."""
        values = getattr(self, "_values", None)
        if values is not None and getattr(tc, "only_strings_to_unicode", False):
            return dict(values)
        if values is not None:
            for name, value in values.items():
                setattr(self, name, value)
        return _LADON_TO_DICT(self, tc, response_attachments)


#: Ladon's own serialisation (``LadonType.__dict__`` on the class is its namespace, not it).
_LADON_TO_DICT = vars(LadonType)["__dict__"]
