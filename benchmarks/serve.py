"""One benchmark server: a Ladon application on werkzeug's threaded server, one process.

    python serve.py ladon MODULE [--profile FILE]
    python serve.py ladon_tasks MODULE [--mode process --redis-url URL --result-ttl S ...]
                                       [--option NAME=VALUE ...]

``ladon`` serves MODULE with Ladon 1.0.7's own ``LadonWSGIApplication`` and nothing of
ladon_tasks, only an ``inspect.getargspec`` stand-in (Python 3.11 removed it; Ladon calls
it). ``ladon_tasks`` serves it with ``TaskWSGIApplication``. The server listens on a free
port of 127.0.0.1 and prints ``LISTENING <port>`` once it accepts connections. Request
lines are not logged (that would cost every server the same, and only add noise).
SIGTERM stops it; with ``--profile`` the request threads are profiled with cProfile and
the merged statistics are written to FILE at exit.
"""

from __future__ import annotations

import argparse
import inspect
import os
import signal
import sys
import threading
from collections import namedtuple
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICES = os.path.join(HERE, "services")

_ArgSpec = namedtuple("_ArgSpec", "args varargs keywords defaults")


def _getargspec(func: Any) -> _ArgSpec:
    spec = inspect.getfullargspec(func)
    return _ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


def ladon_app(module: str) -> Callable:
    """Ladon 1.0.7 as it is, plus the one stand-in it needs to run on Python 3.11."""
    if not hasattr(inspect, "getargspec"):
        inspect.getargspec = _getargspec  # type: ignore[attr-defined]
    from ladon.server.wsgi_application import LadonWSGIApplication

    return LadonWSGIApplication([module], [SERVICES])


def ladon_tasks_app(module: str, args: argparse.Namespace) -> Callable:
    options = {"mode": args.mode, "redis_url": args.redis_url, "result_ttl": args.result_ttl,
               "threads": args.threads, "processes": args.processes}
    options.update(parse_options(getattr(args, "option", None) or []))
    return make_ladon_tasks_app(module, options)


def make_ladon_tasks_app(module: str, options: dict[str, Any]) -> Callable:
    """``TaskWSGIApplication`` serving MODULE with the given task options (None: default)."""
    from ladon_tasks import TaskWSGIApplication

    return TaskWSGIApplication([module], [SERVICES],
                               **{key: value for key, value in options.items() if value is not None})


def without_guard(app: Any) -> Any:
    """``app`` (a TaskWSGIApplication) with the request guard and ladon_tasks' dispatcher
    switched off: requests go straight to Ladon's own code, as before issue 9. For the
    guard's cost only; bad requests then get Ladon 1.0.7's answers."""
    import ladon.server.dispatcher
    import ladon.server.wsgi_application

    class _NoGuard:
        def check(self, environ: dict) -> None:
            return None

    app.guard = _NoGuard()
    ladon.server.wsgi_application.Dispatcher = ladon.server.dispatcher.Dispatcher
    return app


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["cancel_grace=0.5", ...]`` as a dict; TaskConfig turns the text into its types."""
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--option {pair!r}: give NAME=VALUE (a TaskConfig field)")
        options[name.strip()] = value.strip()
    return options


class _Profiled:
    """Profiles each request in its own thread's cProfile.Profile; merged at exit."""

    def __init__(self, app: Callable, path: str) -> None:
        import cProfile

        self.app, self.path, self._make = app, path, cProfile.Profile
        self._local = threading.local()
        self._profiles: list = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        profile = getattr(self._local, "profile", None)
        if profile is None:
            profile = self._local.profile = self._make()
            with self._lock:
                self._profiles.append(profile)
        profile.enable()
        try:
            return list(self.app(environ, start_response))
        finally:
            profile.disable()

    def dump(self) -> None:
        import pstats

        with self._lock:
            profiles = list(self._profiles)
        if profiles:
            stats = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                stats.add(profile)
            stats.dump_stats(self.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("ladon", "ladon_tasks"))
    parser.add_argument("module")
    parser.add_argument("--mode", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--result-ttl", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--option", action="append", metavar="NAME=VALUE",
                        help="any other TaskWSGIApplication keyword (cancel_grace=0.5, ...)")
    parser.add_argument("--profile", default=None, metavar="FILE")
    parser.add_argument("--guard-off", action="store_true",
                        help="ladon_tasks without its request guard and dispatcher (a benchmark baseline)")
    args = parser.parse_args()
    sys.path.insert(0, SERVICES)

    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    app = ladon_app(args.module) if args.kind == "ladon" else ladon_tasks_app(args.module, args)
    if args.guard_off:
        app = without_guard(app)
    served = _Profiled(app, args.profile) if args.profile else app
    server = make_server("127.0.0.1", 0, served, threaded=True, request_handler=QuietHandler)
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"LISTENING {server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        close = getattr(app, "close", None)
        if close is not None:
            close(grace_period=2)
        if isinstance(served, _Profiled):
            served.dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
