"""The console's JSON API under ``/_tasks/api/``: one table of routes, and their handlers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from ladon_tasks.administration import Administration
from ladon_tasks.console.http import ApiError, query_of
from ladon_tasks.console.rows import task_row
from ladon_tasks.console.summary import paused_of, summary_of
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


def retry_task(admin: Administration, environ: dict, match: re.Match[str]) -> Any:
    """``POST tasks/<id>/retry``: run a failed, lost or cancelled task again; the task,
    queued as its next attempt."""
    query_of(environ, ())
    return task_row(admin.retry(match["task_id"]))


def summary(admin: Administration, environ: dict, match: re.Match[str]) -> Any:
    """``GET summary``: the pauses, and per method its tasks queued and running, what its
    tasks did (counters) and its recent durations (p50, p90)."""
    query_of(environ, ())
    return summary_of(admin)


def pause(admin: Administration, environ: dict, match: re.Match[str]) -> Any:
    """``POST pause[?method=]``: no queued task (of the method) starts until resumed."""
    return {"paused": paused_of(admin.pause(_method_of(admin, environ)))}


def resume(admin: Administration, environ: dict, match: re.Match[str]) -> Any:
    """``POST resume[?method=]``: end the pause of the method (without it: every pause)."""
    return {"paused": paused_of(admin.resume(_method_of(admin, environ)))}


def _method_of(admin: Administration, environ: dict) -> str | None:
    """The ``method`` parameter, one of the served task methods, or None."""
    method = query_of(environ, ("method",)).get("method") or None
    if method is not None and method not in admin.methods:
        raise ApiError("400 Bad Request", "InvalidQuery",
                       f"no task method {method[:MAX_FILTER_CHARS]!r} here: "
                       f"known are {', '.join(admin.methods) or 'none'}")
    return method


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
    Route("POST", re.compile(r"tasks/(?P<task_id>[^/]+)/retry"), retry_task),
    Route("GET", re.compile(r"summary"), summary),
    Route("POST", re.compile(r"pause"), pause),
    Route("POST", re.compile(r"resume"), resume),
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
