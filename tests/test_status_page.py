"""The status page at /_tasks/ in a real headless Chromium, against the real application on
a live HTTP server: what it shows, that it keeps itself up to date, and its buttons.

The application is mounted under ``/as/root`` (tests' stand-in for Apache's authentication,
see ``AsUser``), so the page also proves that it finds its API under a prefix.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from conftest import free_port, make_app
from helpers import wait_until
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from test_caller_binding import PREFIX, AsUser, as_user
from test_console_api import ADMIN, Http, is_root
from test_lifecycle import SERVICE
from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Where a test run leaves a picture of the page with a running task and a failure.
SCREENSHOT = "/tmp/status_page.png"
#: What flaky's last failing attempt says (tests/services/lifecycle_service.py).
FLAKY_ERROR = "ValueError: attempt 3 fails on purpose"
#: A duration as the page writes it.
DURATION = r"< 1 ms|\d+ ms|\d+\.\d s|\d+ min \d\d s"

#: The cells of each row, the task's data attributes, its progress bar and its button.
_ROWS_SCRIPT = """
return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr')).map((row) => {
  const cells = {};
  for (const td of row.cells) {
    const name = Array.from(td.classList).find((item) => item.startsWith('c-'));
    if (name) { cells[name.slice(2)] = td.textContent.trim(); }
  }
  const bar = row.querySelector('progress');
  const button = row.querySelector('button[data-action]');
  return {key: row.dataset.key, task_id: row.dataset.taskId || null, state: row.dataset.state || null,
          attempt: row.dataset.attempt || null, bar: bar ? bar.value : null,
          action: button ? button.dataset.action : null, cells: cells};
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the module's tests, its console kept at every level."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"the status page tests need {' and '.join(missing)}: "
                    "apt-get install -y chromium chromium-driver", pytrace=False)
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1100",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-extensions", "--disable-sync"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A Service with its path given: Selenium Manager is never asked (it would go online).
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class StatusPage:
    """The page in the browser, read through small scripts (a row may be replaced between
    finding it and reading it; a script reads it whole)."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver = driver
        self.url = url
        self.console = Http(url)

    def open(self, path: str = "/_tasks/") -> StatusPage:
        self.driver.get(f"{self.url}{PREFIX}{ADMIN}{path}")
        self.wait(lambda: self.text("updated").startswith("updated"), "the page's first refresh")
        return self

    def wait(self, condition: Callable[[], Any], message: str, timeout: float = 30) -> Any:
        return wait_until(condition, timeout=timeout, interval=0.1, message=message)

    def text(self, element_id: str) -> str:
        return self.driver.find_element(By.ID, element_id).text.strip()

    def shown(self, element_id: str) -> bool:
        return self.driver.find_element(By.ID, element_id).is_displayed()

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.driver.execute_script(_ROWS_SCRIPT, table)

    def row(self, table: str, key: str) -> dict[str, Any] | None:
        return next((row for row in self.rows(table) if row["key"] == key), None)

    def wait_row(self, table: str, key: str, check: Callable[[dict], Any] = bool, what: str = "") -> dict:
        """The row of ``key`` in ``table`` once ``check`` holds for it."""
        return self.wait(lambda: (row := self.row(table, key)) is not None and check(row) and row,
                         f"{key} in #{table} {what}".strip())

    def click(self, table: str, task_id: str, action: str) -> None:
        self.driver.find_element(
            By.CSS_SELECTOR, f"#{table} tr[data-task-id='{task_id}'] button[data-action='{action}']").click()

    def refreshes(self) -> str:
        """Wait for a refresh after now: the header's time changes (once a second at most)."""
        before = self.text("updated")
        return self.wait(lambda: (now := self.text("updated")) != before and now, "the page to refresh")

    def screenshot(self, path: str) -> None:
        """Save the whole page, not only what the window shows."""
        size = self.driver.get_window_size()
        height = self.driver.execute_script("return document.documentElement.scrollHeight;")
        self.driver.set_window_size(size["width"], max(size["height"], height + 150))
        try:
            self.driver.save_screenshot(path)
        finally:
            self.driver.set_window_size(size["width"], size["height"])

    def console_problems(self, *allowed: str) -> list[dict]:
        """The browser console's warnings and errors since the last call, but those matching
        one of ``allowed`` (regular expressions)."""
        return [entry for entry in self.driver.get_log("browser")
                if entry["level"] in ("WARNING", "SEVERE")
                and not any(re.search(pattern, entry["message"]) for pattern in allowed)]


@pytest.fixture
def status_page(serve: Callable, live_server: Callable, browser: webdriver.Chrome) -> Iterator[Callable]:
    """``status_page(**options)``: the lifecycle service in this test's mode, root its
    administrator, and the page of its console (not opened yet)."""
    browser.get_log("browser")  # what earlier tests left

    def start(**options: Any) -> StatusPage:
        url = live_server(AsUser(serve(admin=is_root, **options))).url
        return StatusPage(browser, url)

    yield start
    browser.get("about:blank")  # stop polling before the server goes


def origin_of(url: str) -> dict[str, str]:
    return {"Origin": url}


