"""Process mode through Redis outages: restarts that keep the data (AOF), restarts that
lose it, and the deaths that must still be found: a stopped worker, a killed server.

Everything is real: a redis-server of this module's own with an append-only file (so a
restart keeps every write), a TaskWSGIApplication on a live HTTP server with a forkserver
pool, and, for the killed server, ``ladon-tasks serve`` in its own process group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
from conftest import RedisServer, ServeProcess, make_app
from helpers import fault_detail, jsonwsp, jsonwsp_result, wait_until

from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskState

SERVICE = "OutageService"
pytestmark = pytest.mark.timeout(240)


class Client:
    """JSON-WSP calls to OutageService; ``gates`` is the directory of its gate files."""

    def __init__(self, base_url: str, gates: Path) -> None:
        self.base = base_url
        self.gates = gates

    def call(self, method: str, **args: Any) -> dict:
        return jsonwsp(self.base, SERVICE, method, **args)

    def hold(self, name: str, timeout: float = 120.0) -> str:
        return jsonwsp_result(self.base, SERVICE, "hold", name=name, gate_dir=str(self.gates),
                              timeout=timeout)["task_id"]

    def started(self, name: str) -> bool:
        return (self.gates / f"{name}.started").exists()

    def release(self, name: str) -> None:
        (self.gates / f"{name}.go").touch()

    def progress(self, task_id: str, method: str = "hold") -> dict:
        return jsonwsp_result(self.base, SERVICE, f"{method}_progress", task_id=task_id)

    def result(self, task_id: str, method: str = "hold") -> Any:
        return jsonwsp_result(self.base, SERVICE, f"{method}_result", task_id=task_id)

    def wait_done(self, task_id: str, method: str = "hold", timeout: float = 60) -> dict:
        return wait_until(lambda: (p := self.progress(task_id, method))["done"] and p,
                          timeout=timeout, message=f"task {task_id} to end")


@pytest.fixture(scope="module")
def aof_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("aof-redis"), "--appendonly", "yes",
                         "--appendfsync", "always")
    server.start()
    yield server
    server.stop(save=False)


@pytest.fixture
def outage_redis(aof_redis: RedisServer) -> RedisServer:
    """The module's AOF redis-server, running and empty."""
    if aof_redis.process is None:
        aof_redis.start()
    redis.Redis.from_url(aof_redis.url).flushdb()
    return aof_redis


@pytest.fixture
def serve(outage_redis: RedisServer, live_server: Callable,
          tmp_path: Path) -> Iterator[Callable[..., Client]]:
    """``serve(**options)``: OutageService in process mode on a live server."""
    apps: list[Any] = []

    def start(**options: Any) -> Client:
        options = {"processes": 2, "heartbeat_interval": 0.2, "lost_after": 1.0,
                   "progress_interval": 0.05, **options}
        app = make_app(["outage_service"], mode="process", redis_url=outage_redis.url, **options)
        apps.append(app)
        client = Client(live_server(app).url, tmp_path)
        client.app = app  # type: ignore[attr-defined]
        return client

    yield start


