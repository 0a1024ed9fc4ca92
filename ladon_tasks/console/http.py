"""The console's HTTP: JSON answers, and the errors a request can get, each with its status."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from ladon_tasks.exceptions import (
    InvalidQuery,
    InvalidTaskId,
    NotRetryable,
    QueueFull,
    ShuttingDown,
    StoreUnavailable,
    TaskDismissed,
    TaskExpired,
    TaskNotFound,
)

#: Seconds a client should wait before asking again after a 503.
RETRY_AFTER = 5
#: The longest query string read; beyond it the request is refused.
MAX_QUERY_BYTES = 4096


class ApiError(Exception):
    """An answer other than 2xx: its HTTP status, a code (one word) and a message."""

    def __init__(self, status: str, code: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = list(headers)


#: Error of the engine -> its HTTP status; the answer's code is the class's name.
#: Subclasses before their bases.
_ERROR_STATUS: list[tuple[type[Exception], str]] = [
    (InvalidQuery, "400 Bad Request"),
    (InvalidTaskId, "400 Bad Request"),
    (TaskExpired, "404 Not Found"),
    (TaskDismissed, "404 Not Found"),
    (TaskNotFound, "404 Not Found"),
    (NotRetryable, "409 Conflict"),
    (StoreUnavailable, "503 Service Unavailable"),
    (QueueFull, "503 Service Unavailable"),
    (ShuttingDown, "503 Service Unavailable"),
]

FORBIDDEN = ApiError("403 Forbidden", "Forbidden",
                     "this is for the service's administrators only (see the admin option)")


def api_error_of(error: Exception) -> ApiError | None:
    """The answer to an error of the engine; None for an error that is the server's fault."""
    for kind, status in _ERROR_STATUS:
        if isinstance(error, kind):
            headers = [("Retry-After", str(RETRY_AFTER))] if status.startswith("503") else []
            return ApiError(status, kind.__name__, str(error), headers)
    return None


def query_of(environ: dict, known: Iterable[str]) -> dict[str, str]:
    """The query string's parameters, each given at most once and each one of ``known``."""
    raw = environ.get("QUERY_STRING", "")
    if len(raw) > MAX_QUERY_BYTES:
        raise ApiError("414 URI Too Long", "InvalidQuery",
                       f"the query string is over {MAX_QUERY_BYTES} bytes")
    try:
        params = parse_qs(raw, keep_blank_values=True, strict_parsing=bool(raw), errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise ApiError("400 Bad Request", "InvalidQuery", "the query string cannot be read") from None
    allowed = set(known)
    for name, values in params.items():
        if name not in allowed:
            raise ApiError("400 Bad Request", "InvalidQuery",
                           f"unknown parameter {name[:40]!r}: known are {', '.join(sorted(allowed))}")
        if len(values) > 1:
            raise ApiError("400 Bad Request", "InvalidQuery", f"parameter {name!r} is given more than once")
    return {name: values[0] for name, values in params.items()}


def respond(start_response: Callable, status: str, body: Any,
            headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    """Answer ``body`` as JSON."""
    data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                            *headers])
    return [data]


def respond_error(start_response: Callable, error: ApiError) -> list[bytes]:
    return respond(start_response, error.status,
                   {"error": {"code": error.code, "message": error.message}}, error.headers)
