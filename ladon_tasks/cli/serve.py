"""``ladon-tasks serve``: service modules on werkzeug's development server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Sequence

from ladon_tasks.config import MODES, TaskConfig

#: ``serve`` flags of the task lifecycle options: (flag, TaskConfig field, help).
_LIFECYCLE_FLAGS = (
    ("--time-limit", "time_limit", "seconds a task may run before it is ended failed "
                                   "(TimeLimitExceeded); 'none' (default): no limit"),
    ("--max-silence", "max_silence", "seconds a running task may go without reporting progress "
                                     "before it is ended failed (TaskStalled); 'none' (default): no limit"),
    ("--retries", "retries", "times a task that raised or was lost is run again (default 0)"),
    ("--retry-backoff", "retry_backoff", "seconds before the first retry, doubled for each next "
                                         "one (default 1)"),
    ("--cancel-grace", "cancel_grace", "seconds a task asked to stop has before it is ended by "
                                       "force (default 5)"),
    ("--tombstone-ttl", "tombstone_ttl", "seconds a dismissed or expired task id still answers "
                                         "TaskDismissed or TaskExpired (default 86400)"),
    ("--store-retry-for", "store_retry_for", "seconds a task's writes are retried while Redis is "
                                             "unreachable (default 60)"),
    ("--max-queued", "max_queued", "tasks waiting for a slot beyond which a start is refused "
                                   "with QueueFull (default 10000)"),
    ("--max-result-bytes", "max_result_bytes", "bytes of a stored result beyond which the task "
                                               "fails ResultTooLarge (default 67108864)"),
    ("--max-request-bytes", "max_request_bytes", "bytes of a request body beyond which the request "
                                                 "is answered 413 unread (default 10485760)"),
)


_METAVARS = {"retries": "N", "max_queued": "N", "max_result_bytes": "BYTES", "max_request_bytes": "BYTES"}


def add_serve_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="serve Ladon service modules with task methods (development server)",
        description="Serve Ladon service modules with task methods on werkzeug's development "
                    "server. Exit codes: 0 stopped (Ctrl-C or SIGTERM), 1 the port cannot be "
                    "used, 2 bad usage, a bad option or a module that cannot be found.")
    serve.add_argument("modules", nargs="+", metavar="MODULE", help="service module to import")
    serve.add_argument("--path", action="append", default=[], metavar="DIR",
                       help="directory to import the modules from (repeatable)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (announced)")
    serve.add_argument("--mode", choices=MODES, default=None,
                       help="thread (default), process (worker processes, state in Redis) or "
                            "celery (Celery workers: ladon-tasks worker, state in Redis)")
    serve.add_argument("--redis-url", default=None,
                       help="Redis URL, required by --mode process and --mode celery")
    serve.add_argument("--broker-url", default=None,
                       help="Celery broker URL of --mode celery (default: --redis-url)")
    serve.add_argument("--celery-queue", default=None,
                       help="Celery queue of --mode celery (default ladon_tasks)")
    serve.add_argument("--threads", type=int, default=None, help="task threads (thread mode)")
    serve.add_argument("--processes", type=int, default=None, help="worker processes (process mode)")
    serve.add_argument("--result-ttl", type=float, default=None, help="seconds results are kept")
    serve.add_argument("--key-prefix", default=None, help="prefix of Redis keys")
    for flag, name, text in _LIFECYCLE_FLAGS:
        # Text, so that TaskConfig reads "none" and names the fix for a bad value.
        serve.add_argument(flag, dest=name, default=None, metavar=_METAVARS.get(name, "S"),
                           help=text)
    serve.add_argument("--debug", action="store_true", default=None,
                       help="show tracebacks to clients (never in production)")
    serve.add_argument("--admin", action="store_true",
                       help="open the console under /_tasks/ to requests from this machine "
                            "(the loopback address, not through a proxy)")
    serve.add_argument("--log-level", default="INFO")
    serve.set_defaults(run=run_serve)


def serve_config(args: argparse.Namespace) -> TaskConfig:
    """The TaskConfig of ``serve``: ``LADON_TASKS_*`` variables, then the flags given."""
    lifecycle = {name: getattr(args, name) for _, name, _ in _LIFECYCLE_FLAGS}
    return TaskConfig.from_env(
        mode=args.mode, redis_url=args.redis_url, broker_url=args.broker_url,
        celery_queue=args.celery_queue, threads=args.threads, processes=args.processes,
        result_ttl=args.result_ttl, key_prefix=args.key_prefix, debug=args.debug, **lifecycle)


def missing_module(error: ModuleNotFoundError, modules: Sequence[str]) -> str | None:
    """The served module ``error`` says cannot be found; None if a module it imports is missing."""
    for module in modules:
        if error.name and (module == error.name or module.startswith(error.name + ".")):
            return module
    return None


def module_hint(module: str, paths: Sequence[str]) -> str:
    """What to say of a served module that cannot be found, naming the fix."""
    if not paths:
        return f"no module named {module!r}: give the directory that holds it with --path DIR"
    return f"no module named {module!r} in {', '.join(paths)} nor on sys.path: check the name and --path"


def run_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from ladon_tasks.console.access import loopback
    from ladon_tasks.ladon_glue.wsgi import TaskWSGIApplication

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = serve_config(args)
    try:
        app = TaskWSGIApplication(args.modules, args.path or None, config=config,
                                  admin=loopback if args.admin else None)
    except ModuleNotFoundError as error:
        module = missing_module(error, args.modules)
        if module is None:
            raise
        print(f"ladon-tasks serve: {module_hint(module, args.path)}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        server = make_server(args.host, args.port, app, threaded=True)
        signal.signal(signal.SIGTERM, stop)
        logging.getLogger("ladon_tasks").info(
            "serving %s on http://%s:%d/ in %s mode", ", ".join(args.modules), args.host,
            server.server_port, config.mode)
        server.log_startup()
        # Returns on KeyboardInterrupt (Ctrl-C, or SIGTERM through stop()), socket closed.
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0
