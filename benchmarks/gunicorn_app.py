"""The WSGI module gunicorn serves in the keep-alive rows: ``gunicorn gunicorn_app:app``.

What it serves comes from ``BENCH_APP`` in the environment, a JSON object:

- ``kind``: ``"ladon"`` (Ladon 1.0.7 alone, as ``serve.py ladon``) or ``"ladon_tasks"``;
- ``module``: the service module (in ``services/``);
- ``options``: TaskWSGIApplication keywords (``mode``, ``redis_url``, ...);
- ``guard`` (optional): ``false`` serves ladon_tasks without its request guard and
  dispatcher (``serve.without_guard``), the baseline of the guard's cost;
- ``pidfile``: where the worker writes its pid once the application is built;
- ``profile`` (optional): profile every thread of the worker (see ``thread_profile``).
  Then ``GET /__bench/profile/reset`` drops what was collected and
  ``GET /__bench/profile/dump`` writes the statistics to ``<profile>`` and answers their
  JSON summary (request count, CPU per thread group).

``GET /__bench/threads`` answers ``{native thread id: thread name}`` of the worker's
live threads, so CPU per thread can be read from ``/proc`` without a profiler. Every
other request goes to the application (one string test more per request, the same for
every server).

The application is built in the worker (no ``--preload``), as a user's gunicorn would.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, Callable, Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import serve  # noqa: E402

_RESET, _DUMP, _THREADS = "/__bench/profile/reset", "/__bench/profile/dump", "/__bench/threads"


def _build() -> Callable:
    settings = json.loads(os.environ["BENCH_APP"])
    sys.path.insert(0, serve.SERVICES)
    profiler = None
    if settings.get("profile"):
        from thread_profile import ThreadProfiler

        profiler = ThreadProfiler()
        profiler.install()
    if settings["kind"] == "ladon":
        inner = serve.ladon_app(settings["module"])
    else:
        inner = serve.make_ladon_tasks_app(settings["module"], settings.get("options") or {})
        if settings.get("guard") is False:
            inner = serve.without_guard(inner)
    with open(settings["pidfile"], "w", encoding="ascii") as out:
        out.write(str(os.getpid()))
    return _Control(inner, profiler, settings.get("profile") or "")


class _Control:
    """Passes requests to the application (counting them when profiling); answers the
    ``/__bench/`` paths."""

    def __init__(self, app: Callable, profiler: Any, path: str) -> None:
        self.app, self.profiler, self.path = app, profiler, path

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__bench/"):
            return self._control(path, start_response)
        if self.profiler is not None:
            self.profiler.count_request()
        return self.app(environ, start_response)

    def _control(self, path: str, start_response: Callable) -> Iterable[bytes]:
        if path == _THREADS:
            body = json.dumps({str(t.native_id): t.name for t in threading.enumerate()}).encode()
        elif path == _RESET and self.profiler is not None:
            self.profiler.reset()
            body = b"{}"
        elif path == _DUMP and self.profiler is not None:
            body = json.dumps(self.profiler.dump(self.path)).encode()
        else:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def close(self, grace_period: float | None = None) -> Any:
        close = getattr(self.app, "close", None)
        return close(grace_period) if close is not None else None


app = _build()
