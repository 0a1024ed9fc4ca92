"""Multiprocessing mode when things break: killed workers, Redis away or restarted,
results JSON cannot hold, logs from workers, and progress written in a tight loop.

Everything runs for real: a TaskWSGIApplication on a live HTTP server, a forkserver
pool of two workers, and the session's redis-server.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
from conftest import make_app
from helpers import fault_detail, jsonwsp, jsonwsp_result, wait_until

SERVICE = "FaultService"
TASK_KEYS = "ladon_tasks:task:*"
DONE_STATES = {"succeeded", "failed", "lost"}


class Client:
    """JSON-WSP calls to FaultService on one live server."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url

    def call(self, method: str, **args: Any) -> dict:
        return jsonwsp(self.base, SERVICE, method, **args)

    def start(self, method: str, **args: Any) -> str:
        return jsonwsp_result(self.base, SERVICE, method, **args)["task_id"]

    def progress(self, method: str, task_id: str) -> dict:
        return jsonwsp_result(self.base, SERVICE, f"{method}_progress", task_id=task_id)

    def result(self, method: str, task_id: str) -> dict:
        return self.call(f"{method}_result", task_id=task_id)

    def wait_done(self, method: str, task_id: str, timeout: float = 30) -> dict:
        return wait_until(lambda: (p := self.progress(method, task_id))["done"] and p,
                          timeout=timeout, message=f"{method} task {task_id} to end")


@pytest.fixture
def process_app(redis_url: str, live_server: Callable) -> Iterator[tuple[Any, Client]]:
    app = make_app(["fault_service"], mode="process", redis_url=redis_url, processes=2,
                   heartbeat_interval=0.2, lost_after=1.0, progress_interval=0.05)
    server = live_server(app)
    yield app, Client(server.url)
    app.close(grace_period=1)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def read_pid(path: Path) -> int:
    return int(path.read_text())


# -- (a) a worker killed while it runs a task ----------------------------------------------


def test_killed_worker_task_is_lost_and_the_pool_recovers(process_app, tmp_path):
    app, client = process_app
    victim_pid, victim_gate = tmp_path / "victim.pid", tmp_path / "victim.gate"
    sibling_pid, sibling_gate = tmp_path / "sibling.pid", tmp_path / "sibling.gate"
    victim = client.start("holdUntil", pid_path=str(victim_pid), gate_path=str(victim_gate), timeout=60.0)
    sibling = client.start("holdUntil", pid_path=str(sibling_pid), gate_path=str(sibling_gate),
                           timeout=60.0)
    try:
        wait_until(lambda: victim_pid.exists() and sibling_pid.exists(), message="both tasks to run")
        killed = read_pid(victim_pid)
        assert killed != read_pid(sibling_pid)  # one task per worker
        assert killed != os.getpid()
        assert client.progress("holdUntil", victim)["state"] == "running"

        os.kill(killed, signal.SIGKILL)

        lost = wait_until(lambda: (p := client.progress("holdUntil", victim))["state"] == "lost" and p,
                          timeout=20, message="the killed worker's task to read lost")
        assert lost["done"] is True
        # The server sees its worker die at once: no waiting for heartbeats to go stale.
        assert lost["error"] == f"TaskLost: its worker process {killed} died (killed by signal 9)"
        assert lost["endtime"] >= lost["starttime"] > 0
        answer = client.result("holdUntil", victim)
        assert fault_detail(answer) == "TaskLost"
        assert f"worker process {killed} died" in answer["fault"]["string"]

        # The sibling in the other worker was not disturbed.
        assert client.progress("holdUntil", sibling)["state"] == "running"
    finally:
        sibling_gate.touch()
    done = client.wait_done("holdUntil", sibling)
    assert done["state"] == "succeeded", done
    assert jsonwsp_result(client.base, SERVICE, "holdUntil_result", task_id=sibling) == read_pid(sibling_pid)

    # The pool replaced the dead worker: two tasks at once still run in two live workers.
    pids = []
    for name in ("after1", "after2"):
        pid_path, gate = tmp_path / f"{name}.pid", tmp_path / f"{name}.gate"
        pids.append((client.start("holdUntil", pid_path=str(pid_path), gate_path=str(gate), timeout=60.0),
                     pid_path, gate))
    try:
        wait_until(lambda: all(p.exists() for _, p, _ in pids), timeout=30,
                   message="two new tasks to run at once")
        new_pids = {read_pid(p) for _, p, _ in pids}
        assert len(new_pids) == 2 and killed not in new_pids
    finally:
        for _, _, gate in pids:
            gate.touch()
    for task_id, _, _ in pids:
        assert client.wait_done("holdUntil", task_id)["state"] == "succeeded"
    # The lost verdict stays.
    assert client.progress("holdUntil", victim)["state"] == "lost"


# -- (b) Redis unreachable when a task is started ------------------------------------------