@pytest.fixture
def reader(outage_redis: RedisServer) -> Iterator[Callable[..., RedisStore]]:
    """``reader(lost_after=...)``: a store of its own, as another server process reads."""
    stores: list[RedisStore] = []

    def make(**options: Any) -> RedisStore:
        store = RedisStore(outage_redis.url, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@contextlib.contextmanager
def outage(server: RedisServer, seconds: float, *, keep_data: bool = True) -> Iterator[None]:
    """Redis away for at least ``seconds`` (from its stop); with ``keep_data=False`` it
    comes back empty, as after a restart that lost its disk."""
    server.stop(save=True)
    began = time.monotonic()
    try:
        yield
    finally:
        remaining = seconds - (time.monotonic() - began)
        if remaining > 0:
            time.sleep(remaining)  # the outage itself, not a wait for a result
        if not keep_data:
            server.wipe()
        server.start()


def states_until_done(store: RedisStore, task_ids: list[str], timeout: float = 90) -> dict[str, set[str]]:
    """Every state ``store`` reads for each task, polled until all have ended."""
    seen: dict[str, set[str]] = {task_id: set() for task_id in task_ids}

    def all_done() -> bool:
        for task_id in task_ids:
            record = store.get(task_id)
            seen[task_id].add("missing" if record is None else record.state.value)
        return all(states & {"succeeded", "failed", "lost", "cancelled"} for states in seen.values())

    wait_until(all_done, timeout=timeout, interval=0.05, message="every task to end")
    return seen


def worker_logged(records: list[logging.LogRecord], text: str) -> bool:
    return any(r.process != os.getpid() and text in r.getMessage() for r in list(records))


# -- Redis restarted with its data ----------------------------------------------------------


def test_a_task_ending_during_a_short_outage_keeps_its_result(serve, outage_redis, reader, collect_logs):
    client = serve()
    logs = collect_logs("ladon_tasks")
    ending, spanning = client.hold("ending"), client.hold("spanning")
    wait_until(lambda: client.started("ending") and client.started("spanning"), message="both running")
    with outage(outage_redis, 3.0):
        client.release("ending")
        wait_until(lambda: worker_logged(logs.records, f"task {ending}: cannot"), timeout=20,
                   message="the worker to find Redis away as the task ends")
    # Read from another process's point of view at once: nothing is ever lost.
    other = reader(lost_after=1.0)
    client.release("spanning")
    seen = states_until_done(other, [ending, spanning])
    assert all("lost" not in states for states in seen.values()), seen
    for task_id, name in ((ending, "ending"), (spanning, "spanning")):
        final = client.wait_done(task_id)
        assert (final["state"], final["attempt"], final["error"]) == ("succeeded", 1, ""), final
        assert client.result(task_id) == f"done:{name}"


def test_an_outage_longer_than_lost_after_loses_no_task(serve, outage_redis, reader):
    # Default heartbeats and lost_after (1 s, 10 s); Redis away for 15 s.
    client = serve(heartbeat_interval=1.0, lost_after=10.0)
    ending, spanning = client.hold("ending"), client.hold("spanning")
    wait_until(lambda: client.started("ending") and client.started("spanning"), message="both running")
    queued = []
    for name in ("q1", "q2", "q3"):
        client.release(name)  # they return as soon as they get a worker
        queued.append((client.hold(name), name))
    assert {client.progress(t)["state"] for t, _ in queued} == {"queued"}
    with outage(outage_redis, 15.0):
        client.release("ending")
    other = reader(lost_after=10.0)
    ids = [ending, spanning, *(t for t, _ in queued)]
    wait_until(lambda: other.get(ending).state is TaskState.SUCCEEDED, timeout=30,
               message="the end written during the outage to be recorded")
    assert other.get(spanning).state is TaskState.RUNNING
    client.release("spanning")
    seen = states_until_done(other, ids)
    assert all("lost" not in states and "missing" not in states for states in seen.values()), seen
    for task_id, name in [(ending, "ending"), (spanning, "spanning"), *queued]:
        final = client.wait_done(task_id)
        assert (final["state"], final["attempt"]) == ("succeeded", 1), final
        assert client.result(task_id) == f"done:{name}"


@pytest.mark.parametrize("retries", [0, 2])
def test_an_end_given_up_after_store_retry_for_is_recorded_lost_when_redis_is_back(serve, outage_redis,
                                                                                 collect_logs, retries):
    # With retries left too: the task ran to its end, so it is recorded lost, not run again.
    client = serve(store_retry_for=1.0, retries=retries)
    logs = collect_logs("ladon_tasks")
    task_id = client.hold("ending")
    wait_until(lambda: client.started("ending"), message="the task to run")
    with outage(outage_redis, 3.0):
        client.release("ending")
        wait_until(lambda: worker_logged(logs.records, f"task {task_id}: gave up"), timeout=20,
                   message="the worker to give up after store_retry_for")
    final = client.wait_done(task_id, timeout=30)
    assert (final["state"], final["attempt"]) == ("lost", 1), final
    assert final["error"].startswith("TaskLost: its end (succeeded) could not be recorded"), final
    assert fault_detail(client.call("hold_result", task_id=task_id)) == "TaskLost"


# -- Redis restarted without its data -------------------------------------------------------


def test_a_restart_that_loses_the_data_gives_clear_faults_and_no_task_stuck_running(serve, outage_redis,
                                                                                  reader):
    client = serve(processes=1)
    finished = jsonwsp_result(client.base, SERVICE, "square", n=7)["task_id"]
    assert client.wait_done(finished, "square")["state"] == "succeeded"
    running = client.hold("running")
    wait_until(lambda: client.started("running"), message="the task to run")
    client.release("waiting")
    waiting = client.hold("waiting")
    with outage(outage_redis, 1.0, keep_data=False):
        pass
    # The server writes again what it holds: the running task and the queued one.
    other = reader(lost_after=1.0)
    wait_until(lambda: other.get(running) is not None and other.get(waiting) is not None, timeout=20,
               message="the server to write its tasks again")
    assert other.get(running).state is TaskState.RUNNING
    assert other.get(waiting).state is TaskState.QUEUED
    # A task that had ended is gone with the data: a clear client fault, no traceback (the
    # server drops its own copies of ended tasks once it listens to Redis again).
    answer = wait_until(lambda: (a := client.call("square_progress", task_id=finished))
                        .get("type") == "jsonwsp/fault" and a, timeout=10, message="a fault")
    assert fault_detail(answer) == "TaskNotFound"
    assert answer["fault"]["code"] == "client" and "Traceback" not in answer["fault"]["string"]
    client.release("running")
    seen = states_until_done(other, [running, waiting])
    assert all("lost" not in states for states in seen.values()), seen
    assert client.result(running) == "done:running"
    assert client.result(waiting) == "done:waiting"
    # New tasks work as before.
    again = jsonwsp_result(client.base, SERVICE, "square", n=9)["task_id"]
    client.wait_done(again, "square")
    assert client.result(again, "square") == 81


# -- deaths are still found -----------------------------------------------------------------


def test_a_worker_that_stops_answering_is_killed_and_its_task_lost(serve):
    client = serve(processes=1)
    task_id = client.hold("frozen")
    wait_until(lambda: client.started("frozen"), message="the task to run")
    executor = client.app.engine.executor()
    (pid,) = executor.worker_pids()
    os.kill(pid, signal.SIGSTOP)  # alive, but never beats again
    try:
        final = client.wait_done(task_id, timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert final["state"] == "lost", final
    assert f"worker process {pid} gave no sign of life" in final["error"]
    assert fault_detail(client.call("hold_result", task_id=task_id)) == "TaskLost"
    # Its slot has a new worker: the next task runs.
    wait_until(lambda: executor.worker_pids() and executor.worker_pids() != [pid],
               message="a new worker")
    client.release("next")
    after = client.hold("next")
    assert client.wait_done(after)["state"] == "succeeded"


def test_a_killed_server_has_its_tasks_found_lost(outage_redis, reader, tmp_path):
    server = ServeProcess(["outage_service"], tmp_path / "serve.log", "--mode", "process",
                          "--redis-url", outage_redis.url, "--processes", "1", new_session=True,
                          env={**os.environ, "LADON_TASKS_HEARTBEAT_INTERVAL": "0.2",
                               "LADON_TASKS_LOST_AFTER": "1"})
    try:
        server.wait_answering()
        client = Client(server.url, tmp_path)
        running = client.hold("running")
        wait_until(lambda: client.started("running"), message="the task to run")
        waiting = client.hold("waiting")
        assert client.progress(waiting)["state"] == "queued"
    finally:
        server.kill()
    other = reader(lost_after=1.0)
    def both_lost() -> list | None:
        records = [other.get(running), other.get(waiting)]
        return records if all(r is not None and r.state is TaskState.LOST for r in records) else None

    lost = wait_until(both_lost, timeout=15, message="both tasks to read lost")
    assert "server process running it stopped" in lost[0].error
    assert "stopped before it started" in lost[1].error


@pytest.mark.parametrize("mode", ["process", "celery"])
def test_a_start_whose_reply_was_lost_leaves_no_task_queued_for_ever(outage_redis, reader, monkeypatch, mode):
    # Redis wrote the new record, then went away before answering: the caller was told
    # StoreUnavailable, so the task must not stay queued with nobody to run it (in celery
    # mode no message was sent: nothing would ever run it).
    from ladon_tasks import TaskConfig, TaskEngine
    from ladon_tasks.exceptions import StoreUnavailable

    engine = TaskEngine(TaskConfig(mode=mode, redis_url=outage_redis.url, processes=1,
                                   heartbeat_interval=0.2, lost_after=1.0))
    try:
        store = engine.store()
        created: list[str] = []
        write = store.create

        def create_then_fail(record: Any, job: Any = None, unique: str | None = None) -> None:
            write(record, job, unique)
            created.append(record.task_id)
            raise StoreUnavailable("Redis went away before it answered (test)")

        monkeypatch.setattr(store, "create", create_then_fail)
        with pytest.raises(StoreUnavailable):
            engine.start("OutageService.square", {"entry": "unused:never_run", "payload": {}})
        (task_id,) = created
        other = reader()
        final = wait_until(lambda: (r := other.get(task_id)) and r.state is TaskState.LOST and r,
                           timeout=10, message="the abandoned start to be recorded lost")
        assert "the start was refused (StoreUnavailable)" in final.error
    finally:
        engine.shutdown(grace_period=1)
