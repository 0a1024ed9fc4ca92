"""Progress that talks: messages, eta / expected_duration / poll_after, and ``<m>_wait``,
over SOAP 1.1, JSON-WSP and JSON-RPC, in thread, process and celery mode."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any, Callable

import pytest
from conftest import SERVICES_DIR, ServeProcess, make_app
from helpers import wait_until
from test_lifecycle import CHECKED, SERVICE, Tasks, marked_pid, plain, tasks
from test_protocols import over

from ladon_tasks.client import TaskClient


def wait_call(client: Tasks, method: str, task_id: str, timeout: float) -> dict:
    """``<method>_wait(task_id, timeout)`` over the client's protocol."""
    return plain(dict(client.proto.call(SERVICE, f"{method}_wait", task_id=task_id, timeout=timeout)))


def waiting(app: Any) -> bool:
    """True once a ``_wait`` request of ``app`` holds one of its waiting places."""
    places = app.engine._waiters
    return places is not None and places._value < app.engine.max_waiters


@pytest.mark.parametrize("protocol", CHECKED)
def test_a_task_says_what_it_does_and_when_it_should_end(serve, protocol):
    app = serve()
    client = tasks(app.url, protocol)
    with over(client.proto):
        task_id = client.start("talker", steps=20, pause=0.05)
        talking = wait_until(lambda: (p := client.progress("talker", task_id))["message"] and p,
                             message="the task's first message")
        assert talking["message"].startswith("step ") and talking["message"].endswith(" of 20")
        if not talking["done"]:
            assert talking["eta"] >= 0 and 0 < talking["poll_after"] <= 10
        ended = client.wait_done("talker", task_id)
        assert ended["message"] == "step 20 of 20"  # the last message outlives the task
        assert ended["eta"] == 0.0 and ended["poll_after"] > 0
        first_duration = ended["duration"]

        # Its history now says how long the method takes: every process reads the same.
        again = client.start("talker", steps=20, pause=0.05)
        queued_or_running = client.progress("talker", again)
        assert queued_or_running["expected_duration"] == pytest.approx(first_duration, abs=0.05)
        assert client.wait_done("talker", again)["state"] == "succeeded"


def test_a_long_message_is_cut_to_500_characters(serve):
    app = serve()
    client = tasks(app.url)
    task_id = client.start("chatter", text="x" * 2000)
    ended = client.wait_done("chatter", task_id)
    assert len(ended["message"]) == 500 and ended["message"].endswith("\u2026")


@pytest.mark.parametrize("protocol", CHECKED)
def test_wait_answers_at_the_end_or_at_its_timeout_and_faults_like_progress(serve, tmp_path, protocol):
    app = serve(max_wait=1.0)
    client = tasks(app.url, protocol)
    with over(client.proto):
        quick = client.start("quick", text="soon")
        ended = wait_call(client, "quick", quick, 20)
        assert ended["done"] is True and ended["state"] == "succeeded"

        spinning = client.start("spin", marker=str(tmp_path / "m"), seconds=60.0)
        marked_pid(tmp_path / "m")
        assert wait_call(client, "spin", spinning, 0.2)["state"] == "running"
        capped = wait_call(client, "spin", spinning, 600)  # max_wait: 1 s
        assert capped["state"] == "running" and capped["poll_after"] > 0
        client.ask("spin", "cancel", spinning)
        assert wait_call(client, "spin", spinning, 1)["state"] in ("running", "cancelled")
        assert client.wait_done("spin", spinning)["state"] == "cancelled"

        for task_id, detail in (("A" * 22, "TaskNotFound"), ("not-an-id", "InvalidTaskId")):
            fault = client.proto.fault(SERVICE, "quick_wait", task_id=task_id, timeout=1)
            assert (fault.code, fault.detail) == ("client", detail)


def test_a_wait_is_woken_by_the_end_itself_not_by_reading_again(serve, mode, tmp_path):
    app = serve(max_wait=300.0)
    store = app.engine.store()
    store.wake_interval = lambda: 3600.0  # no safety-net reads: only the end's signal wakes it
    client = tasks(app.url)
    task_id = client.start("talker", steps=5, pause=0.2)
    answer = wait_call(client, "talker", task_id, 120)
    assert answer["done"] is True and answer["state"] == "succeeded"


