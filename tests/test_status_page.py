"""The status page at /_tasks/ in a real headless Chromium, against the real application on
a live HTTP server: what it shows, that it keeps itself up to date, that it says when it
cannot reach the server, and who may see it (its buttons: test_status_page_actions.py).

The application is mounted under ``/as/root`` (tests' stand-in for Apache's authentication,
see ``AsUser``), so the page also proves that it finds its API under a prefix.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from typing import Callable, Iterator

import pytest
from conftest import free_port, make_app
from selenium import webdriver
from selenium.webdriver.common.by import By
from status_browser import (
    DURATION,
    FLAKY_ERROR,
    SCREENSHOT,
    StatusPage,
    failed_flaky,
    origin_of,
    running_spin,
    talking,
)
from test_caller_binding import PREFIX, AsUser, as_user
from test_console_api import ADMIN, is_root
from test_lifecycle import SERVICE
from werkzeug.serving import WSGIRequestHandler, make_server

# -- what the page shows ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_the_page_shows_counts_running_tasks_failures_and_durations(status_page, tmp_path, mode):
    page = status_page()
    alice = as_user(page.url, "jsonwsp", "alice")
    for number in range(3):
        alice.wait_done("quick", alice.start("quick", text=str(number)))
    failed = failed_flaky(page.url, tmp_path / "counter")
    running = talking(page.url)
    page.open()
    assert page.driver.title == "Tasks · ladon_tasks"

    expected = {"queued": "0", "running": "1", "succeeded": "3", "failed": "1", "lost": "0", "cancelled": "0"}
    page.wait(lambda: all(page.text(f"count-{state}") == count for state, count in expected.items()),
              "the totals of the workload")
    summary = page.console.get("api/summary")
    by_method = {item["method"]: item for item in summary["methods"]}
    assert by_method[f"{SERVICE}.quick"]["succeeded"] == 3 and by_method[f"{SERVICE}.flaky"]["failed"] == 1
    assert by_method[f"{SERVICE}.flaky"]["retried"] == 2 and summary["totals"]["started"] == 3 + 3 + 1
    for name in ("retried", "started"):
        assert page.text(f"count-{name}") == str(summary["totals"][name])
    for method, item in by_method.items():
        row = page.wait_row("methods", method)
        shown = {name: int(row["cells"][name]) for name in (*expected, "retried", "started")}
        assert shown == {name: item[name] for name in shown}, method
        for name in ("p50", "p90"):
            assert (row["cells"][name] == "–") == (item[name] is None), (method, name, row)
    quick = page.row("methods", f"{SERVICE}.quick")
    assert re.fullmatch(DURATION, quick["cells"]["p50"]), quick  # three tasks ended
    assert quick["cells"]["starting"].startswith("starts")

    row = page.wait_row("active", running, lambda row: row["bar"] >= 0.1, "with some progress")
    assert row["state"] == "running" and row["action"] == "cancel"
    cells = row["cells"]
    assert (cells["method"], cells["owner"], cells["state"], cells["attempt"]) == (
        f"{SERVICE}.talker", "bob", "running", "1")
    assert re.fullmatch(r"step \d+ of 300", cells["message"]) and cells["health"] in ("ok", "silent")
    assert re.fullmatch(r"\d+%", cells["progress"]) and cells["progress"] != "0%"
    assert re.fullmatch(DURATION, cells["silent"]) and re.fullmatch(DURATION, cells["duration"])

    failure = page.wait_row("failures", failed)
    assert failure["state"] == "failed" and failure["action"] == "retry"
    assert FLAKY_ERROR in failure["cells"]["error"] and failure["cells"]["attempt"] == "3"
    assert failure["cells"]["owner"] == "(none)" and failure["cells"]["method"] == f"{SERVICE}.flaky"
    assert [row["key"] for row in page.rows("recent")][:2] == [running, failed]  # newest first
    assert page.text("paused-state") == "Running: queued tasks start"
    assert not page.shown("connection") and not page.shown("action-error")
    if mode == "thread":
        page.screenshot(SCREENSHOT)
    assert page.console_problems() == []
    page.console.post(f"api/tasks/{running}/cancel", **origin_of(page.url))


@pytest.mark.parametrize("mode", ["thread"])
def test_a_running_tasks_progress_bar_advances_without_a_reload(status_page, tmp_path):
    page = status_page()
    running = running_spin(page.url, tmp_path / "spin")
    page.open()
    page.driver.execute_script("window.notReloaded = true;")
    first = page.wait_row("active", running)
    later = page.wait_row("active", running, lambda row: row["bar"] >= first["bar"] + 0.1, "to advance")
    assert int(later["cells"]["progress"].rstrip("%")) > int(first["cells"]["progress"].rstrip("%"))
    assert page.driver.execute_script("return window.notReloaded === true;")
    assert page.console_problems() == []
    page.console.post(f"api/tasks/{running}/cancel", **origin_of(page.url))


@pytest.mark.parametrize("mode", ["thread"])
def test_the_page_finds_its_api_without_the_trailing_slash_and_logs_nothing(status_page, tmp_path):
    page = status_page()
    failed_flaky(page.url, tmp_path / "counter", caller="carol")
    running = running_spin(page.url, tmp_path / "spin")
    page.open("/_tasks")
    page.wait_row("active", running)
    for _ in range(3):
        page.refreshes()
    assert page.console_problems() == []
    page.console.post(f"api/tasks/{running}/cancel", **origin_of(page.url))


# -- when the server is away, and who may see the page ---------------------------------------


class _ConnectionPerRequest(WSGIRequestHandler):
    # No keep-alive: once the server stops listening, the page really cannot reach it.
    protocol_version = "HTTP/1.0"


class RestartableServer:
    """A live server that can stop and start again on the same port."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True,
                                  request_handler=_ConnectionPerRequest)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def restartable(browser: webdriver.Chrome) -> Iterator[RestartableServer]:
    app = make_app(["lifecycle_service"], threads=2, progress_interval=0.05, admin=is_root)
    server = RestartableServer(AsUser(app))
    browser.get_log("browser")
    yield server
    browser.get("about:blank")
    server.stop()
    app.close(grace_period=5)


