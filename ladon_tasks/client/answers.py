"""What a service answers, made plain: task progress and result values."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from ladon_tasks.task import TaskState


@dataclass(frozen=True)
class TaskProgress:
    """What ``<method>_progress`` (and ``_cancel``, ``_dismiss``) answered.

    Times are seconds since the epoch, 0.0 = not yet; ``state`` is a
    :class:`~ladon_tasks.TaskState` value (``state == TaskState.FAILED`` works); ``error``
    is ``""`` unless the task failed, was lost or cancelled, or waits for a retry.
    ``attempt`` counts runs from 1; ``cancel_requested`` says a cancel was asked for;
    ``silent_for`` is the seconds since a running task last reported progress and
    ``health`` is ``"ok"``, ``"silent"`` or ``"stalled"`` while it runs, else ``""``;
    ``message`` is what the task last said with ``update_progress(value, message)``;
    ``eta`` the seconds until its expected end (-1 unknown), ``expected_duration`` its
    method's typical duration (0 unknown), ``poll_after`` when to ask again (0: a server
    that does not say).
    A server older than these four fields answers without them: they keep their defaults.
    """

    task_id: str
    state: str
    done: bool
    progress: float
    duration: float
    starttime: float
    createtime: float
    endtime: float
    error: str
    attempt: int = 1
    cancel_requested: bool = False
    silent_for: float = 0.0
    health: str = ""
    message: str = ""
    eta: float = -1.0
    expected_duration: float = 0.0
    poll_after: float = 0.0

    @classmethod
    def from_answer(cls, answer: Any) -> TaskProgress:
        """Build from a JSON-WSP dict or a zeep object."""
        return cls(
            task_id=str(answer_field(answer, "task_id") or ""),
            state=str(answer_field(answer, "state") or ""),
            done=bool(answer_field(answer, "done")),
            progress=float(answer_field(answer, "progress") or 0.0),
            duration=float(answer_field(answer, "duration") or 0.0),
            starttime=float(answer_field(answer, "starttime") or 0.0),
            createtime=float(answer_field(answer, "createtime") or 0.0),
            endtime=float(answer_field(answer, "endtime") or 0.0),
            error=str(answer_field(answer, "error") or ""),
            attempt=int(answer_field(answer, "attempt") or 1),
            cancel_requested=bool(answer_field(answer, "cancel_requested")),
            silent_for=float(answer_field(answer, "silent_for") or 0.0),
            health=str(answer_field(answer, "health") or ""),
            message=str(answer_field(answer, "message") or ""),
            eta=_number(answer_field(answer, "eta"), -1.0),
            expected_duration=_number(answer_field(answer, "expected_duration"), 0.0),
            poll_after=_number(answer_field(answer, "poll_after"), 0.0),
        )

    @property
    def succeeded(self) -> bool:
        """True once the task has succeeded: its result can be fetched."""
        return self.state == TaskState.SUCCEEDED

    @property
    def cancelled(self) -> bool:
        """True once the task has ended cancelled."""
        return self.state == TaskState.CANCELLED


def _number(value: Any, default: float) -> float:
    return default if value is None else float(value)


def answer_field(answer: Any, name: str) -> Any:
    """A field of a JSON-WSP dict or a zeep object, under its name or its SOAP spelling."""
    for key in (name, name.replace("_", "-")):
        if isinstance(answer, Mapping):
            if key in answer:
                return answer[key]
        else:
            try:
                return answer[key]
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
    return None


def plain_value(value: Any) -> Any:
    """A copy of a result made of dicts, lists, str, int, float, bool and None.

    zeep objects become dicts, Decimals floats and bytes text (UTF-8, else latin-1).
    """
    if hasattr(value, "__values__") and hasattr(value, "__iter__") and not isinstance(value, Mapping):
        value = dict(value.__values__)
    if isinstance(value, Mapping):
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return value
