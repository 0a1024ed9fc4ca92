"""``ladon-tasks tasks URL``: the tasks the console lists, as a table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any, Iterable

from ladon_tasks.cli.display import one_line

#: Columns of the table: heading, and how a row shows in it.
COLUMNS: list[tuple[str, Any]] = [
    ("task id", lambda row: row["task_id"]),
    ("method", lambda row: row["method"]),
    ("state", lambda row: row["state"] + (f" ({row['health']})" if row.get("health") not in (None, "ok")
                                          else "")),
    ("progress", lambda row: f"{row['progress']:.0%}"),
    ("owner", lambda row: row["owner"] or "-"),
    ("attempt", lambda row: str(row["attempt"])),
    ("created", lambda row: _local_time(row["created"])),
    ("duration", lambda row: f"{row['duration']:.1f} s" if row["started"] else "-"),
    ("message or error", lambda row: row["error"] or row["message"]),
]


def add_tasks_parser(commands: Any) -> None:
    tasks = commands.add_parser(
        "tasks", help="list the tasks of a service (administrators)",
        description="List the tasks of the application at URL (its root, e.g. "
                    "http://localhost:8080) through its console API, newest first. The "
                    "application must admit you as an administrator (its admin option; "
                    "ladon-tasks serve --admin admits this machine).")
    tasks.add_argument("url", metavar="URL", help="the application root, like http://localhost:8080")
    tasks.add_argument("--state", default=None, help="only tasks in this state (queued, running, ...)")
    tasks.add_argument("--method", default=None, help="only tasks of this method, as Service.method")
    tasks.add_argument("--owner", default=None, help="only tasks of this caller ('' for none)")
    tasks.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    tasks.add_argument("--all", action="store_true", help="show every matching task, page after page")
    tasks.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    tasks.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                       help="send this HTTP header (a token your admin check reads)")
    tasks.add_argument("--user", default=None, metavar="NAME:PASSWORD", help="HTTP basic authentication")
    tasks.set_defaults(run=run_tasks)


def run_tasks(args: argparse.Namespace) -> int:
    from ladon_tasks.client import ClientError, ConsoleClient

    try:
        headers = dict(_header(text) for text in args.header)
    except ValueError as error:
        print(f"ladon-tasks tasks: {error}", file=sys.stderr)
        return 2
    client = ConsoleClient(args.url, headers=headers, user=args.user)
    filters = {"state": args.state, "method": args.method, "owner": args.owner}
    try:
        if args.all:
            rows = list(client.iter_tasks(limit=500, **filters))
            more = False
        else:
            page = client.list_tasks(limit=args.limit, **filters)
            rows, more = page["tasks"], page["next_cursor"] is not None
    except ClientError as error:
        print(f"ladon-tasks tasks: {one_line(error)}", file=sys.stderr)
        return 1
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print_table(rows, more)
    return 0


def print_table(rows: list[dict[str, Any]], more: bool) -> None:
    """The rows as a rich table (plain columns where rich is not installed)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _plain_table(rows)
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=max(console.width, 220))
        table = Table(*(heading for heading, _ in COLUMNS), box=None, header_style="bold")
        for row in rows:
            table.add_row(*(show(row) for _, show in COLUMNS))
        console.print(table)
    count = f"{len(rows)} task{'s' if len(rows) != 1 else ''}"
    print(f"{count}, newest first" + ("; more: use --all or a larger --limit" if more else ""))


def _plain_table(rows: Iterable[dict[str, Any]]) -> None:
    lines = [[heading for heading, _ in COLUMNS], *([show(row) for _, show in COLUMNS] for row in rows)]
    widths = [max(len(line[index]) for line in lines) for index in range(len(COLUMNS))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"--header {text!r}: write it as NAME:VALUE")
    return name.strip(), value.strip()


def _local_time(stamp: str | None) -> str:
    if not stamp:
        return "-"
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone()
    same_day = moment.date() == datetime.fromtimestamp(time.time()).astimezone().date()
    return moment.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M")
