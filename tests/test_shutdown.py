"""Graceful stop of real server processes: SIGTERM to ``ladon-tasks serve``, a plain
interpreter exit, and new tasks refused while an application closes.

(Apache's stop, through mod_wsgi's ``process_stopping`` event, is in test_apache.py.)
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import uuid
import weakref
from pathlib import Path
from typing import Iterator

import calc_service
import pytest
from conftest import SERVICES_DIR, ServeProcess, make_app
from helpers import jsonwsp, jsonwsp_result, wait_until

from ladon_tasks import shutdown
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskState

#: What the stopping engine writes into a task it records lost.
STOPPED = "server process stopped before the task ended"
#: A task much longer than any wait below: if it is waited for, the test fails on a deadline.
LONG_TASK = 600.0


class Serve(ServeProcess):
    """``ladon-tasks serve calc_service`` with a given grace period."""

    def __init__(self, log_dir: Path, *options: str, grace_period: float, new_session: bool = False) -> None:
        env = dict(os.environ, LADON_TASKS_GRACE_PERIOD=str(grace_period))
        log_path = log_dir / f"serve-{uuid.uuid4().hex[:8]}.log"
        super().__init__(["calc_service"], log_path, *options, env=env, new_session=new_session)
        self.wait_answering()

    def start_running(self, method: str, **args: object) -> str:
        """Start a task and wait until it runs."""
        task_id = jsonwsp_result(self.url, "CalcService", method, **args)["task_id"]
        wait_until(lambda: jsonwsp_result(self.url, "CalcService", f"{method}_progress",
                                          task_id=task_id)["progress"] > 0,
                   message=f"task {task_id} to run")
        return task_id

    def terminate_and_wait(self, deadline: float) -> int:
        """SIGTERM, then the exit status; fails if the server outlives ``deadline`` s."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server was still running {deadline} s after SIGTERM:\n{self.log()}")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    started: list[Serve] = []

    def start(*options: str, grace_period: float, new_session: bool = False) -> Serve:
        server = Serve(tmp_path, *options, grace_period=grace_period, new_session=new_session)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def test_sigterm_in_thread_mode_stops_within_the_grace_period(serve) -> None:
    server = serve(grace_period=1)
    server.start_running("sleepy", seconds=LONG_TASK)
    # One grace second, then the task is recorded lost and the process goes, however
    # long the task would still take; the deadline only leaves room for a slow machine.
    assert server.terminate_and_wait(deadline=60) == 0
    assert "recorded 1 unfinished task(s) lost" in server.log()


def test_sigterm_in_process_mode_records_the_running_task_lost(serve, redis_url: str) -> None:
    server = serve("--mode", "process", "--redis-url", redis_url, "--processes", "1", grace_period=1)
    task_id = server.start_running("sleepy", seconds=LONG_TASK)
    assert server.terminate_and_wait(deadline=60) == 0
    # Read at once: recorded by the stopping server, not found lost later by a stale heartbeat.
    record = RedisStore(redis_url).get(task_id)
    assert record is not None and record.state is TaskState.LOST, record
    assert STOPPED in record.error


