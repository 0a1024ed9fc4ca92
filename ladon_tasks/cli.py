"""The ``ladon-tasks`` command: ``serve`` runs services on werkzeug's development server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Sequence

from ladon_tasks.config import MODES, TaskConfig
from ladon_tasks.exceptions import ConfigurationError


def add_serve_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="serve Ladon service modules with task methods (development server)")
    serve.add_argument("modules", nargs="+", metavar="MODULE", help="service module to import")
    serve.add_argument("--path", action="append", default=[], metavar="DIR",
                       help="directory to import the modules from (repeatable)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--mode", choices=MODES, default=None,
                       help="thread (default) or process (worker processes, state in Redis)")
    serve.add_argument("--redis-url", default=None, help="Redis URL, required by --mode process")
    serve.add_argument("--threads", type=int, default=None, help="task threads (thread mode)")
    serve.add_argument("--processes", type=int, default=None, help="worker processes (process mode)")
    serve.add_argument("--result-ttl", type=float, default=None, help="seconds results are kept")
    serve.add_argument("--key-prefix", default=None, help="prefix of Redis keys")
    serve.add_argument("--debug", action="store_true", default=None,
                       help="show tracebacks to clients (never in production)")
    serve.add_argument("--log-level", default="INFO")
    serve.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from ladon_tasks.ladon_glue.wsgi import TaskWSGIApplication

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TaskConfig.from_env(
        mode=args.mode, redis_url=args.redis_url, threads=args.threads, processes=args.processes,
        result_ttl=args.result_ttl, key_prefix=args.key_prefix, debug=args.debug)
    app = TaskWSGIApplication(args.modules, args.path or None, config=config)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    logging.getLogger("ladon_tasks").info(
        "serving %s on http://%s:%d/ in %s mode", ", ".join(args.modules), args.host, args.port,
        config.mode)
    try:
        run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ladon-tasks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ConfigurationError as error:
        print(f"ladon-tasks: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
