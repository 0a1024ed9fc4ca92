"""TaskWSGIApplication: Ladon's WSGI application with ladon_tasks' task methods."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

from ladon.interfaces import name_to_interface
from ladon.ladonizer.collection import global_service_collection
from ladon.server import NO_LOGGING
from ladon.server.wsgi_application import LadonWSGIApplication

from ladon_tasks.administration import Administration, Route
from ladon_tasks.config import THREAD_MODE, TaskConfig
from ladon_tasks.console.access import AdminCheck, nobody
from ladon_tasks.console.app import Console, is_console_path
from ladon_tasks.constants import (
    ENVIRON_DEBUG_KEY,
    ENVIRON_ENGINE_KEY,
    ENVIRON_FAULT_STATUS_KEY,
    ENVIRON_IDENTITY_KEY,
)
from ladon_tasks.engine import TaskEngine
from ladon_tasks.ladon_glue.dispatch import install_dispatcher
from ladon_tasks.ladon_glue.guard import RequestGuard, withdraw_interfaces
from ladon_tasks.ladon_glue.services import check_task_methods, import_service_modules
from ladon_tasks.shutdown import install_shutdown_hooks

log = logging.getLogger("ladon_tasks")

_SERVER_ERROR_BODY = b"The server could not process this request; details are in the server log.\n"


class TaskWSGIApplication(LadonWSGIApplication):
    """The WSGI application for services with task methods.

    Takes ``LadonWSGIApplication``'s arguments, plus either ``config`` (a
    :class:`~ladon_tasks.TaskConfig`) or task options as keywords (``mode``,
    ``redis_url``, ``threads``, ...; see TaskConfig). Options not given come from
    ``LADON_TASKS_*`` environment variables, then from TaskConfig's defaults.
    ``celery_app`` is an existing ``celery.Celery`` app that celery-mode tasks are sent
    with (default: one of ladon_tasks' own, on ``broker_url``). ``identify(environ)``
    names the caller of a request (a string, or None for nobody; default: ``REMOTE_USER``):
    a task started by an identity answers that identity only (see :doc:`security`).
    ``admin(environ)`` says whether a request is an administrator's, who may use the
    console under ``/_tasks/`` (default: nobody; see :doc:`operations`).

    Service modules may use ``ladon_tasks.ladonize`` or Ladon's own
    ``ladon.ladonizer.ladonize``: task methods run through ladon_tasks either way.
    """

    def __init__(
        self,
        service_list: str | list[str],
        path_list: str | list[str] | None = None,
        catalog_name: str | None = None,
        catalog_desc: str | None = None,
        logging: int = NO_LOGGING,
        *,
        config: TaskConfig | None = None,
        celery_app: Any = None,
        identify: Callable[[dict], str | None] | None = None,
        admin: AdminCheck | None = None,
        **task_options: Any,
    ) -> None:
        base = config if config is not None else TaskConfig.from_env()
        self.task_config = base.with_options(**task_options) if task_options else base
        self.engine = TaskEngine(self.task_config, celery_app=celery_app)
        self.engine.server_threads = _server_threads()
        self.identify = identify or remote_user
        self._warned_multiprocess = False
        self._closed = threading.Event()
        services = [service_list] if isinstance(service_list, str) else list(service_list)
        paths = [path_list] if isinstance(path_list, str) else list(path_list or [])
        install_dispatcher()
        withdraw_interfaces()
        import_service_modules(services, paths)
        specs = check_task_methods(services, self.task_config)
        super().__init__(services, paths or None, catalog_name, catalog_desc, logging)
        routes: list[Route] = sorted({(spec.mode, spec.redis_url) for spec in specs}, key=repr)
        methods = [spec.qualified_name for spec in specs]
        self.console = Console(Administration(self.engine, routes, methods), admin or nobody,
                               debug=self.task_config.debug)
        self.guard = RequestGuard(self.task_config.max_request_bytes, _known_service, _known_interface)
        install_shutdown_hooks(self)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if is_console_path(environ.get("PATH_INFO", "")):
            return self.console(environ, start_response)
        refusal = self.guard.check(environ)
        if refusal is not None:
            return refusal.respond(start_response)
        environ[ENVIRON_ENGINE_KEY] = self.engine
        environ[ENVIRON_DEBUG_KEY] = self.task_config.debug
        try:
            environ[ENVIRON_IDENTITY_KEY] = identity_of(self.identify, environ)
        except Exception:  # the application's identify failed: the caller is not to blame
            log.exception("identify failed for %s %s", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            return _server_error(start_response)
        if environ.get("wsgi.multiprocess") and not self._warned_multiprocess:
            self._warn_multiprocess()
        captured: list = []

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured[:] = [status, headers, exc_info]
            return lambda data: None

        body = super().__call__(environ, capture)
        status, headers, exc_info = captured
        fault_status = environ.get(ENVIRON_FAULT_STATUS_KEY)
        if fault_status and status.startswith("200"):
            status = fault_status
        elif status.startswith("500") and not self.task_config.debug:
            # Ladon answers an error outside the dispatcher with its traceback as the body.
            text = b"".join(body) if isinstance(body, list) else b""
            log.error("request %s %s failed:\n%s", environ.get("REQUEST_METHOD"),
                      environ.get("PATH_INFO"), text.decode("utf-8", "replace"))
            body = [_SERVER_ERROR_BODY]
            headers = list(_SERVER_ERROR_HEADERS)
        start_response(status, headers, exc_info)
        return body

    def _warn_multiprocess(self) -> None:
        self._warned_multiprocess = True
        if self.task_config.mode == THREAD_MODE:
            log.warning(
                "this WSGI server runs several processes, but ladon_tasks is in thread mode: a task "
                "is visible only to the process that started it. Use multiprocessing mode "
                "(mode='process', redis_url=...) or run one process."
            )

    def close(self, grace_period: float | None = None) -> list[str]:
        """Stop: refuse new tasks, let running ones finish within the grace period, record
        the rest lost. Returns the ids of tasks recorded lost. Idempotent."""
        if self._closed.is_set():
            return []
        self._closed.set()
        return self.engine.shutdown(grace_period)


_SERVER_ERROR_HEADERS = (("Content-Type", "text/plain; charset=UTF-8"),
                         ("Content-Length", str(len(_SERVER_ERROR_BODY))))


def _server_error(start_response: Callable) -> list[bytes]:
    start_response("500 Internal Server Error", list(_SERVER_ERROR_HEADERS))
    return [_SERVER_ERROR_BODY]


def remote_user(environ: dict) -> str | None:
    """The default ``identify``: ``REMOTE_USER``, as Apache's authentication (or any WSGI
    middleware that authenticates) sets it; None if unset or empty."""
    return environ.get("REMOTE_USER") or None


def identity_of(identify: Callable[[dict], str | None], environ: dict) -> str | None:
    """What ``identify`` says of the request: a non-empty string, or None. Any other
    answer is the application's mistake, and fails the request as a server error."""
    identity = identify(environ)
    if identity is None or identity == "":
        return None
    if not isinstance(identity, str):
        raise TypeError(f"identify returned {type(identity).__name__}, not a string or None")
    return identity


def _server_threads() -> int | None:
    """The request threads of this mod_wsgi daemon process; None elsewhere."""
    try:
        import mod_wsgi  # only importable inside Apache's mod_wsgi
    except ImportError:
        return None
    threads = getattr(mod_wsgi, "threads_per_process", None)
    return int(threads) if isinstance(threads, int) and threads > 0 else None


def _known_service(name: str) -> bool:
    return bool(global_service_collection().services_by_name(name))


def _known_interface(name: str) -> bool:
    return name_to_interface(name) is not None
