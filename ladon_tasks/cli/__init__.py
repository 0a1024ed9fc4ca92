"""The ``ladon-tasks`` command: ``serve`` runs services on werkzeug's development server;
``worker`` runs a Celery worker for celery mode; ``call`` starts a task and follows it to
its result, ``watch`` follows a running one and ``cancel`` stops one; ``tasks`` lists the
tasks of a service for its administrators."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ladon_tasks.cli.client_commands import TaskIdParser, add_client_parsers, parse_call_arguments
from ladon_tasks.cli.display import LineProgress, one_line, progress_display
from ladon_tasks.cli.serve import add_serve_parser, serve_config
from ladon_tasks.cli.tasks_command import add_tasks_parser
from ladon_tasks.cli.worker import add_worker_parser
from ladon_tasks.exceptions import ConfigurationError

__all__ = ["LineProgress", "build_parser", "main", "one_line", "parse_call_arguments",
           "progress_display", "serve_config"]


def build_parser() -> argparse.ArgumentParser:
    parser = TaskIdParser(prog="ladon-tasks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(commands)
    add_worker_parser(commands)
    add_client_parsers(commands)
    add_tasks_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ConfigurationError as error:
        print(f"ladon-tasks: {error}", file=sys.stderr)
        return 2
