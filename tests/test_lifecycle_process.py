"""Process-mode lifecycle across servers and through worker deaths: control from a second
server sharing Redis, a worker killed during a cancel, a retry after a SIGKILL."""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

import pytest
from conftest import make_app
from helpers import wait_until
from test_lifecycle import CHECKED, alive, gone_as, marked_pid, tasks
from test_protocols import over


@pytest.fixture
def two_servers(redis_url: str, live_server: Callable) -> Callable[..., tuple[Any, Any]]:
    """``two_servers(**options)``: two applications with their own worker pools on one Redis."""

    def start(**options: Any) -> tuple[Any, Any]:
        apps = []
        for _ in range(2):
            app = make_app(["lifecycle_service"], mode="process", redis_url=redis_url, processes=2,
                           progress_interval=0.05, **options)
            app.url = live_server(app).url
            apps.append(app)
        return apps[0], apps[1]

    return start


@pytest.fixture
def one_server(redis_url: str, live_server: Callable) -> Callable[..., Any]:
    def start(**options: Any) -> Any:
        app = make_app(["lifecycle_service"], mode="process", redis_url=redis_url, processes=2,
                       progress_interval=0.05, **options)
        app.url = live_server(app).url
        return app

    return start


def test_a_task_is_cancelled_and_dismissed_from_a_second_server(two_servers, tmp_path):
    first, second = two_servers()
    for name in CHECKED:
        here, there = tasks(first.url, name), tasks(second.url, name)
        with over(here.proto):
            marker = tmp_path / f"{name}.pid"
            task_id = here.start("spin", marker=str(marker), seconds=60.0)
            pid = marked_pid(marker)
            assert pid in first.engine.executor().worker_pids()  # it runs on the first server

            assert there.ask("spin", "cancel", task_id)["cancel_requested"] is True
            ended = here.wait_done("spin", task_id, timeout=15)
            assert ended["state"] == "cancelled"
            assert ended["error"] == "TaskCancelled: cancelled while running"
            assert there.progress("spin", task_id) == ended | {"silent_for": 0.0}

            there.ask("spin", "dismiss", task_id)
            # The first server answered the ended task from its own copy until now; it
            # asks Redis again within a second and sees the dismissal.
            wait_until(lambda h=here, t=task_id: gone_as(h, "spin", t) == "TaskDismissed", timeout=10,
                       message="the first server to see the dismissal")


def test_a_stuck_task_cancelled_from_a_second_server_has_its_worker_killed(two_servers, tmp_path):
    first, second = two_servers(cancel_grace=0.5)
    here, there = tasks(first.url), tasks(second.url)
    task_id = here.start("sleeper", marker=str(tmp_path / "m"), seconds=60.0)
    pid = marked_pid(tmp_path / "m")
    there.ask("sleeper", "cancel", task_id)
    ended = there.wait_done("sleeper", task_id, timeout=15)
    assert ended["state"] == "cancelled" and "ended by force" in ended["error"]
    wait_until(lambda: not alive(pid), timeout=10, message="the stuck worker to be killed")
    executor = first.engine.executor()
    wait_until(lambda: len(executor.worker_pids()) == 2, message="the first server to replace it")


def test_a_worker_killed_during_a_cancel_ends_its_task_cancelled(one_server, tmp_path):
    app = one_server(cancel_grace=60)
    client = tasks(app.url)
    task_id = client.start("sleeper", marker=str(tmp_path / "m"), seconds=60.0)
    pid = marked_pid(tmp_path / "m")
    assert client.ask("sleeper", "cancel", task_id)["cancel_requested"] is True

    os.kill(pid, signal.SIGKILL)  # by an operator, the OOM killer... before the task could stop

    ended = client.wait_done("sleeper", task_id, timeout=15)
    assert ended["state"] == "cancelled", ended  # what was asked for: not lost, not retried
    assert ended["error"].startswith("TaskCancelled: cancelled while running")


def test_a_task_whose_worker_was_killed_runs_again_while_it_has_retries(one_server, tmp_path):
    app = one_server()
    client = tasks(app.url)
    counter, marker = tmp_path / "attempts", tmp_path / "m"
    task_id = client.start("dieOnce", counter=str(counter), marker=str(marker), seconds=60.0)
    pid = marked_pid(marker)

    os.kill(pid, signal.SIGKILL)

    ended = client.wait_done("dieOnce", task_id, timeout=30)
    assert ended["state"] == "succeeded" and ended["attempt"] == 2, ended
    assert client.result("dieOnce", task_id) == 2
    assert len(counter.read_text().split()) == 2
    wait_until(lambda: len(app.engine.executor().worker_pids()) == 2 and
               pid not in app.engine.executor().worker_pids(), message="a replacement worker")


def test_a_killed_worker_without_retries_left_ends_its_task_lost_at_once(one_server, tmp_path):
    app = one_server(lost_after=600, heartbeat_interval=1)  # heartbeats cannot be what tells
    client = tasks(app.url)
    task_id = client.start("spin", marker=str(tmp_path / "m"), seconds=60.0)
    pid = marked_pid(tmp_path / "m")
    os.kill(pid, signal.SIGKILL)
    ended = client.wait_done("spin", task_id, timeout=15)
    assert ended["state"] == "lost"
    assert ended["error"] == f"TaskLost: its worker process {pid} died (killed by signal 9)"
    assert client.fault("spin", "result", task_id).detail == "TaskLost"
