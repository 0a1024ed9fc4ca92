"""The console as a WSGI application: who may ask, which route answers, and how errors read."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from ladon_tasks.administration import Administration
from ladon_tasks.console.access import AdminCheck, same_origin
from ladon_tasks.console.api import find_route
from ladon_tasks.console.http import FORBIDDEN, ApiError, api_error_of, respond, respond_error
from ladon_tasks.console.metrics import metrics_answer
from ladon_tasks.console.page import status_page

log = logging.getLogger("ladon_tasks.console")

#: Where the console lives under the application root.
CONSOLE_PATH = "/_tasks"
API_PATH = CONSOLE_PATH + "/api/"
#: The status page (see :mod:`ladon_tasks.console.page`) and the Prometheus metrics.
PAGE_PATHS = (CONSOLE_PATH, CONSOLE_PATH + "/")
METRICS_PATH = CONSOLE_PATH + "/metrics"

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
        http_method = environ.get("REQUEST_METHOD", "GET").upper()
        if path in PAGE_PATHS:
            return self._page(http_method, path, lambda: status_page(environ, start_response))
        if path == METRICS_PATH:
            return self._page(http_method, path,
                              lambda: metrics_answer(self.administration, environ, start_response))
        if not path.startswith(API_PATH):
            raise ApiError("404 Not Found", "NotFound", "no such console path: the API is under /_tasks/api/")
        route, match = find_route(http_method, path[len(API_PATH):])
        if route.method != "GET" and not same_origin(environ):
            raise _CROSS_SITE
        try:
            body = route.handler(self.administration, environ, match)
        except Exception as error:
            raise self._server_error(error, http_method, path) from error
        answer = respond(start_response, "200 OK", body)
        return [] if http_method == "HEAD" else answer

    def _server_error(self, error: Exception, http_method: str, path: str) -> ApiError:
        """The answer to an error a handler raised: the engine's own errors say what they
        are; any other is the server's fault, logged with its traceback."""
        if isinstance(error, ApiError):
            return error
        known = api_error_of(error)
        if known is not None:
            return known
        log.exception("console %s %s failed", http_method, path)
        if self.debug:
            return ApiError(_SERVER_ERROR.status, "ServerError", f"{type(error).__name__}: {error}")
        return _SERVER_ERROR

    def _page(self, http_method: str, path: str,
              answer: Callable[[], Iterable[bytes]]) -> Iterable[bytes]:
        """A page that only reads (the status page, the metrics): GET or HEAD."""
        if http_method not in ("GET", "HEAD"):
            raise ApiError("405 Method Not Allowed", "MethodNotAllowed", "use GET here", [("Allow", "GET")])
        try:
            body = answer()
        except Exception as error:
            raise self._server_error(error, http_method, path) from error
        return [] if http_method == "HEAD" else body

    def _is_admin(self, environ: dict) -> bool:
        try:
            return bool(self.admin(environ))
        except Exception:  # the application's check failed: refuse, and say so in the log
            log.exception("the admin check failed for %s %s: refused", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            return False
