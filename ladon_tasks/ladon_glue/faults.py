"""From ladon_tasks errors to Ladon faults, and no tracebacks for clients unless debug is on."""

from __future__ import annotations

import logging
from typing import Any

from ladon.exceptions.service import ClientFault, ServerFault, ServiceFault
from ladon.server.dispatcher import Dispatcher

from ladon_tasks.constants import ENVIRON_DEBUG_KEY
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

log = logging.getLogger("ladon_tasks.faults")


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


class SanitizingDispatcher(Dispatcher):
    """Ladon's dispatcher, but a fault without detail gets a short one instead of the
    server's traceback, which goes to the log. Only requests served by
    TaskWSGIApplication with debug off are affected; others behave as Ladon's own."""

    def dispatch_request(self, request_data: Any, export_dict: dict) -> Any:
        if export_dict.get(ENVIRON_DEBUG_KEY) is False:
            original = self.iface.build_fault_response

            def build_fault_response(service_exc: Any, *args: Any, **kw: Any) -> Any:
                if not service_exc.detail:
                    log_fault(service_exc)
                    service_exc.detail = "details are in the server log"
                return original(service_exc, *args, **kw)

            self.iface.build_fault_response = build_fault_response
        return super().dispatch_request(request_data, export_dict)


def log_fault(fault: ServiceFault) -> None:
    """Log a fault Ladon answers: a client's mistake (an unknown method, say) in one line
    at INFO, anything else at ERROR with the traceback being handled."""
    if isinstance(fault, ClientFault):
        log.info("client fault answered: %s", _one_line(fault.faultstring))
    else:
        log.error("fault answered to a client: %s", fault.faultstring, exc_info=True)


def _one_line(text: Any, limit: int = 300) -> str:
    """``text`` on one line, cut if long (a client may send anything)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def install_sanitizing_dispatcher() -> None:
    """Make Ladon's WSGI application build SanitizingDispatchers (idempotent)."""
    import ladon.server.wsgi_application as wsgi_application

    wsgi_application.Dispatcher = SanitizingDispatcher  # type: ignore[misc]
