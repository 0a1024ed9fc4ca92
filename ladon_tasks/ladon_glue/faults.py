"""From ladon_tasks errors to Ladon faults (answered by :mod:`~ladon_tasks.ladon_glue.dispatch`)."""

from __future__ import annotations

from ladon.exceptions.service import ClientFault, ServerFault, ServiceFault

from ladon_tasks.exceptions import (
    ConfigurationError,
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
from ladon_tasks.ladon_glue.codec import NotEncodable

#: Each error maps to one fault: client faults for bad requests, server faults otherwise.
#: The fault's ``detail`` is the error's name, for clients to tell the cases apart.
FAULTS: dict[type[LadonTasksError], type[ServiceFault]] = {
    NotEncodable: ClientFault,
    InvalidTaskId: ClientFault,
    TaskNotFound: ClientFault,
    TaskExpired: ClientFault,
    TaskDismissed: ClientFault,
    ResultNotReady: ClientFault,
    TaskCancelled: ClientFault,
    QueueFull: ClientFault,
    TaskLost: ServerFault,
    TaskFailed: ServerFault,
    StoreUnavailable: ServerFault,
    ShuttingDown: ServerFault,
    ConfigurationError: ServerFault,
}


def to_fault(error: LadonTasksError) -> ServiceFault:
    """The Ladon fault a client sees for ``error``: its message, and its name as detail."""
    for error_type in type(error).__mro__:
        fault_type = FAULTS.get(error_type)  # type: ignore[arg-type]
        if fault_type is not None:
            break
    else:
        fault_type = ServerFault
    return fault_type(str(error), detail=type(error).__name__, stack_depth=3)