def failed_flaky(url: str, counter: Path, caller: str | None = None) -> str:
    """A flaky task that failed its three attempts (two retries)."""
    client = as_user(url, "jsonwsp", caller)
    task_id = client.start("flaky", counter=str(counter), failures=3)
    assert client.wait_done("flaky", task_id)["state"] == "failed"
    return task_id


def talking(url: str, caller: str = "bob") -> str:
    """A running talker task: a step (and a message saying which) every 0.1 s for 30 s."""
    client = as_user(url, "jsonwsp", caller)
    task_id = client.start("talker", steps=300, pause=0.1)
    wait_until(lambda: client.progress("talker", task_id)["state"] == "running", message="the talker to run")
    return task_id


def running_spin(url: str, marker: Path, caller: str | None = "bob", seconds: float = 60.0) -> str:
    client = as_user(url, "jsonwsp", caller)
    task_id = client.start("spin", marker=str(marker), seconds=seconds)
    wait_until(lambda: client.progress("spin", task_id)["state"] == "running", message="the spin task to run")
    return task_id


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


# -- its buttons --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_the_cancel_button_cancels_a_running_task(status_page, tmp_path):
    page = status_page()
    running = running_spin(page.url, tmp_path / "spin")
    page.open()
    page.wait_row("active", running)
    page.click("active", running, "cancel")
    page.wait(lambda: page.console.get(f"api/tasks/{running}")["state"] == "cancelled",
              "the task to be cancelled")
    page.wait(lambda: page.row("active", running) is None, "the task to leave the running table")
    row = page.wait_row("recent", running, lambda row: row["state"] == "cancelled", "as cancelled")
    assert row["action"] == "retry"
    assert not page.shown("action-error")
    assert page.console_problems() == []


@pytest.mark.parametrize("mode", ["thread"])
def test_the_retry_button_queues_a_failed_task_again_and_shows_a_refusal(status_page, tmp_path):
    page = status_page()
    first = failed_flaky(page.url, tmp_path / "first")
    second = failed_flaky(page.url, tmp_path / "second")
    page.open()
    page.wait_row("failures", first)
    page.click("failures", first, "retry")
    done = page.wait(lambda: (row := page.console.get(f"api/tasks/{first}"))["state"] == "succeeded" and row,
                     "the retried task to succeed")
    assert done["attempt"] == 4  # flaky's fourth attempt succeeds
    page.wait(lambda: page.row("failures", first) is None, "the task to leave the failures")
    page.wait_row("recent", first, lambda row: row["state"] == "succeeded" and row["attempt"] == "4")

    # Retried elsewhere while the page (not refreshing) still offers it: the API refuses.
    page.wait_row("failures", second)
    page.driver.find_element(By.ID, "auto-refresh").click()
    page.wait(lambda: page.driver.execute_script("return document.body.dataset.refreshing === 'false';"),
              "the refresh on its way, if any, to end")
    page.console.post(f"api/tasks/{second}/retry", **origin_of(page.url))
    page.wait(lambda: page.console.get(f"api/tasks/{second}")["state"] == "succeeded",
              "the second task to succeed")
    page.click("failures", second, "retry")
    page.wait(lambda: page.shown("action-error"), "the refusal to show")
    assert page.text("action-error-text").startswith(f"Could not retry task {second}: NotRetryable: ")
    page.wait(lambda: page.row("failures", second) is None, "the page to refresh after the click")
    page.driver.find_element(By.ID, "action-error-close").click()
    assert not page.shown("action-error")
    assert page.console_problems(r"status of 409") == []


@pytest.mark.parametrize("mode", ["thread"])
def test_the_pause_buttons_hold_queued_tasks_and_let_them_go(status_page):
    page = status_page()
    alice = as_user(page.url, "jsonwsp", "alice")
    alice.wait_done("quick", alice.start("quick", text="before"))
    page.open()
    page.driver.find_element(By.ID, "pause-all").click()
    page.wait(lambda: page.console.get("api/summary")["paused"]["all"], "every method to be paused")
    held = alice.start("quick", text="held")
    row = page.wait_row("active", held)
    assert row["state"] == "queued" and row["action"] == "cancel"
    page.wait(lambda: page.text("paused-state") == "Paused: no queued task starts", "the pause to show")
    page.refreshes()
    assert page.console.get(f"api/tasks/{held}")["state"] == "queued"

    page.driver.find_element(By.ID, "resume-all").click()
    assert alice.wait_done("quick", held)["state"] == "succeeded"
    page.wait(lambda: page.text("paused-state") == "Running: queued tasks start", "the resume to show")

    quick = f"{SERVICE}.quick"
    toggle = f"#methods tr[data-key='{quick}'] button[data-action='%s']"
    page.driver.find_element(By.CSS_SELECTOR, toggle % "pause").click()
    page.wait(lambda: page.console.get("api/summary")["paused"]["methods"] == [quick], "quick to be paused")
    page.wait(lambda: page.text("paused-state") == f"Paused: {quick}", "the method's pause to show")
    page.wait(lambda: page.driver.find_elements(By.CSS_SELECTOR, toggle % "resume"), "its resume button")
    page.driver.find_element(By.CSS_SELECTOR, toggle % "resume").click()
    page.wait(lambda: page.console.get("api/summary")["paused"]["methods"] == [], "quick to be resumed")
    assert page.console_problems() == []


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
