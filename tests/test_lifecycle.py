"""Task lifecycle over real HTTP, in thread, process and celery mode: cancel, cancel_grace,
time limits, the stall watchdog, retries, dismiss and expiry.

Every endpoint is called over SOAP 1.1 (zeep), JSON-WSP and JSON-RPC 1.0 where the answer
matters, with the clients of ``test_protocols``. Tasks (``tests/services/lifecycle_service.py``)
tell the tests that they run through marker files holding their pid.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until
from test_protocols import PROTOCOLS, Fault, Protocol, over

SERVICE = "LifecycleService"
#: The protocols every answer is checked over.
CHECKED = ("soap11", "jsonwsp", "jsonrpc10")


# -- a small client over any protocol ----------------------------------------------------


def plain(value: Any) -> Any:
    """A TaskProgressResponse as every protocol should give it: SOAP sends floats as
    xsd:decimal and empty strings as empty elements."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return float(value)
    return "" if value is None else value


class Tasks:
    """The lifecycle service over one protocol."""

    def __init__(self, proto: Protocol) -> None:
        self.proto = proto

    def start(self, method: str, **args: Any) -> str:
        return self.proto.start(SERVICE, method, **args)

    def ask(self, method: str, suffix: str, task_id: str) -> dict:
        """``<method>_<suffix>(task_id)`` for the endpoints answering a TaskProgressResponse."""
        return plain(dict(self.proto.call(SERVICE, f"{method}_{suffix}", task_id=task_id)))

    def progress(self, method: str, task_id: str) -> dict:
        return self.ask(method, "progress", task_id)

    def result(self, method: str, task_id: str) -> Any:
        return self.proto.call(SERVICE, f"{method}_result", task_id=task_id)

    def fault(self, method: str, suffix: str, task_id: str) -> Fault:
        return self.proto.fault(SERVICE, f"{method}_{suffix}", task_id=task_id)

    def wait_done(self, method: str, task_id: str, timeout: float = 30) -> dict:
        return wait_until(lambda: (p := self.progress(method, task_id))["done"] and p,
                          timeout=timeout, message=f"{method} task {task_id} to end")


def tasks(url: str, name: str = "jsonwsp") -> Tasks:
    return Tasks(PROTOCOLS[name](url))