def test_sigterm_to_the_whole_process_group_stops_the_server_within_its_grace(
        serve, redis_url: str) -> None:
    # What systemd's KillMode=control-group and timeout(1) do: every process of the group,
    # the server, its forkserver and its workers, gets the SIGTERM at once.
    server = serve("--mode", "process", "--redis-url", redis_url, "--processes", "2", grace_period=5,
                   new_session=True)
    running = server.start_running("sleepy", seconds=LONG_TASK)
    short = server.start_running("sleepy", seconds=1.0)
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        assert server.process.wait(timeout=60) == 0
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server was still running 60 s after SIGTERM to its group:\n{server.log()}")
    store = RedisStore(redis_url)
    record = store.get(running)
    assert record is not None and record.state is TaskState.LOST and STOPPED in record.error, record
    # The workers ignored the SIGTERM: the short task finished within the grace period.
    short_record = store.get(short)
    assert short_record is not None and short_record.state is TaskState.SUCCEEDED, short_record
    # Nothing of the group is left behind.
    wait_until(lambda: not _group_alive(server.process.pid), timeout=30,
               message="every process of the group to exit")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_of_a_killed_server_stop_and_their_task_is_found_lost(
        serve, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADON_TASKS_HEARTBEAT_INTERVAL", "0.2")
    monkeypatch.setenv("LADON_TASKS_LOST_AFTER", "1.0")
    server = serve("--mode", "process", "--redis-url", redis_url, "--processes", "1", grace_period=1)
    task_id = server.start_running("sleepy", seconds=LONG_TASK)
    server.process.kill()  # no chance to close anything: only the workers' watchdog can act
    server.process.wait(timeout=30)
    store = RedisStore(redis_url, lost_after=1.0)
    record = wait_until(lambda: (r := store.get(task_id)) is not None and r.state.done and r,
                        timeout=30, message="the orphaned task to be found lost")
    assert record.state is TaskState.LOST, record
    assert "heartbeat" in record.error


def test_sigterm_in_process_mode_lets_a_short_task_finish(serve, redis_url: str) -> None:
    server = serve("--mode", "process", "--redis-url", redis_url, "--processes", "1", grace_period=60)
    task_id = server.start_running("sleepy", seconds=2.0)
    assert server.terminate_and_wait(deadline=60) == 0
    record = RedisStore(redis_url).get(task_id)
    assert record is not None and record.state is TaskState.SUCCEEDED, record


EXITING_SCRIPT = """
import time
from werkzeug.test import Client
from ladon_tasks import TaskWSGIApplication


def call(client, method, **args):
    answer = client.post("/CalcService/jsonwsp", json={{"methodname": method, "args": args}}).get_json()
    return answer["result"]


if __name__ == "__main__":  # the worker processes import this module too
    app = TaskWSGIApplication(["calc_service"], [{services!r}], mode="process", redis_url={redis_url!r},
                              processes=1, grace_period=1)
    client = Client(app)
    task_id = call(client, "sleepy", seconds={seconds!r})["task_id"]
    deadline = time.monotonic() + 60
    while call(client, "sleepy_progress", task_id=task_id)["progress"] <= 0:
        assert time.monotonic() < deadline, "the task never ran"
        time.sleep(0.02)
    print(task_id, flush=True)
    # The script ends here, the task running and the application never closed by hand.
"""


def test_interpreter_exit_closes_the_application(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "exiting.py"
    script.write_text(EXITING_SCRIPT.format(services=SERVICES_DIR, redis_url=redis_url, seconds=LONG_TASK))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.split()[-1]
    record = RedisStore(redis_url).get(task_id)
    assert record is not None and record.state is TaskState.LOST, (record, done.stderr)
    assert STOPPED in record.error


def test_a_closing_application_refuses_new_tasks(live_server) -> None:
    app = make_app(["calc_service"], grace_period=60)
    url = live_server(app).url
    gate = f"shutdown-{uuid.uuid4().hex}"
    first = jsonwsp_result(url, "CalcService", "gated", name=gate)["task_id"]
    wait_until(lambda: jsonwsp_result(url, "CalcService", "gated_progress", task_id=first)["progress"] > 0)
    lost: list[list[str]] = []
    closing = threading.Thread(target=lambda: lost.append(app.close()))
    closing.start()
    try:
        def refused() -> dict | None:
            answer = jsonwsp(url, "CalcService", "gated", name=gate)
            return answer if answer["type"] == "jsonwsp/fault" else None

        fault = wait_until(refused, message="a start call refused")["fault"]
        assert "ShuttingDown" in fault["detail"], fault
        assert "stopping" in fault["string"], fault
        # Running tasks are still answered for during the grace period.
        progress = jsonwsp_result(url, "CalcService", "gated_progress", task_id=first)
        assert progress["state"] == TaskState.RUNNING.value
    finally:
        calc_service.GATES.setdefault(gate, threading.Event()).set()
        closing.join(timeout=60)
    assert first not in lost[0]  # it finished within the grace period
    assert jsonwsp_result(url, "CalcService", "gated_result", task_id=first) == gate


def _record_closes(app, calls: list) -> None:
    original = app.close

    def close(grace_period: float | None = None) -> list[str]:
        calls.append(grace_period)
        return original(grace_period)

    app.close = close


def test_hooks_hold_applications_weakly_and_close_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutdown, "_apps", weakref.WeakSet())  # leave other tests' applications be
    app = make_app(["calc_service"])
    assert set(shutdown._apps) == {app}
    calls: list = []
    _record_closes(app, calls)
    assert shutdown.close_all("process_stopping", shutdown_reason="maximum_requests") == []
    assert shutdown.close_all() == []
    assert calls == [None]  # once, with its own grace period
    assert app.close() == []

    gone = make_app(["calc_service"])
    reference = weakref.ref(gone)
    del gone
    gc.collect()
    assert reference() is None


def test_apache_stop_cuts_the_grace_period_to_what_apache_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutdown, "_apps", weakref.WeakSet())
    patient, quick = make_app(["calc_service"], grace_period=30), make_app(["calc_service"], grace_period=0.5)
    patient_calls: list = []
    quick_calls: list = []
    _record_closes(patient, patient_calls)
    _record_closes(quick, quick_calls)
    shutdown.close_all("process_stopping", shutdown_reason="shutdown_signal")
    assert patient_calls == [shutdown.APACHE_STOP_GRACE]
    assert quick_calls == [None]


CLOSING_SCRIPT = """
import logging
from ladon_tasks import TaskWSGIApplication

logging.basicConfig(level=logging.INFO)
apps = [TaskWSGIApplication(["calc_service"], [{services!r}]) for _ in range(3)]
"""


def test_interpreter_exit_closes_each_application_once(tmp_path: Path) -> None:
    script = tmp_path / "closing.py"
    script.write_text(CLOSING_SCRIPT.format(services=SERVICES_DIR))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("process stopping: closing") == 3, done.stderr
