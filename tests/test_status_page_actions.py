"""The status page's buttons in a real headless Chromium, against the real application on
a live HTTP server: cancel, retry, pause and resume (the browser fixtures: conftest and status_browser)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from status_browser import failed_flaky, origin_of, running_spin
from test_caller_binding import as_user
from test_lifecycle import SERVICE


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
