"""The status page's browser: a headless Debian Chromium driven by chromedriver, the page
read through small scripts, and the tasks the page tests show it."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from helpers import wait_until
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from test_caller_binding import PREFIX, AsUser, as_user
from test_console_api import ADMIN, Http, is_root

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


@contextlib.contextmanager
def headless_chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium, its console kept at every level (a module's tests share one)."""
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


def status_pages(serve: Callable, live_server: Callable, browser: webdriver.Chrome) -> Iterator[Callable]:
    """For the ``status_page`` fixture: ``status_page(**options)`` gives the lifecycle
    service in the test's mode, root its administrator, and the page of its console (not
    opened yet)."""
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