def test_the_page_says_when_it_cannot_reach_the_server_and_recovers(restartable, browser):
    page = StatusPage(browser, restartable.url)
    alice = as_user(page.url, "jsonwsp", "alice")
    done = alice.start("quick", text="shown")
    alice.wait_done("quick", done)
    page.open()
    page.wait_row("recent", done)
    assert not page.shown("connection")
    restartable.stop()
    page.wait(lambda: page.shown("connection"), "the line saying the server is away")
    assert page.text("connection").startswith("Could not reach the server: ")
    assert "Trying again every 2 s" in page.text("connection")
    assert "stale" in page.driver.find_element(By.ID, "main").get_attribute("class")
    assert page.row("recent", done) is not None  # the last figures stay
    restartable.start()
    page.wait(lambda: not page.shown("connection"), "the page to recover")
    page.refreshes()
    assert "stale" not in page.driver.find_element(By.ID, "main").get_attribute("class")
    assert page.console_problems(r"net::ERR_") == []


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize("mode", ["thread"])
def test_only_administrators_get_the_page_and_it_loads_nothing_from_elsewhere(serve, live_server):
    url = live_server(AsUser(serve(admin=is_root))).url
    for path in ("/_tasks/", "/_tasks", f"{PREFIX}alice/_tasks/", f"{PREFIX}alice/_tasks"):
        status, headers, body = _get(url + path)
        assert status == 403 and headers["Content-Type"] == "application/json", path
        assert b"<html" not in body and b"Forbidden" in body

    status, headers, body = _get(f"{url}{PREFIX}{ADMIN}/_tasks/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "script-src 'sha256-" in policy
    html = body.decode()
    assert re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html) == ["data:,"]  # the favicon
    assert "http://" not in html and "https://" not in html and "@import" not in html

    status, headers, body = _get(f"{url}{PREFIX}{ADMIN}/_tasks", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Type"].startswith("text/html")
    status, headers, _ = _get(f"{url}{PREFIX}{ADMIN}/_tasks/", method="POST")
    assert status == 405
