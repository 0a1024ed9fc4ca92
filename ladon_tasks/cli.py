"""The ``ladon-tasks`` command: ``serve`` runs services on werkzeug's development server;
``call`` starts a task and follows it to its result, ``watch`` follows a running one."""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
from typing import Any, Callable, Sequence

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


#: Exit codes of ``call`` and ``watch`` besides 0 (success) and 2 (bad usage).
EXIT_ERROR = 1
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130

_CLIENT_EPILOG = (
    "Progress goes to stderr (a rich bar on a terminal, else one line per change), the result "
    "to stdout as JSON. Exit codes: 0 succeeded, 1 the task failed or the service could not "
    "be used, 2 bad usage, 124 --timeout passed, 130 interrupted (the task keeps running).")

#: ``name=value`` with a Python identifier as name; anything else is a positional value.
_KEYWORD_ARGUMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)

#: The shape of a task id (see ladon_tasks.ids); one in 64 starts with "-".
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{22}")


class _Parser(argparse.ArgumentParser):
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
    call.set_defaults(run=run_call)

    watch = commands.add_parser(
        "watch", parents=[common], help="follow a running task to its result",
        description="Follow task TASK_ID of METHOD at URL, show its progress and print its "
                    "result.", epilog=_CLIENT_EPILOG)
    watch.add_argument("url", metavar="URL", help="the service, like http://localhost:8080/TaskService")
    watch.add_argument("method", metavar="METHOD", help="the task method that started the task")
    watch.add_argument("task_id", metavar="TASK_ID")
    watch.set_defaults(run=run_watch)


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


class LineProgress:
    """Progress as one line per change of percentage or state: for logs and pipes."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._shown: tuple | None = None

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    def __call__(self, progress: Any) -> None:
        shown = (int(progress.progress * 100), progress.state)
        if shown != self._shown:
            self._shown = shown
            print(f"task {progress.task_id}: {shown[0]:3d}% {progress.state}", file=self.stream, flush=True)


class RichProgress:
    """A live rich progress bar on a terminal."""

    def __init__(self, console: Any, label: str) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=console)
        self.task = self.bar.add_task(label, total=1.0, state="")

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.bar.stop()

    def __call__(self, progress: Any) -> None:
        self.bar.update(self.task, completed=progress.progress, state=progress.state)


class NoProgress(LineProgress):
    """``--no-progress``: show nothing."""

    def __call__(self, progress: Any) -> None:
        return None


def progress_display(enabled: bool, label: str, stream: Any = None) -> LineProgress | RichProgress:
    """A rich bar when rich is installed and ``stream`` is a terminal, else lines."""
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        return NoProgress(stream)
    try:
        from rich.console import Console
    except ImportError:
        return LineProgress(stream)
    console = Console(file=stream)
    if not console.is_terminal:
        return LineProgress(stream)
    return RichProgress(console, label)


def one_line(error: BaseException) -> str:
    """An error's message on one line, as the client commands report it."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Session:
    """What a client command knows so far, for its error messages."""

    task_id: str | None = None


def _client(args: argparse.Namespace) -> Any:
    from ladon_tasks.client import TaskClient

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
    client = _client(args)
    session.task_id = client.start(args.method, *positional, **keywords)
    _say(f"started task {session.task_id}")
    return _follow(client, args, session.task_id)


def _watch(args: argparse.Namespace, session: _Session) -> int:
    session.task_id = args.task_id
    return _follow(_client(args), args, args.task_id)


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
        if session.task_id:
            _say(f"interrupted; task {session.task_id} keeps running on the server")
        else:
            _say("interrupted")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ladon-tasks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(commands)
    add_client_parsers(commands)
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