def test_redis_down_at_start_gives_a_fault_and_recovers(process_app, redis_server, redis_client):
    app, client = process_app
    before = client.start("busy", seconds=0.05)
    assert client.wait_done("busy", before)["state"] == "succeeded"
    # Once this process hears of dismissals it keeps an ended task's copy until result_ttl
    # (a copy made before that lasts a second): wait for such a copy.
    store = app.engine.store()
    wait_until(lambda: store._dismissals.live and client.progress("busy", before)
               and (entry := store.ended.entry(before)) is not None and entry[2] > time.time() + 60,
               message="a lasting copy of the ended task")
    before_result = client.call("busy_result", task_id=before)["result"]
    assert list(redis_client.scan_iter(match=TASK_KEYS)) == [f"ladon_tasks:task:{before}"]

    redis_server.stop(save=True)
    try:
        answer = client.call("busy", seconds=0.05)
        assert fault_detail(answer) == "StoreUnavailable"
        assert answer["fault"]["code"] == "server"
        assert "Traceback" not in answer["fault"]["string"]
        # Plain methods do not need Redis.
        assert jsonwsp_result(client.base, SERVICE, "add", a=2, b=3) == 5
        # A task this process has seen succeed is answered from its own copy (it cannot
        # change any more); any other task's state is not pretended: the store is away.
        assert client.call("busy_progress", task_id=before)["result"]["state"] == "succeeded"
        assert client.call("busy_result", task_id=before)["result"] == before_result
        never_seen = "A" * 22
        assert fault_detail(client.call("busy_progress", task_id=never_seen)) == "StoreUnavailable"
        assert fault_detail(client.call("busy_result", task_id=never_seen)) == "StoreUnavailable"
    finally:
        redis_server.start()

    # Nothing half-written: only the task started before the outage is in Redis.
    keys = list(redis_client.scan_iter(match=TASK_KEYS))
    assert keys == [f"ladon_tasks:task:{before}"]
    assert client.progress("busy", before)["state"] == "succeeded"

    # New tasks work without restarting the application.
    after = client.start("busy", seconds=0.05)
    done = client.wait_done("busy", after)
    assert done["state"] == "succeeded", done
    assert isinstance(jsonwsp_result(client.base, SERVICE, "busy_result", task_id=after), int)
    assert sorted(redis_client.scan_iter(match=TASK_KEYS)) == sorted(
        [f"ladon_tasks:task:{before}", f"ladon_tasks:task:{after}"])


# -- (c) Redis restarted under load --------------------------------------------------------


def test_redis_restart_under_load(process_app, redis_server, collect_logs):
    app, client = process_app
    ids = [client.start("busy", seconds=1.5) for _ in range(4)]
    wait_until(lambda: sum(client.progress("busy", t)["state"] == "running" for t in ids) == 2,
               message="two tasks running, two queued")
    warnings = collect_logs("ladon_tasks")

    def workers_saw_the_outage() -> bool:
        return any(r.process != os.getpid() and r.levelno >= logging.WARNING for r in list(warnings.records))

    redis_server.stop(save=True)
    try:
        # The running tasks keep running while their worker cannot write; wait until a
        # worker has noticed, so that the outage really happened under load.
        wait_until(workers_saw_the_outage, timeout=20, message="a worker to log the outage")
    finally:
        redis_server.start()

    # Nothing is lost to the restart: every task ends with its real outcome and result.
    for task_id in ids:
        final = client.wait_done("busy", task_id, timeout=60)
        assert (final["state"], final["attempt"], final["progress"]) == ("succeeded", 1, 1.0), final
        assert isinstance(jsonwsp_result(client.base, SERVICE, "busy_result", task_id=task_id), int)
    # New tasks work after the restart.
    after = client.start("busy", seconds=0.05)
    assert client.wait_done("busy", after)["state"] == "succeeded"


# -- (d) a result JSON cannot hold ----------------------------------------------------------


@pytest.mark.parametrize("method", ["notANumber", "infinity"])
def test_result_json_cannot_hold_fails_the_task(process_app, method):
    app, client = process_app
    task_id = client.start(method)
    final = client.wait_done(method, task_id)
    assert final["state"] == "failed", final
    assert "ResultNotStorable" in final["error"]
    answer = client.result(method, task_id)
    assert fault_detail(answer) == "TaskFailed"
    assert "ResultNotStorable" in answer["fault"]["string"]


# -- (e) logs from workers -----------------------------------------------------------------


def test_worker_logs_reach_the_server_tagged_with_the_task(process_app, collect_logs):
    app, client = process_app
    received = collect_logs("fault_service")
    task_id = client.start("logSomething", message="hello from the worker 100%")

    def tagged() -> logging.LogRecord | None:
        for record in list(received.records):
            if task_id in record.getMessage():
                return record
        return None

    record = wait_until(tagged, timeout=20, message="the worker's record in the server")
    assert "hello from the worker 100%" in record.getMessage()
    assert record.task_id == task_id
    assert record.levelno == logging.WARNING
    assert record.name == "fault_service"
    assert client.wait_done("logSomething", task_id)["state"] == "succeeded"
    worker_pid = jsonwsp_result(client.base, SERVICE, "logSomething_result", task_id=task_id)
    assert record.process == worker_pid != os.getpid()


# -- (f) progress in a tight loop -----------------------------------------------------------


def _script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def test_tight_progress_loop_is_coalesced(process_app, redis_client):
    app, client = process_app
    warm = client.start("busy", seconds=0.05)  # pool up, scripts loaded
    client.wait_done("busy", warm)

    calls = 200_000
    before = _script_calls(redis_client)
    task_id = client.start("spin", calls=calls, top=0.5)
    seen = []

    def finished() -> bool:
        progress = client.progress("spin", task_id)
        seen.append(progress)
        return progress["done"]

    wait_until(finished, timeout=60, interval=0.005, message="the spinning task to end")
    writes = _script_calls(redis_client) - before

    final = seen[-1]
    assert final["state"] == "succeeded", final
    # Progress 1.0 is there at the very read that first sees the success.
    assert final["progress"] == 1.0
    for progress in seen[:-1]:
        assert progress["state"] in ("queued", "running")
        assert progress["progress"] <= 0.5
    assert jsonwsp_result(client.base, SERVICE, "spin_result", task_id=task_id) == calls
    # mark running + coalesced progress writes + heartbeats + finish: nowhere near one per call.
    assert 2 <= writes < calls / 1000, writes