def test_waiters_beyond_max_waiters_are_answered_at_once(serve, tmp_path):
    app = serve(max_waiters=1, max_wait=60.0)
    client = tasks(app.url)
    task_id = client.start("spin", marker=str(tmp_path / "m"), seconds=60.0)
    marked_pid(tmp_path / "m")
    first: dict = {}
    waiter = threading.Thread(target=lambda: first.update(wait_call(client, "spin", task_id, 50)))
    waiter.start()
    wait_until(lambda: app.engine.max_waiters == 1 and app.engine._waiters._value == 0,
               message="the first wait to take the only place")
    second = wait_call(client, "spin", task_id, 50)  # no place left: answered now
    assert second["state"] == "running" and second["poll_after"] > 0 and waiter.is_alive()
    client.ask("spin", "cancel", task_id)
    waiter.join(timeout=30)
    assert first["state"] == "cancelled"


def test_a_task_dismissed_while_waited_for_answers_task_dismissed(serve, tmp_path):
    app = serve(max_wait=60.0)
    client = tasks(app.url)
    task_id = client.start("spin", marker=str(tmp_path / "m"), seconds=60.0)
    marked_pid(tmp_path / "m")
    faults: list = []

    def wait_for_fault() -> None:
        faults.append(client.proto.fault(SERVICE, "spin_wait", task_id=task_id, timeout=50))

    waiter = threading.Thread(target=wait_for_fault)
    waiter.start()
    wait_until(lambda: waiting(app), message="the wait to begin")
    client.ask("spin", "dismiss", task_id)
    waiter.join(timeout=30)
    assert faults and faults[0].detail == "TaskDismissed"


# -- the client and the command line -----------------------------------------------------


class Recording:
    """A WSGI middleware that notes the JSON-WSP method of every call."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.methods: list[str] = []

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if body:
            self.methods.append(json.loads(body).get("methodname", ""))
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


def test_the_client_waits_with_wait_where_the_service_has_it(live_server):
    recording = Recording(make_app(["lifecycle_service"], progress_interval=0.05))
    client = TaskClient(live_server(recording).url + f"/{SERVICE}")
    task_id = client.start("talker", 10, 0.1)
    assert client.join("talker", task_id) == 10
    assert "talker_wait" in recording.methods and "talker_progress" not in recording.methods


def test_the_client_follows_poll_after_without_wait(live_server, monkeypatch):
    recording = Recording(make_app(["lifecycle_service"], progress_interval=0.05))
    client = TaskClient(live_server(recording).url + f"/{SERVICE}")
    monkeypatch.setattr(client._backend, "has_method", lambda name: False)  # an older service
    seen: list = []
    task_id = client.start("talker", 10, 0.1)
    progress = client.wait("talker", task_id, progress_callback=seen.append)
    assert progress.done and progress.message == "step 10 of 10"
    assert "talker_wait" not in recording.methods
    running = [p for p in seen if not p.done]
    assert all(p.poll_after > 0 for p in seen)
    # It paused as told (at least MIN_POLL) rather than polling at its own 0.1 s pace.
    assert len(running) <= 1 + 10 * 0.1 / 0.2


def test_call_shows_the_message_and_the_eta(tmp_path):
    server = ServeProcess(["lifecycle_service"], tmp_path / "serve.log")
    try:
        server.wait_answering()
        done = subprocess.run(
            [str(ServeProcess.LADON_TASKS), "call", f"{server.url}/{SERVICE}", "talker", "steps=8",
             "pause=0.4"], capture_output=True, text=True, timeout=120, cwd=SERVICES_DIR)
    finally:
        server.kill()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "8"
    lines = done.stderr.splitlines()
    assert any("step " in line and " of 8" in line for line in lines), lines
    assert any("ETA " in line for line in lines if "running" in line), lines


def test_a_stopping_server_answers_its_waiting_requests_at_once(live_server, tmp_path):
    app = make_app(["lifecycle_service"], progress_interval=0.05, max_wait=60.0)
    client = tasks(live_server(app).url)
    task_id = client.start("spin", marker=str(tmp_path / "m"), seconds=30.0)
    marked_pid(tmp_path / "m")
    answers: list = []
    waiter = threading.Thread(target=lambda: answers.append(wait_call(client, "spin", task_id, 50)))
    waiter.start()
    wait_until(lambda: waiting(app), message="the wait to begin")
    stopping = threading.Thread(target=app.close, kwargs={"grace_period": 10})
    stopping.start()
    waiter.join(timeout=20)  # well before its 50 s: the stop woke it
    assert answers and answers[0]["state"] in ("running", "cancelled", "lost")
    stopping.join(timeout=30)
