"""The console's JSON API under /_tasks/api/: administrators only, every task of every
caller, listed newest first in pages that stay put while tasks are added, in thread,
process and celery mode."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any, Callable

import pytest
from conftest import free_port, make_app
from helpers import wait_until
from test_caller_binding import PREFIX, AsUser, as_user
from test_lifecycle import SERVICE

from ladon_tasks.console.access import loopback, same_origin
from ladon_tasks.ids import new_task_id

ADMIN = "root"


def is_root(environ: dict) -> bool:
    return environ.get("REMOTE_USER") == ADMIN


class Http:
    """Plain HTTP to the console, as a user (through AsUser) or anonymously."""

    def __init__(self, url: str, user: str | None = ADMIN) -> None:
        self.base = url if user is None else f"{url}{PREFIX}{user}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, Any]:
        request = urllib.request.Request(f"{self.base}/_tasks/{path}", method=method,
                                         headers=headers or {}, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), _json(error.read())

    def get(self, path: str, **headers: str) -> Any:
        status, _, body = self.request("GET", path, headers)
        assert status == 200, (status, body)
        return body

    def post(self, path: str, **headers: str) -> Any:
        status, _, body = self.request("POST", path, headers)
        assert status == 200, (status, body)
        return body


def _json(data: bytes) -> Any:
    return json.loads(data) if data else None


@pytest.fixture
def console(serve: Callable, live_server: Callable) -> Callable[..., str]:
    """``console()`` -> the url of the lifecycle service with root as its administrator."""

    def start(**options: Any) -> str:
        app = serve(admin=is_root, **options)
        return live_server(AsUser(app)).url

    return start


#: Every route of the API, and a few paths no route has: all refused alike.
EVERY_ROUTE = [("GET", "api/tasks"), ("GET", "api/tasks?state=running&owner=alice"),
               ("GET", "api/tasks/{id}"), ("POST", "api/tasks/{id}/cancel"), ("GET", ""),
               ("GET", "api/"), ("GET", "api/nothing/here"), ("DELETE", "api/tasks/{id}"),
               ("GET", "api/tasks?state=bogus"), ("GET", "api/tasks/not-an-id")]


@pytest.mark.parametrize("mode", ["thread"])  # the routes, not the modes
def test_the_console_refuses_everyone_but_its_administrators_alike(console):
    url = console()
    alice = as_user(url, "jsonwsp", "alice")
    task_id = alice.start("quick", text="hers")
    alice.wait_done("quick", task_id)
    refusals = set()
    for user in ("alice", "bob", None):
        for method, path in EVERY_ROUTE:
            status, headers, body = Http(url, user).request(method, path.format(id=task_id))
            assert status == 403, (user, method, path, body)
            text = json.dumps(body)
            assert task_id not in text and "alice" not in text
            refusals.add(text)
    assert len(refusals) == 1  # nothing about the path or the task shows through
    assert json.loads(refusals.pop())["error"]["code"] == "Forbidden"
    assert Http(url, ADMIN).get(f"api/tasks/{task_id}")["owner"] == "alice"


@pytest.mark.parametrize("mode", ["thread"])  # the routes, not the modes
def test_an_application_without_admin_has_a_closed_console(serve, live_server):
    url = live_server(AsUser(serve())).url
    for user in (ADMIN, None):
        status, _, body = Http(url, user).request("GET", "api/tasks")
        assert status == 403 and body["error"]["code"] == "Forbidden"


def test_an_administrator_lists_every_callers_tasks_with_their_rows(console, tmp_path):
    url = console()
    callers = {name: as_user(url, "jsonwsp", name) for name in ("alice", "bob", None)}
    ended = {name: client.start("quick", text=f"of {name}") for name, client in callers.items()}
    for name, task_id in ended.items():
        callers[name].wait_done("quick", task_id)
    running = callers["bob"].start("spin", marker=str(tmp_path / "spin"), seconds=30.0)
    wait_until(lambda: callers["bob"].progress("spin", running)["state"] == "running",
               message="the task to run")
    admin = Http(url)
    page = admin.get("api/tasks")
    rows = {row["task_id"]: row for row in page["tasks"]}
    assert page["next_cursor"] is None
    assert list(rows) == [running, ended[None], ended["bob"], ended["alice"]]  # newest first
    assert rows[running]["method"] == f"{SERVICE}.spin" and rows[running]["state"] == "running"
    assert rows[running]["owner"] == "bob" and rows[running]["attempt"] == 1
    assert rows[running]["started"] and rows[running]["finished"] is None
    assert rows[ended["alice"]]["state"] == "succeeded" and rows[ended["alice"]]["progress"] == 1.0
    assert rows[ended[None]]["owner"] is None
    assert rows[ended["alice"]]["created"].endswith("Z") and rows[ended["alice"]]["error"] == ""

    def ids(query: str) -> list[str]:
        return [row["task_id"] for row in admin.get(f"api/tasks?{query}")["tasks"]]

    assert ids("state=running") == [running]
    assert ids("state=succeeded&owner=alice") == [ended["alice"]]
    assert ids("owner=") == [ended[None]]  # tasks started without an identity
    assert ids(f"method={SERVICE}.quick") == [ended[None], ended["bob"], ended["alice"]]
    assert ids("method=Nope.quick") == [] and ids("state=failed") == []
    assert admin.get(f"api/tasks/{ended['bob']}") == rows[ended["bob"]]


def test_pages_of_ten_stay_put_while_more_tasks_are_started(console):
    url = console()
    client = as_user(url, "jsonwsp", "alice")
    first = [client.start("quick", text=str(number)) for number in range(25)]
    admin = Http(url)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = admin.get(f"api/tasks?limit=10&owner=alice{cursor}")
        seen += [row["task_id"] for row in page["tasks"]]
        pages += 1
        client.start("quick", text=f"meanwhile {pages}")  # newer than any cursor: never shown
        if page["next_cursor"] is None:
            break
        assert len(page["tasks"]) == 10
        cursor = f"&cursor={page['next_cursor']}"
    assert pages == 3
    assert seen == first[::-1]  # each once, newest first, none of those started meanwhile
    assert len(admin.get("api/tasks?limit=100")["tasks"]) == 25 + pages


def test_an_administrator_cancels_any_callers_task(console, tmp_path):
    url = console()
    bob = as_user(url, "jsonwsp", "bob")
    task_id = bob.start("spin", marker=str(tmp_path / "spin"), seconds=30.0)
    wait_until(lambda: bob.progress("spin", task_id)["state"] == "running", message="the task to run")
    admin = Http(url)
    # From another site's page, a browser would send the administrator's credentials too.
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        status, _, body = admin.request("POST", f"api/tasks/{task_id}/cancel", headers)
        assert status == 403 and body["error"]["code"] == "CrossSiteRequest"
    assert bob.progress("spin", task_id)["state"] == "running"
    status, headers, body = admin.request("GET", f"api/tasks/{task_id}/cancel")
    assert status == 405 and headers["Allow"] == "POST"
    row = admin.post(f"api/tasks/{task_id}/cancel", Origin=url)
    assert row["task_id"] == task_id and row["cancel_requested"]
    wait_until(lambda: admin.get(f"api/tasks/{task_id}")["state"] == "cancelled",
               message="the task to be cancelled")
    assert bob.wait_done("spin", task_id)["state"] == "cancelled"


@pytest.mark.parametrize("mode", ["thread"])  # the routes, not the modes
def test_bad_requests_get_a_json_error_naming_the_mistake(console, collect_logs):
    logs = collect_logs("")
    url = console()
    admin = Http(url)
    never = new_task_id()
    cases = [
        ("GET", "api/tasks?state=bogus", 400, "InvalidQuery", "bogus"),
        ("GET", "api/tasks?limit=0", 400, "InvalidQuery", "limit"),
        ("GET", "api/tasks?limit=%C2%B2", 400, "InvalidQuery", "limit"),
        ("GET", "api/tasks?limit=501", 400, "InvalidQuery", "limit"),
        ("GET", "api/tasks?cursor=bm90IGEgY3Vyc29y", 400, "InvalidQuery", "cursor"),
        ("GET", "api/tasks?color=red", 400, "InvalidQuery", "color"),
        ("GET", "api/tasks?state=queued&state=running", 400, "InvalidQuery", "more than once"),
        ("GET", "api/tasks?%ff=1", 400, "InvalidQuery", "cannot be read"),
        ("GET", "api/tasks?method=" + "x" * 600, 400, "InvalidQuery", "method"),
        ("GET", "api/tasks?owner=" + "x" * 5000, 414, "InvalidQuery", "query string"),
        ("GET", f"api/tasks/{never}", 404, "TaskNotFound", never),
        ("POST", f"api/tasks/{never}/cancel", 404, "TaskNotFound", never),
        ("GET", "api/tasks/not-an-id", 400, "InvalidTaskId", "malformed"),
        ("GET", "api/elsewhere", 404, "NotFound", "API path"),
        ("GET", "metrics/more", 404, "NotFound", "/_tasks/api/"),
        ("POST", "", 405, "MethodNotAllowed", "GET"),
        ("PUT", "api/tasks", 405, "MethodNotAllowed", "GET"),
    ]
    for method, path, status, code, named in cases:
        got, headers, body = admin.request(method, path)
        assert (got, body["error"]["code"]) == (status, code), (method, path, body)
        assert named in body["error"]["message"], body
        assert headers["Content-Type"] == "application/json"
        assert "Traceback" not in json.dumps(body)
    assert not [record for record in logs.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("mode", ["thread"])  # the routes, not the modes
def test_an_admin_check_that_fails_refuses_and_is_logged(serve, live_server, collect_logs):
    logs = collect_logs("ladon_tasks")

    def broken(environ: dict) -> bool:
        raise RuntimeError("the directory is down")

    url = live_server(serve(admin=broken)).url
    status, _, body = Http(url, None).request("GET", "api/tasks")
    assert status == 403 and "directory" not in json.dumps(body)
    assert any("admin check failed" in record.getMessage() for record in logs.records)


def test_a_store_that_is_away_answers_503_with_retry_after(live_server):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    url = live_server(AsUser(make_app(["lifecycle_service"], mode="process", redis_url=nowhere,
                                      admin=is_root))).url
    status, headers, body = Http(url).request("GET", "api/tasks")
    assert status == 503 and body["error"]["code"] == "StoreUnavailable"
    assert int(headers["Retry-After"]) > 0


@pytest.mark.parametrize(("environ", "admitted"), [
    ({"REMOTE_ADDR": "127.0.0.1"}, True),
    ({"REMOTE_ADDR": "127.8.9.10"}, True),
    ({"REMOTE_ADDR": "::1"}, True),
    ({"REMOTE_ADDR": "10.0.0.7"}, False),
    ({"REMOTE_ADDR": "::ffff:8.8.8.8"}, False),
    ({"REMOTE_ADDR": ""}, False),
    ({}, False),
    ({"REMOTE_ADDR": "not an address"}, False),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, False),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.9"}, False),
])
def test_serve_admin_admits_this_machine_only(environ, admitted):
    assert loopback(environ) is admitted


@pytest.mark.parametrize(("headers", "same"), [
    ({}, True),
    ({"HTTP_SEC_FETCH_SITE": "same-origin"}, True),
    ({"HTTP_SEC_FETCH_SITE": "none"}, True),
    ({"HTTP_SEC_FETCH_SITE": "same-site"}, False),
    ({"HTTP_SEC_FETCH_SITE": "cross-site"}, False),
    ({"HTTP_ORIGIN": "http://tasks.example:8080"}, True),
    ({"HTTP_ORIGIN": "http://TASKS.example:8080"}, True),
    ({"HTTP_ORIGIN": "http://tasks.example:8081"}, False),
    ({"HTTP_ORIGIN": "null"}, False),
])
def test_a_change_must_come_from_the_servers_own_origin(headers, same):
    assert same_origin({"HTTP_HOST": "tasks.example:8080", **headers}) is same
