"""A client for task methods: start a task, follow its progress, fetch its result.

::

    client = TaskClient("http://localhost:8080/InstanceService")
    task_id = client.start("cloneInstance", "vm-1", new_instance_name="copy")
    info = client.join("cloneInstance", task_id, progress_callback=print)
    client.cancel("cloneInstance", task_id)    # stop it; .dismiss() also forgets it

``protocol="jsonwsp"`` (the default) needs nothing beyond the standard library; results
are the JSON values the service sends (a LadonType arrives as a dict, a list as a list).
``protocol="soap"`` talks to the service's ``soap11`` interface through zeep (``pip install
'ladon_tasks[client]'``); results are zeep objects, with Ladon's SOAP names (``task_id``
becomes ``task-id``). :func:`plain_value` turns either into plain JSON-ready values.

Errors: every error is a :class:`ClientError`. A fault the service answers is a
:class:`ServiceFault`; the faults ladon_tasks sends are subclasses that are *also* the
matching :mod:`ladon_tasks.exceptions` class, so ``except ladon_tasks.TaskFailed`` catches
a failed task on the client as on the server (and ``except ladon_tasks.TaskNotFound``
also catches :class:`TaskExpiredFault` and :class:`TaskDismissedFault`).
"""

from __future__ import annotations

from ladon_tasks.client.answers import TaskProgress, plain_value
from ladon_tasks.client.console_client import ConsoleClient, ConsoleRefused
from ladon_tasks.client.errors import (
    FAULT_TYPES,
    ClientError,
    InvalidTaskIdFault,
    JoinTimeout,
    QueueFullFault,
    ResultNotReadyFault,
    ServiceFault,
    ShuttingDownFault,
    StoreUnavailableFault,
    TaskCancelledFault,
    TaskDismissedFault,
    TaskExpiredFault,
    TaskFailedFault,
    TaskLostFault,
    TaskNotFoundFault,
    TransportError,
    make_fault,
)
from ladon_tasks.client.task_client import PROTOCOLS, TaskClient

__all__ = [
    "FAULT_TYPES",
    "PROTOCOLS",
    "ClientError",
    "ConsoleClient",
    "ConsoleRefused",
    "InvalidTaskIdFault",
    "QueueFullFault",
    "JoinTimeout",
    "ResultNotReadyFault",
    "ServiceFault",
    "ShuttingDownFault",
    "StoreUnavailableFault",
    "TaskCancelledFault",
    "TaskClient",
    "TaskDismissedFault",
    "TaskExpiredFault",
    "TaskFailedFault",
    "TaskLostFault",
    "TaskNotFoundFault",
    "TaskProgress",
    "TransportError",
    "make_fault",
    "plain_value",
]
