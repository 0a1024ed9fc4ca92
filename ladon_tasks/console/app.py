"""The console as a WSGI application: who may ask, which route answers, and how errors read."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from ladon_tasks.administration import Administration
from ladon_tasks.console.access import AdminCheck, same_origin
from ladon_tasks.console.api import find_route
from ladon_tasks.console.http import FORBIDDEN, ApiError, api_error_of, respond, respond_error

log = logging.getLogger("ladon_tasks.console")

#: Where the console lives under the application root.
CONSOLE_PATH = "/_tasks"
API_PATH = CONSOLE_PATH + "/api/"

_CROSS_SITE = ApiError("403 Forbidden", "CrossSiteRequest",
                       "a request that changes a task must come from this server's own pages")
_SERVER_ERROR = ApiError("500 Internal Server Error", "ServerError",
                         "the server could not answer; details are in the server log")


def is_console_path(path: str) -> bool:
    """Whether a request's ``PATH_INFO`` is the console's."""
    return path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")


class Console:
    """Answers every request under ``/_tasks``: to an administrator (as ``admin`` says),
    the API; to anyone else, the same 403 whatever the path, naming no task or owner."""

    def __init__(self, administration: Administration, admin: AdminCheck, debug: bool = False) -> None:
        self.administration = administration
        self.admin = admin
        self.debug = debug

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            return self._answer(environ, start_response)
        except ApiError as error:
            return respond_error(start_response, error)

    def _answer(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not self._is_admin(environ):
            raise FORBIDDEN
        path = environ.get("PATH_INFO", "")
        if not path.startswith(API_PATH):
            raise ApiError("404 Not Found", "NotFound", "no such console path: the API is under /_tasks/api/")
        http_method = environ.get("REQUEST_METHOD", "GET").upper()
        route, match = find_route(http_method, path[len(API_PATH):])
        if route.method != "GET" and not same_origin(environ):
            raise _CROSS_SITE
        try:
            body = route.handler(self.administration, environ, match)
        except ApiError:
            raise
        except Exception as error:
            known = api_error_of(error)
            if known is None:
                log.exception("console %s %s failed", http_method, path)
                if self.debug:
                    raise ApiError(_SERVER_ERROR.status, "ServerError",
                                   f"{type(error).__name__}: {error}") from error
                raise _SERVER_ERROR from error
            raise known from error
        answer = respond(start_response, "200 OK", body)
        return [] if http_method == "HEAD" else answer

    def _is_admin(self, environ: dict) -> bool:
        try:
            return bool(self.admin(environ))
        except Exception:  # the application's check failed: refuse, and say so in the log
            log.exception("the admin check failed for %s %s: refused", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            return False
