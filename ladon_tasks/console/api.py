"""The console's JSON API under ``/_tasks/api/``: one table of routes, and their handlers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from ladon_tasks.administration import Administration
from ladon_tasks.console.http import ApiError, query_of
from ladon_tasks.console.rows import task_row
from ladon_tasks.listing import DEFAULT_LIMIT, MAX_LIMIT, TaskQuery, decode_cursor
from ladon_tasks.task import TaskState

#: The longest ``method`` or ``owner`` filter read.
MAX_FILTER_CHARS = 512
_WHOLE_NUMBER = re.compile(r"[0-9]{1,6}")

Handler = Callable[[Administration, dict, "re.Match[str]"], Any]


def list_tasks(admin: Administration, environ: dict, match: re.Match[str]) -> Any:
    """``GET tasks?state=&method=&owner=&limit=&cursor=``: one page, newest first."""
    page = admin.list_tasks(task_query(query_of(environ, ("state", "method", "owner", "limit", "cursor"))))
    return {"tasks": [task_row(record) for record in page.records], "next_cursor": page.next_cursor}


def show_task(admin: Administration, environ: dict, match: re.Match[str]) -> Any:
    """``GET tasks/<id>``: one task."""
    query_of(environ, ())
    record, _ = admin.find(match["task_id"])
    return task_row(record)


def cancel_task(admin: Administration, environ: dict, match: re.Match[str]) -> Any:
    """``POST tasks/<id>/cancel``: cancel it; the task as it is now."""
    query_of(environ, ())
    return task_row(admin.cancel(match["task_id"]))


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


#: Every route of the API: the path after ``/_tasks/api/``.
ROUTES = [
    Route("GET", re.compile(r"tasks"), list_tasks),
    Route("GET", re.compile(r"tasks/(?P<task_id>[^/]+)"), show_task),
    Route("POST", re.compile(r"tasks/(?P<task_id>[^/]+)/cancel"), cancel_task),
]


def find_route(http_method: str, path: str) -> tuple[Route, re.Match[str]]:
    """The route for a request; ApiError 404 for a path no route has, 405 for a method
    its routes do not take."""
    allowed: list[str] = []
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        if route.method == http_method or (http_method == "HEAD" and route.method == "GET"):
            return route, match
        allowed.append(route.method)
    if allowed:
        raise ApiError("405 Method Not Allowed", "MethodNotAllowed",
                       f"use {' or '.join(allowed)} here", [("Allow", ", ".join(allowed))])
    raise ApiError("404 Not Found", "NotFound", "no such API path: see the operations docs")


def task_query(params: dict[str, str]) -> TaskQuery:
    """The listing a query string asks for; ApiError 400 naming a bad value."""
    state = params.get("state") or None
    if state is not None and state not in TaskState._value2member_map_:
        raise ApiError("400 Bad Request", "InvalidQuery",
                       f"state {state[:40]!r} is none of {', '.join(item.value for item in TaskState)}")
    for name in ("method", "owner"):
        if len(params.get(name, "")) > MAX_FILTER_CHARS:
            raise ApiError("400 Bad Request", "InvalidQuery", f"{name} is over {MAX_FILTER_CHARS} characters")
    limit_text = params.get("limit") or str(DEFAULT_LIMIT)
    if not _WHOLE_NUMBER.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise ApiError("400 Bad Request", "InvalidQuery",
                       f"limit {limit_text[:20]!r} is not a whole number from 1 to {MAX_LIMIT}")
    cursor = params.get("cursor")
    return TaskQuery(state=TaskState(state) if state else None, method=params.get("method") or None,
                     caller=params.get("owner"), limit=int(limit_text),
                     after=decode_cursor(cursor) if cursor else None)