def marked_pid(marker: Path, timeout: float = 30) -> int:
    """The pid a task wrote into ``marker`` once it runs."""
    wait_until(marker.exists, timeout=timeout, message=f"a task to write {marker.name}")
    return int(marker.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- cancel ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", CHECKED)
def test_a_running_task_is_cancelled_at_its_next_progress_call(serve, tmp_path, protocol):
    app = serve()
    client = tasks(app.url, protocol)
    with over(client.proto):
        task_id = client.start("spin", marker=str(tmp_path / "m"), seconds=60.0)
        marked_pid(tmp_path / "m")

        answer = client.ask("spin", "cancel", task_id)
        assert answer["task_id"] == task_id and answer["cancel_requested"] is True
        assert answer["state"] in ("running", "cancelled")

        ended = client.wait_done("spin", task_id, timeout=10)
        assert ended["state"] == "cancelled" and ended["progress"] == 1.0
        assert ended["error"] == "TaskCancelled: cancelled while running"
        assert ended["cancel_requested"] is True and ended["attempt"] == 1
        assert 0 < ended["starttime"] <= ended["endtime"]

        fault = client.fault("spin", "result", task_id)
        assert fault.detail == "TaskCancelled" and fault.code == "client"
        assert "Traceback" not in fault.text

        # Cancelling an ended task changes nothing and answers its state.
        again = client.ask("spin", "cancel", task_id)
        assert again == client.progress("spin", task_id)
        assert again["state"] == "cancelled" and again["endtime"] == ended["endtime"]


def test_a_queued_task_is_cancelled_at_once_and_never_runs(serve, tmp_path):
    app = serve(size=1)
    client = tasks(app.url)
    first = client.start("spin", marker=str(tmp_path / "first"), seconds=60.0)
    marked_pid(tmp_path / "first")
    second = client.start("spin", marker=str(tmp_path / "second"), seconds=60.0)
    assert client.progress("spin", second)["state"] == "queued"

    answer = client.ask("spin", "cancel", second)
    assert answer["state"] == "cancelled" and answer["done"] is True
    assert answer["error"] == "TaskCancelled: cancelled before it started"

    client.ask("spin", "cancel", first)
    assert client.wait_done("spin", first)["state"] == "cancelled"
    # The only worker is free again: a later task runs, the cancelled one never did.
    later = client.start("quick", text="after")
    assert client.wait_done("quick", later)["state"] == "succeeded"
    assert not (tmp_path / "second").exists()


def test_unknown_and_malformed_ids_are_client_faults_on_every_protocol(serve):
    app = serve()
    for name in CHECKED:
        client = tasks(app.url, name)
        with over(client.proto):
            for suffix in ("cancel", "dismiss"):
                unknown = client.fault("spin", suffix, "A" * 22)
                assert (unknown.code, unknown.detail) == ("client", "TaskNotFound")
                malformed = client.fault("spin", suffix, "not-a-task-id")
                assert (malformed.code, malformed.detail) == ("client", "InvalidTaskId")
                assert "Traceback" not in unknown.text + malformed.text


def test_a_task_cannot_swallow_its_cancel_with_except_exception(serve, tmp_path):
    app = serve()
    client = tasks(app.url)
    task_id = client.start("swallower", marker=str(tmp_path / "m"), seconds=60.0)
    marked_pid(tmp_path / "m")
    client.ask("swallower", "cancel", task_id)
    ended = client.wait_done("swallower", task_id, timeout=10)
    assert ended["state"] == "cancelled"
    assert ended["error"] == "TaskCancelled: cancelled while running"  # not ended by force


def test_a_task_that_ignores_its_cancel_is_ended_after_cancel_grace(serve, mode, tmp_path):
    app = serve(cancel_grace=0.5)
    client = tasks(app.url)
    sibling = client.start("spin", marker=str(tmp_path / "sibling"), seconds=4.0)
    sibling_pid = marked_pid(tmp_path / "sibling")
    stuck = client.start("sleeper", marker=str(tmp_path / "stuck"), seconds=3.0)
    stuck_pid = marked_pid(tmp_path / "stuck")

    client.ask("sleeper", "cancel", stuck)
    ended = client.wait_done("sleeper", stuck, timeout=15)
    assert ended["state"] == "cancelled"
    assert ended["error"].startswith("TaskCancelled: cancelled while running; it did not return "
                                     "within cancel_grace (0.5 s) and was ended by force")
    assert client.progress("spin", sibling)["state"] == "running"  # untouched

    if mode == "process":
        # Its worker was killed and replaced; the sibling's worker lives on.
        assert stuck_pid != sibling_pid
        wait_until(lambda: not alive(stuck_pid), timeout=10, message="the stuck worker to be gone")
        executor = app.engine.executor()
        wait_until(lambda: len(executor.worker_pids()) == 2, message="a replacement worker")
        assert stuck_pid not in executor.worker_pids() and sibling_pid in executor.worker_pids()
    elif mode == "celery":
        # Its watchdog recorded the end and ended its pool process; Celery started another.
        assert stuck_pid != sibling_pid
        wait_until(lambda: not alive(stuck_pid), timeout=10, message="the stuck pool process to be gone")
        pids = wait_until(lambda: (p := app.worker.pool_pids()) and len(p) == 2 and stuck_pid not in p and p,
                          message="a replacement pool process")
        assert sibling_pid in pids
    else:
        # A thread cannot be killed: it is abandoned and its slot given back at once.
        executor = app.engine.executor()
        assert executor.abandoned_threads == 1
        quick = client.start("quick", text="slot back")
        assert client.wait_done("quick", quick)["state"] == "succeeded"
        # When the abandoned task returns at last, its result is thrown away.
        wait_until(lambda: executor.abandoned_threads == 0, timeout=15,
                   message="the abandoned thread to return")
        assert client.progress("sleeper", stuck) == ended | {"silent_for": 0.0}
    assert client.wait_done("spin", sibling)["state"] == "succeeded"


# -- time limit and stall watchdog -------------------------------------------------------


def test_a_task_past_its_time_limit_fails_with_time_limit_exceeded(serve):
    app = serve()
    for name in CHECKED:
        client = tasks(app.url, name)
        with over(client.proto):
            task_id = client.start("limited", marker="", seconds=30.0)
            ended = client.wait_done("limited", task_id, timeout=15)
            assert ended["state"] == "failed"
            assert ended["error"] == "TimeLimitExceeded: ran longer than its time_limit of 0.5 s"
            assert 0.5 <= ended["duration"] < 30
            fault = client.fault("limited", "result", task_id)
            assert fault.detail == "TaskFailed" and "TimeLimitExceeded" in fault.string


def test_a_silent_task_reads_silent_then_is_ended_as_stalled(serve):
    app = serve()
    client = tasks(app.url)
    task_id = client.start("napper", marker="", nap=2.5, seconds=30.0)
    seen = []

    def ended_or_record() -> dict | None:
        progress = client.progress("napper", task_id)
        seen.append((progress["health"], progress["silent_for"]))
        return progress if progress["done"] else None

    ended = wait_until(ended_or_record, timeout=15, message="the napper to be ended")
    assert ended["state"] == "failed"
    assert ended["error"] == "TaskStalled: no progress reported for 1 s (max_silence)"
    healths = [health for health, _ in seen]
    assert "silent" in healths, seen  # shown before it was ended (max_silence 1 s, nap 2.5 s)
    assert all(silent >= 0.5 for health, silent in seen if health == "silent")
    assert healths.index("silent") < len(healths) - 1 and healths[-1] == ""


def test_a_task_that_reports_often_enough_is_not_stalled(serve):
    app = serve()
    client = tasks(app.url)
    task_id = client.start("napper", marker="", nap=0.05, seconds=1.5)
    ended = client.wait_done("napper", task_id)
    assert ended["state"] == "succeeded", ended
    assert client.result("napper", task_id) > 5


# -- retries -----------------------------------------------------------------------------


def test_a_failing_task_is_retried_with_backoff_until_it_succeeds(serve, tmp_path):
    app = serve()
    client = tasks(app.url)
    counter = tmp_path / "attempts"
    task_id = client.start("flaky", counter=str(counter), failures=2)
    ended = client.wait_done("flaky", task_id)
    assert ended["state"] == "succeeded" and ended["attempt"] == 3 and ended["error"] == ""
    assert client.result("flaky", task_id) == 3
    starts = [float(line) for line in counter.read_text().split()]
    assert len(starts) == 3
    # retry_backoff 0.2 s: 0.2 s before attempt 2, 0.4 s before attempt 3.
    assert starts[1] - starts[0] >= 0.2 and starts[2] - starts[1] >= 0.4


def test_the_final_error_of_a_task_says_how_many_attempts_it_made(serve, tmp_path):
    app = serve()
    client = tasks(app.url)
    counter = tmp_path / "attempts"
    task_id = client.start("flaky", counter=str(counter), failures=9)
    ended = client.wait_done("flaky", task_id)
    assert ended["state"] == "failed" and ended["attempt"] == 3
    assert ended["error"] == "ValueError: attempt 3 fails on purpose (after 3 attempts)"
    assert len(counter.read_text().split()) == 3


def test_a_task_waiting_for_its_retry_is_queued_says_why_and_can_be_cancelled(serve, tmp_path):
    app = serve()
    client = tasks(app.url)
    counter = tmp_path / "attempts"
    task_id = client.start("retryLater", counter=str(counter))
    waiting = wait_until(lambda: (p := client.progress("retryLater", task_id))["attempt"] == 2 and p,
                         message="the task to wait for its retry")
    assert waiting["state"] == "queued" and waiting["done"] is False and waiting["progress"] == 0.0
    assert waiting["error"] == ("attempt 1 of 2 failed, next in 60 s: "
                                "ValueError: attempt 1 fails on purpose")
    assert client.fault("retryLater", "result", task_id).detail == "ResultNotReady"

    cancelled = client.ask("retryLater", "cancel", task_id)
    assert cancelled["state"] == "cancelled" and cancelled["attempt"] == 2
    assert len(counter.read_text().split()) == 1


# -- dismiss and expiry ------------------------------------------------------------------


def test_a_dismissed_task_is_forgotten_and_says_so(serve):
    app = serve()
    for name in CHECKED:
        client = tasks(app.url, name)
        with over(client.proto):
            task_id = client.start("quick", text="bye")
            ended = client.wait_done("quick", task_id)
            answer = client.ask("quick", "dismiss", task_id)
            assert answer == ended | {"silent_for": 0.0}
            for suffix in ("progress", "result", "cancel", "dismiss"):
                fault = client.fault("quick", suffix, task_id)
                assert (fault.code, fault.detail) == ("client", "TaskDismissed"), suffix


def test_dismissing_a_running_task_cancels_it_and_frees_its_worker(serve, tmp_path):
    app = serve(size=1)
    client = tasks(app.url)
    task_id = client.start("spin", marker=str(tmp_path / "m"), seconds=60.0)
    marked_pid(tmp_path / "m")
    answer = client.ask("spin", "dismiss", task_id)
    assert answer["state"] == "running" and answer["cancel_requested"] is True
    assert client.fault("spin", "progress", task_id).detail == "TaskDismissed"
    later = client.start("quick", text="next")  # runs only once the dismissed task stopped
    assert client.wait_done("quick", later)["state"] == "succeeded"
    assert client.fault("spin", "progress", task_id).detail == "TaskDismissed"


def test_an_expired_task_is_told_apart_from_one_never_seen(serve):
    app = serve(result_ttl=1)
    client = tasks(app.url)
    task_id = client.start("quick", text="short-lived")
    client.wait_done("quick", task_id)
    wait_until(lambda: gone_as(client, "quick", task_id) == "TaskExpired", timeout=15,
               message="the record to expire")
    fault = client.fault("quick", "result", task_id)
    assert fault.detail == "TaskExpired" and "expired" in fault.string
    assert client.fault("quick", "cancel", task_id).detail == "TaskExpired"
    assert client.fault("quick", "progress", "B" * 22).detail == "TaskNotFound"


def gone_as(client: Tasks, method: str, task_id: str) -> str:
    """The fault detail ``_progress`` answers, or "" while the task is still there."""
    try:
        client.progress(method, task_id)
    except Fault as fault:
        return fault.detail
    return ""
