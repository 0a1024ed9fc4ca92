"""``ladon-tasks worker``: a Celery worker that runs the task methods of service modules."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ladon_tasks.config import CELERY_MODE, TaskConfig

#: ``worker`` flags read as text by TaskConfig (so that it names the fix for a bad value):
#: (flag, TaskConfig field, help).
_CONFIG_FLAGS = (
    ("--redis-url", "redis_url", "Redis URL of the task state (required): the same as the web servers'"),
    ("--broker-url", "broker_url", "Celery broker URL (default: --redis-url)"),
    ("--queue", "celery_queue", "Celery queue to consume (default ladon_tasks)"),
    ("--result-ttl", "result_ttl", "seconds an ended task's record and result are kept (default 3600)"),
    ("--tombstone-ttl", "tombstone_ttl", "seconds an expired or dismissed id still says so (default 86400)"),
    ("--key-prefix", "key_prefix", "prefix of Redis keys (default ladon_tasks)"),
    ("--lost-after", "lost_after", "seconds without a heartbeat after which a task of a dead "
                                   "worker is found lost (default 10)"),
    ("--heartbeat-interval", "heartbeat_interval", "seconds between two heartbeats of a running "
                                                   "task (default 1)"),
    ("--progress-interval", "progress_interval", "seconds between two progress writes of a task, "
                                                 "and two turns of its watchdog (default 0.1)"),
    ("--store-retry-for", "store_retry_for", "seconds a task's writes are retried while Redis is "
                                             "unreachable (default 60)"),
    ("--max-result-bytes", "max_result_bytes", "bytes of a stored result beyond which the task "
                                               "fails ResultTooLarge (default 67108864)"),
)


def add_worker_parser(commands: Any) -> None:
    worker = commands.add_parser(
        "worker", help="run a Celery worker for the task methods of service modules (celery mode)",
        description="Run a Celery worker (prefork pool) that runs the task methods of Ladon "
                    "service modules started by web servers in celery mode. Start as many as "
                    "you like, on any host that reaches the Redis and the broker. Exit codes: "
                    "0 stopped, 2 bad usage, a bad option or a module that cannot be found.")
    worker.add_argument("modules", nargs="+", metavar="MODULE", help="service module to import")
    worker.add_argument("--path", action="append", default=[], metavar="DIR",
                        help="directory to import the modules from (repeatable)")
    worker.add_argument("--concurrency", type=int, default=None, metavar="N",
                        help="pool processes, each running one task at a time (default: the CPUs)")
    for flag, name, text in _CONFIG_FLAGS:
        worker.add_argument(flag, dest=name, default=None, help=text)
    worker.add_argument("--debug", action="store_true", default=None,
                        help="record tracebacks in task errors (never in production)")
    worker.add_argument("--log-level", default="INFO")
    worker.set_defaults(run=run_worker)


def worker_config(args: argparse.Namespace) -> TaskConfig:
    """The TaskConfig of ``worker``: ``LADON_TASKS_*`` variables, then the flags given."""
    options = {name: getattr(args, name) for _, name, _ in _CONFIG_FLAGS}
    return TaskConfig.from_env(mode=CELERY_MODE, processes=args.concurrency, debug=args.debug,
                               **options)


def celery_argv(config: TaskConfig, log_level: str) -> list[str]:
    """The ``celery worker`` arguments of a ladon-tasks worker: prefork, our queue, and no
    gossip, mingle or event heartbeats (a ladon_tasks worker needs none of them, and
    mingle alone delays every start by a second or more)."""
    return ["worker", "--pool", "prefork", "--concurrency", str(config.processes),
            "--queues", config.celery_queue, "--loglevel", log_level.upper(),
            "--hostname", f"ladon-tasks-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]


def run_worker(args: argparse.Namespace) -> int:
    from ladon_tasks.cli.serve import missing_module, module_hint
    from ladon_tasks.executors import celery_app, celery_worker
    from ladon_tasks.ladon_glue.services import check_task_methods, import_service_modules

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
    config = worker_config(args)
    try:
        import_service_modules(args.modules, args.path)
    except ModuleNotFoundError as error:
        module = missing_module(error, args.modules)
        if module is None:
            raise
        print(f"ladon-tasks worker: {module_hint(module, args.path)}", file=sys.stderr)
        return 2
    count = len(check_task_methods(args.modules, config))
    app = celery_app.make_app(config)
    celery_worker.register(app, config)
    logging.getLogger("ladon_tasks").info(
        "worker for %d task method(s) of %s: queue %s, %d process(es)", count,
        ", ".join(args.modules), config.celery_queue, config.processes)
    app.worker_main(celery_argv(config, args.log_level))
    return 0
