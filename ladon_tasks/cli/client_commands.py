"""``ladon-tasks call``, ``watch`` and ``cancel``: start, follow and stop tasks of a service."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from typing import Any, Callable, Sequence

from ladon_tasks.cli.display import one_line, progress_display, state_line

#: Exit codes of ``call``, ``watch`` and ``cancel`` besides 0 (success) and 2 (bad usage).
EXIT_ERROR = 1
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130

_CLIENT_EPILOG = (
    "Progress goes to stderr (a rich bar on a terminal, else one line per change), the result "
    "to stdout as JSON. Exit codes: 0 succeeded, 1 the task failed, was lost or cancelled, or "
    "the service could not be used, 2 bad usage, 124 --timeout passed (the task keeps running), "
    "130 interrupted (the task keeps running, unless --cancel-on-interrupt cancels it).")

_CANCEL_EPILOG = (
    "Prints the task's state on stdout, like 'task ID: cancelled (TaskCancelled: ...)'. "
    "Exit codes: 0 the task has ended (cancelled now, or it had already ended: its state "
    "says how), 1 the task is unknown, expired or dismissed, or the service could not be "
    "used, 2 bad usage, 124 the task was still stopping after --timeout (it ends cancelled "
    "at its next progress report, or by force after the server's cancel_grace), 130 "
    "interrupted.")

#: How long ``cancel`` waits for a running task to stop, by default.
CANCEL_WAIT = 10.0

#: ``name=value`` with a Python identifier as name; anything else is a positional value.
_KEYWORD_ARGUMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)

#: The shape of a task id (see ladon_tasks.ids); one in 64 starts with "-".
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{22}")


class TaskIdParser(argparse.ArgumentParser):
    """argparse, but a task id that starts with "-" is a value, not an unknown option."""

    def _parse_optional(self, arg_string: str) -> Any:
        if _TASK_ID.fullmatch(arg_string) and arg_string not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)


def add_client_parsers(commands: Any) -> None:
    from ladon_tasks.client import PROTOCOLS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--protocol", choices=PROTOCOLS, default="jsonwsp",
                        help="jsonwsp (default) or soap (needs zeep: ladon_tasks[client])")
    common.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="stop waiting after S seconds; the task keeps running")
    common.add_argument("--no-progress", action="store_true", help="show no progress")

    call = commands.add_parser(
        "call", parents=[common], help="start a task and wait for its result",
        description="Start task method METHOD of the service at URL, show its progress and "
                    "print its result.", epilog=_CLIENT_EPILOG)
    call.add_argument("url", metavar="URL", help="the service, like http://localhost:8080/TaskService")
    call.add_argument("method", metavar="METHOD", help="the task method")
    call.add_argument("args", nargs="*", metavar="ARG",
                      help="name=value or a positional value; values are read as JSON when they "
                           "parse (42, 1.5, true, \"text\", [1,2]), else as text")
    call.add_argument("--cancel-on-interrupt", action="store_true",
                      help="on Ctrl-C, cancel the task instead of leaving it running")
    call.set_defaults(run=run_call)

    watch = commands.add_parser(
        "watch", parents=[common], help="follow a running task to its result",
        description="Follow task TASK_ID of METHOD at URL, show its progress and print its "
                    "result.", epilog=_CLIENT_EPILOG)
    watch.add_argument("url", metavar="URL", help="the service, like http://localhost:8080/TaskService")
    watch.add_argument("method", metavar="METHOD", help="the task method that started the task")
    watch.add_argument("task_id", metavar="TASK_ID")
    watch.add_argument("--cancel-on-interrupt", action="store_true",
                       help="on Ctrl-C, cancel the task instead of leaving it running")
    watch.set_defaults(run=run_watch)

    cancel = commands.add_parser(
        "cancel", help="cancel a task",
        description="Cancel task TASK_ID of METHOD at URL: a queued task never runs, a running "
                    "one is stopped; wait up to --timeout seconds for it to end.",
        epilog=_CANCEL_EPILOG)
    cancel.add_argument("url", metavar="URL", help="the service, like http://localhost:8080/TaskService")
    cancel.add_argument("method", metavar="METHOD", help="the task method that started the task")
    cancel.add_argument("task_id", metavar="TASK_ID")
    cancel.add_argument("--protocol", choices=PROTOCOLS, default="jsonwsp",
                        help="jsonwsp (default) or soap (needs zeep: ladon_tasks[client])")
    cancel.add_argument("--timeout", type=float, default=CANCEL_WAIT, metavar="S",
                        help=f"wait up to S seconds for a running task to end (default "
                             f"{CANCEL_WAIT:g}; 0: do not wait)")
    cancel.set_defaults(run=run_cancel)


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_call_arguments(items: Sequence[str]) -> tuple[list, dict]:
    """Split ``ARG``s into positional values and ``name=value`` keywords."""
    positional: list = []
    keywords: dict = {}
    for item in items:
        match = _KEYWORD_ARGUMENT.fullmatch(item)
        if match is None:
            positional.append(parse_value(item))
            continue
        name, text = match.groups()
        if name in keywords:
            raise ValueError(f"argument {name!r} given twice")
        keywords[name] = parse_value(text)
    return positional, keywords


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Session:
    """What a client command knows so far, for its error messages."""

    client: Any = None
    task_id: str | None = None


def _client(args: argparse.Namespace, request_timeout: float | None = None) -> Any:
    from ladon_tasks.client import TaskClient

    if request_timeout is None:
        request_timeout = 30.0 if args.timeout is None else min(30.0, max(args.timeout, 1.0))
    return TaskClient(args.url, args.protocol, timeout=request_timeout)


def _follow(client: Any, args: argparse.Namespace, task_id: str) -> int:
    from ladon_tasks.client import plain_value

    with progress_display(not args.no_progress, f"{args.method} {task_id}") as show:
        result = client.join(args.method, task_id, progress_callback=show, timeout=args.timeout)
    print(json.dumps(plain_value(result), indent=2, ensure_ascii=False, default=str), flush=True)
    return 0


def _call(args: argparse.Namespace, session: _Session) -> int:
    try:
        positional, keywords = parse_call_arguments(args.args)
    except ValueError as error:
        _say(f"ladon-tasks call: {error}")
        return 2
    session.client = _client(args)
    session.task_id = session.client.start(args.method, *positional, **keywords)
    _say(f"started task {session.task_id}")
    return _follow(session.client, args, session.task_id)


def _watch(args: argparse.Namespace, session: _Session) -> int:
    session.client = _client(args)
    session.task_id = args.task_id
    return _follow(session.client, args, args.task_id)


def _cancel(args: argparse.Namespace, session: _Session) -> int:
    from ladon_tasks.client import JoinTimeout

    client = _client(args, request_timeout=30.0)
    progress = client.cancel(args.method, args.task_id)
    if not progress.done and args.timeout > 0:
        try:
            progress = client.wait(args.method, args.task_id, timeout=args.timeout,
                                   poll_interval=0.05, max_interval=0.5)
        except JoinTimeout as error:
            progress = error.progress
    print(state_line(progress), flush=True)
    if not progress.done:
        _say(f"ladon-tasks cancel: task {args.task_id} is still stopping; it ends cancelled at "
             "its next progress report, or by force after the server's cancel grace")
        return EXIT_TIMEOUT
    return 0


def _interrupted(args: argparse.Namespace, session: _Session) -> str:
    """What to say after Ctrl-C; cancels the task first with ``--cancel-on-interrupt``."""
    if not session.task_id:
        return "interrupted"
    if not getattr(args, "cancel_on_interrupt", False):
        return f"interrupted; task {session.task_id} keeps running on the server"
    return _cancel_after_interrupt(session.client, args.method, session.task_id)


def _cancel_after_interrupt(client: Any, method: str, task_id: str) -> str:
    from ladon_tasks.client import ClientError

    try:
        progress = client.cancel(method, task_id)
    except ClientError as error:
        return f"interrupted; could not cancel task {task_id}: {one_line(error)}"
    except KeyboardInterrupt:
        return f"interrupted again; task {task_id} may keep running on the server"
    if progress.cancelled:
        return f"interrupted; task {task_id} cancelled"
    if progress.done:
        return f"interrupted; task {task_id} had already ended {progress.state}"
    return f"interrupted; cancelling task {task_id}: it stops at its next progress report"


def _run_client(args: argparse.Namespace, action: Callable[[argparse.Namespace, _Session], int]) -> int:
    """Run a client command; every failure ends as one line on stderr and an exit code."""
    from ladon_tasks.client import ClientError, JoinTimeout

    try:
        # A parent may hand SIGINT down ignored (jobs started by scripts); Ctrl-C or
        # kill -INT must still stop the wait.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:
        pass  # not the main thread: leave signals to the caller
    session = _Session()
    try:
        return action(args, session)
    except KeyboardInterrupt:
        _say(_interrupted(args, session))
        return EXIT_INTERRUPTED
    except JoinTimeout as error:
        _say(f"ladon-tasks: {one_line(error)}; it keeps running on the server")
        return EXIT_TIMEOUT
    except ClientError as error:
        _say(f"ladon-tasks: {one_line(error)}")
        return EXIT_ERROR


def run_call(args: argparse.Namespace) -> int:
    return _run_client(args, _call)


def run_watch(args: argparse.Namespace) -> int:
    return _run_client(args, _watch)


def run_cancel(args: argparse.Namespace) -> int:
    return _run_client(args, _cancel)
