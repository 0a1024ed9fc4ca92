"""The client faults of a request that cannot be called: each names what is wrong in words
a caller can act on, and its class name is the fault's ``detail``, as for ladon_tasks'
own faults (``TaskNotFound``, ...)."""

from __future__ import annotations

from typing import Any

from ladon.exceptions.service import ClientFault, ServerFault


class RequestFault(ClientFault):
    """Base of the faults of a request that is not a valid call."""

    def __init__(self, message: str) -> None:
        super().__init__(message, detail=type(self).__name__, stack_depth=3)


class MalformedRequest(RequestFault):
    """The body is not a request of the interface's protocol (bad JSON, bad XML, ...)."""


class InvalidRequest(RequestFault):
    """The body parses, but is not shaped as the protocol's request (no method name, ...)."""


class UnknownMethod(RequestFault):
    """The service has no method of that name."""


class MissingArgument(RequestFault):
    """A required argument was not given."""


class UnexpectedArgument(RequestFault):
    """An argument the method does not take (by name, or one too many by position)."""


class InvalidArgument(RequestFault):
    """An argument's value is not of the method's declared type."""


class InternalError(ServerFault):
    """A call that failed with an error that is no fault: a bug of ours or of the service.
    Its message is the error's; its detail is only in the server log."""

    def __init__(self, message: str) -> None:
        super().__init__(message, stack_depth=3)


def shown(value: Any, limit: int = 60) -> str:
    """A value a client sent, for a fault message: quoted, on one line, cut if long."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    text = " ".join(str(value).split()) if str(value).strip() else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return '"' + text + '"'
