"""The client's exceptions: one family, with a subclass per fault the service sends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ladon_tasks.exceptions import (
    InvalidTaskId,
    LadonTasksError,
    QueueFull,
    ResultNotReady,
    ShuttingDown,
    StoreUnavailable,
    TaskCancelled,
    TaskDismissed,
    TaskExpired,
    TaskFailed,
    TaskLost,
    TaskNotFound,
)

if TYPE_CHECKING:
    from ladon_tasks.client.answers import TaskProgress


class ClientError(LadonTasksError):
    """Base of every error :class:`TaskClient` raises."""


class TransportError(ClientError):
    """The service could not be reached, or did not answer in its protocol."""


class ServiceFault(ClientError):
    """The service answered with a fault.

    ``code`` is the fault code (``"client"`` or ``"server"``), ``detail`` the fault detail
    (for ladon_tasks faults, the server's error name such as ``"TaskNotFound"``),
    ``message`` the fault string and ``task_id`` the task asked about, if any.
    """

    def __init__(self, message: str, code: str = "", detail: str = "", task_id: str = "") -> None:
        Exception.__init__(self, message)
        self.message = message
        self.code = code
        self.detail = detail
        self.task_id = task_id


class InvalidTaskIdFault(ServiceFault, InvalidTaskId):
    """The service says the task id is malformed."""


class TaskNotFoundFault(ServiceFault, TaskNotFound):
    """The service knows no task with this id (never started there, or long gone)."""


class TaskExpiredFault(TaskNotFoundFault, TaskExpired):
    """The task ended and its record expired (``result_ttl`` passed)."""


class TaskDismissedFault(TaskNotFoundFault, TaskDismissed):
    """The task was dismissed: its record and result were dropped on request."""


class ResultNotReadyFault(ServiceFault, ResultNotReady):
    """The result was asked for before the task succeeded."""


class StoreUnavailableFault(ServiceFault, StoreUnavailable):
    """The service cannot reach its task store (Redis)."""


class ShuttingDownFault(ServiceFault, ShuttingDown):
    """The service is stopping and accepts no new task."""


class QueueFullFault(ServiceFault, QueueFull):
    """The server process holds ``max_queued`` waiting tasks: start again later."""


def _task_error(message: str, prefix: str) -> str:
    """The task's own error in a fault message ``"<prefix><error>"``."""
    return message[len(prefix):] if message.startswith(prefix) else message


class TaskFailedFault(ServiceFault, TaskFailed):
    """The task raised; ``error`` is the task's ``"ExceptionType: message"``."""

    def __init__(self, message: str, code: str = "", detail: str = "", task_id: str = "") -> None:
        super().__init__(message, code, detail, task_id)
        self.error = _task_error(message, f"task {task_id} failed: ") if task_id else message


class TaskLostFault(TaskFailedFault, TaskLost):
    """The task's worker went away before the task ended."""


class TaskCancelledFault(ServiceFault, TaskCancelled):
    """The task was cancelled, so it has no result; ``error`` says when and how."""

    def __init__(self, message: str, code: str = "", detail: str = "", task_id: str = "") -> None:
        super().__init__(message, code, detail, task_id)
        self.error = _task_error(message, f"task {task_id} was cancelled: ") if task_id else message


class JoinTimeout(ClientError, TimeoutError):
    """:meth:`TaskClient.join` gave up waiting; the task goes on running on the server.

    ``progress`` is the last :class:`TaskProgress` seen.
    """

    def __init__(self, task_id: str, timeout: float, progress: TaskProgress) -> None:
        super().__init__(
            f"task {task_id} is still {progress.state} after {timeout:g} s "
            f"({progress.progress:.0%} done)")
        self.task_id = task_id
        self.timeout = timeout
        self.progress = progress


#: Fault detail (the server's error name) -> the exception the client raises.
FAULT_TYPES: dict[str, type[ServiceFault]] = {
    "InvalidTaskId": InvalidTaskIdFault,
    "TaskNotFound": TaskNotFoundFault,
    "ResultNotReady": ResultNotReadyFault,
    "StoreUnavailable": StoreUnavailableFault,
    "ShuttingDown": ShuttingDownFault,
    "QueueFull": QueueFullFault,
    "TaskFailed": TaskFailedFault,
    "TaskLost": TaskLostFault,
    "TaskCancelled": TaskCancelledFault,
    "TaskExpired": TaskExpiredFault,
    "TaskDismissed": TaskDismissedFault,
}


def make_fault(message: str, code: str = "", detail: str = "", task_id: str = "") -> ServiceFault:
    """The :class:`ServiceFault` (subclass) for a fault with this detail."""
    fault_type = FAULT_TYPES.get(detail, ServiceFault)
    # SOAP says "SOAP-ENV:Client" where JSON says "client".
    return fault_type(message.strip(), code.rpartition(":")[2].lower(), detail, task_id)
