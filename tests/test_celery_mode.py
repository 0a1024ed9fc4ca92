"""Celery mode with real processes only: one Redis, web servers (``ladon-tasks serve --mode
celery``), and ``ladon-tasks worker`` processes (real Celery workers, prefork pool).

The web servers hold nothing of a task: these tests stop, kill and restart them while
tasks wait and run, kill pool processes and whole workers mid-task, and read every answer
through a web server other than the one that started the task. Lifecycle behaviour
shared with the other modes (cancel, limits, retries, dismiss) is tested in celery mode
by ``test_lifecycle``.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SERVICES_DIR, CeleryWorker, ServeProcess, make_app
from helpers import wait_until
from test_lifecycle import CHECKED, alive, gone_as, marked_pid, tasks
from test_protocols import over

#: Short timings for tests that kill whole workers: a dead worker's tasks are found lost
#: after LOST_AFTER s (the same value on workers and web servers, as the docs ask).
LOST_AFTER = "2"
FAST_DEATH = ("--lost-after", LOST_AFTER, "--heartbeat-interval", "0.25")


@pytest.fixture
def web(redis_url: str, tmp_path: Path) -> Any:
    """``web(**env)``: a ``ladon-tasks serve --mode celery`` process, killed after the test."""
    started: list[ServeProcess] = []

    def start(**env: str) -> ServeProcess:
        environ = dict(os.environ, **{f"LADON_TASKS_{key.upper()}": value for key, value in env.items()})
        server = ServeProcess(["lifecycle_service"], tmp_path / f"web-{len(started)}.log", "--mode", "celery",
                              "--redis-url", redis_url, env=environ)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def answering(*servers: ServeProcess) -> None:
    for server in servers:
        server.wait_answering()


def ready(*workers: CeleryWorker) -> None:
    for worker in workers:
        worker.wait_ready()


def runner_of(pid: int, workers: list[CeleryWorker]) -> CeleryWorker:
    """The worker whose pool process ``pid`` is."""
    return next(worker for worker in workers if pid in worker.pool_pids())


def states_until_done(client: Any, method: str, task_id: str, timeout: float = 30) -> tuple[dict, list[str]]:
    """Poll until the task ends: its last answer and every state seen on the way."""
    seen: list[str] = []

    def done() -> dict | None:
        progress = client.progress(method, task_id)
        seen.append(progress["state"])
        return progress if progress["done"] else None

    return wait_until(done, timeout=timeout, interval=0.05, message=f"task {task_id} to end"), seen


# -- one contract, any web server ------------------------------------------------------


@pytest.mark.parametrize("protocol", CHECKED)
def test_the_whole_contract_started_on_one_web_server_answers_on_the_other(
        web, celery_workers, redis_url, tmp_path, protocol):
    first, second = web(), web()
    workers = [celery_workers(redis_url), celery_workers(redis_url)]
    answering(first, second)
    ready(*workers)
    starter, reader = tasks(first.url, protocol), tasks(second.url, protocol)
    with over(starter.proto), over(reader.proto):
        task_id = starter.start("quick", text="from the first")
        ended = reader.wait_done("quick", task_id)
        assert ended["state"] == "succeeded" and ended["attempt"] == 1
        assert reader.result("quick", task_id) == "from the first"
        assert tasks(first.url, protocol).result("quick", task_id) == "from the first"

        spinning = starter.start("spin", marker=str(tmp_path / "spin"), seconds=60.0)
        pid = marked_pid(tmp_path / "spin")
        assert pid in workers[0].pool_pids() + workers[1].pool_pids()  # no web process runs it
        assert reader.progress("spin", spinning)["state"] == "running"
        reader.ask("spin", "cancel", spinning)
        cancelled = starter.wait_done("spin", spinning)
        assert cancelled["state"] == "cancelled"
        assert cancelled["error"] == "TaskCancelled: cancelled while running"
        assert reader.fault("spin", "result", spinning).detail == "TaskCancelled"

        assert reader.ask("quick", "dismiss", task_id)["state"] == "succeeded"
        assert starter.fault("quick", "progress", task_id).detail == "TaskDismissed"
        unknown = reader.fault("quick", "progress", "A" * 22)
        assert (unknown.code, unknown.detail) == ("client", "TaskNotFound")
        assert "Traceback" not in unknown.text


def test_tasks_are_spread_over_every_pool_process_of_every_worker(web, celery_workers, redis_url, tmp_path):
    server = web()
    workers = [celery_workers(redis_url), celery_workers(redis_url)]
    answering(server)
    ready(*workers)
    client = tasks(server.url)
    markers = [tmp_path / f"m{index}" for index in range(4)]
    started = [client.start("spin", marker=str(marker), seconds=30.0) for marker in markers]
    pids = {marked_pid(marker) for marker in markers}  # four run at once: one per process
    assert pids == set(workers[0].pool_pids() + workers[1].pool_pids())
    for task_id in started:
        client.ask("spin", "cancel", task_id)
    for task_id in started:
        assert client.wait_done("spin", task_id)["state"] == "cancelled"


# -- durability: web servers hold nothing ------------------------------------------------


def test_a_task_started_while_no_worker_runs_waits_queued_through_web_restarts(
        web, celery_workers, redis_url):
    first = web()
    answering(first)
    task_id = tasks(first.url).start("quick", text="patience")
    assert tasks(first.url).progress("quick", task_id)["state"] == "queued"
    first.process.terminate()  # a clean stop: it records nothing lost
    assert first.process.wait(timeout=30) == 0
    assert "lost" not in first.log()

    second = web()
    answering(second)
    client = tasks(second.url)
    assert client.progress("quick", task_id)["state"] == "queued"
    celery_workers(redis_url).wait_ready()
    assert client.wait_done("quick", task_id)["state"] == "succeeded"
    assert client.result("quick", task_id) == "patience"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_stopping_every_web_server_loses_no_queued_or_running_task(
        web, celery_workers, redis_url, tmp_path, how):
    servers = [web(), web()]
    answering(*servers)
    celery_workers(redis_url, concurrency=1).wait_ready()
    client = tasks(servers[0].url)
    running = client.start("spin", marker=str(tmp_path / "running"), seconds=2.0)
    marked_pid(tmp_path / "running")
    waiting = tasks(servers[1].url).start("quick", text="still here")  # behind it: queued
    assert client.progress("quick", waiting)["state"] == "queued"

    for server in servers:
        getattr(server.process, "terminate" if how == "SIGTERM" else "kill")()
    for server in servers:
        server.process.wait(timeout=30)

    later = web()
    answering(later)
    after = tasks(later.url)
    assert after.wait_done("spin", running)["state"] == "succeeded"
    assert after.result("spin", running) > 10
    assert after.wait_done("quick", waiting)["state"] == "succeeded"
    assert after.result("quick", waiting) == "still here"


def test_a_worker_stopped_warmly_finishes_its_task_and_leaves_the_queue_to_others(
        web, celery_workers, redis_url, tmp_path):
    server = web()
    answering(server)
    first = celery_workers(redis_url, concurrency=1).wait_ready()
    client = tasks(server.url)
    running = client.start("spin", marker=str(tmp_path / "running"), seconds=2.0)
    marked_pid(tmp_path / "running")
    waiting = client.start("quick", text="next")
    first.process.terminate()  # Celery's warm shutdown: the running task may finish
    assert first.process.wait(timeout=60) == 0
    assert client.progress("spin", running)["state"] == "succeeded"
    assert client.progress("quick", waiting)["state"] == "queued"  # not taken, not lost

    celery_workers(redis_url, concurrency=1).wait_ready()
    assert client.wait_done("quick", waiting)["state"] == "succeeded"


# -- workers that die ----------------------------------------------------------------------


def test_a_pool_process_killed_mid_task_ends_its_task_lost_at_once(web, celery_workers, redis_url, tmp_path):
    server = web()
    answering(server)
    worker = celery_workers(redis_url).wait_ready()
    client = tasks(server.url)
    task_id = client.start("spin", marker=str(tmp_path / "m"), seconds=60.0)
    pid = marked_pid(tmp_path / "m")
    os.kill(pid, signal.SIGKILL)
    # The worker's main process records it at once: no wait for lost_after (10 s here).
    ended = client.wait_done("spin", task_id, timeout=5)
    assert ended["state"] == "lost" and ended["attempt"] == 1
    assert ended["error"] == (f"TaskLost: its worker process {pid} died "
                              "(Worker exited prematurely: signal 9 (SIGKILL))")
    assert client.fault("spin", "result", task_id).detail == "TaskLost"
    wait_until(lambda: len(worker.pool_pids()) == 2 and pid not in worker.pool_pids(),
               message="Celery to replace the pool process")
    later = client.start("quick", text="after")
    assert client.wait_done("quick", later)["state"] == "succeeded"


def test_a_pool_process_killed_mid_task_runs_it_again_while_it_has_retries(
        web, celery_workers, redis_url, tmp_path):
    server = web()
    answering(server)
    celery_workers(redis_url).wait_ready()
    client = tasks(server.url)
    counter = tmp_path / "attempts"
    task_id = client.start("dieOnce", counter=str(counter), marker=str(tmp_path / "m"), seconds=60.0)
    os.kill(marked_pid(tmp_path / "m"), signal.SIGKILL)
    ended, seen = states_until_done(client, "dieOnce", task_id)
    assert ended["state"] == "succeeded" and ended["attempt"] == 2
    assert client.result("dieOnce", task_id) == 2
    assert "lost" not in seen  # a retry, not a loss and then a retry
    assert len(counter.read_text().split()) == 2


def test_a_pool_process_killed_during_a_cancel_ends_its_task_cancelled(
        web, celery_workers, redis_url, tmp_path):
    server = web()
    answering(server)
    celery_workers(redis_url).wait_ready()
    client = tasks(server.url)
    task_id = client.start("sleeper", marker=str(tmp_path / "m"), seconds=30.0)
    pid = marked_pid(tmp_path / "m")
    assert client.ask("sleeper", "cancel", task_id)["cancel_requested"] is True
    os.kill(pid, signal.SIGKILL)  # before its cancel_grace (5 s) runs out
    ended = client.wait_done("sleeper", task_id, timeout=5)
    assert ended["state"] == "cancelled"
    assert ended["error"].startswith("TaskCancelled: cancelled while running")


@pytest.mark.parametrize("method", ["spin", "dieOnce"])
def test_a_whole_worker_killed_mid_task_is_found_lost_or_run_again_never_both(
        web, celery_workers, redis_url, tmp_path, method):
    # Started through one web server, watched through another that never started a task:
    # whichever process finds the dead worker decides, and any of them may run it again.
    starter, server = web(lost_after=LOST_AFTER), web(lost_after=LOST_AFTER)
    workers = [celery_workers(redis_url, *FAST_DEATH), celery_workers(redis_url, *FAST_DEATH)]
    answering(starter, server)
    ready(*workers)
    client = tasks(server.url)
    counter = tmp_path / "attempts"
    arguments = {"marker": str(tmp_path / "m"), "seconds": 60.0}
    if method == "dieOnce":
        arguments["counter"] = str(counter)
    task_id = tasks(starter.url).start(method, **arguments)
    pid = marked_pid(tmp_path / "m")
    victim = runner_of(pid, workers)
    victim.kill()  # its main process and its pool processes, at once: nobody records it
    ended, seen = states_until_done(client, method, task_id, timeout=30)
    if method == "spin":  # no retries: lost, found by a reader once its heartbeats stopped
        assert ended["state"] == "lost" and ended["attempt"] == 1
        assert "heartbeat" in ended["error"] and ended["error"].startswith("TaskLost")
    else:  # run again, on the other worker, once
        assert ended["state"] == "succeeded" and ended["attempt"] == 2
        assert "lost" not in seen
        assert len(counter.read_text().split()) == 2
    assert not alive(pid)


# -- limits ------------------------------------------------------------------------------


def test_a_task_holding_the_gil_is_ended_by_celerys_hard_time_limit(web, celery_workers, redis_url, tmp_path):
    # Its watchdog thread cannot run; the worker's main process kills it at time_limit +
    # cancel_grace + 5 s and records it as the watchdog would have.
    server = web()
    answering(server)
    worker = celery_workers(redis_url).wait_ready()
    client = tasks(server.url)
    task_id = client.start("regexHog", marker=str(tmp_path / "m"), size=60)
    pid = marked_pid(tmp_path / "m")
    ended = client.wait_done("regexHog", task_id, timeout=30)
    assert ended["state"] == "failed"
    assert ended["error"] == ("TimeLimitExceeded: ran longer than its time_limit of 0.5 s; it did "
                              "not return within cancel_grace (0.5 s) and was ended by force")
    wait_until(lambda: pid not in worker.pool_pids() and len(worker.pool_pids()) == 2,
               message="Celery to replace the killed pool process")
    assert "Hard time limit (6.0s) exceeded" in worker.log()


# -- the broker ---------------------------------------------------------------------------


def test_a_start_the_broker_does_not_take_is_refused_with_a_server_fault(web, redis_url, tmp_path):
    from conftest import free_port

    server = web(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    answering(server)
    client = tasks(server.url)
    fault = client.proto.fault("LifecycleService", "quick", text="nowhere")
    assert (fault.code, fault.detail) == ("server", "BrokerUnavailable")
    assert "broker cannot be reached" in fault.string and "Traceback" not in fault.text


def test_an_expired_record_and_its_job_leave_no_key_behind(web, celery_workers, redis_url):
    import redis as redis_client

    server = web(result_ttl="1")
    answering(server)
    celery_workers(redis_url, "--result-ttl", "1").wait_ready()
    client = tasks(server.url)
    task_id = client.start("quick", text="brief")
    client.wait_done("quick", task_id)
    wait_until(lambda: gone_as(client, "quick", task_id) == "TaskExpired", timeout=15,
               message="the record to expire")
    raw = redis_client.Redis.from_url(redis_url)
    task_keys = [key for key in raw.scan_iter("ladon_tasks:*") if task_id.encode() in key]
    assert [key.decode() for key in task_keys] == [f"ladon_tasks:gone:{task_id}"]
    assert 0 < raw.ttl(task_keys[0])


# -- existing Celery deployments ----------------------------------------------------------


def test_a_plain_celery_command_runs_ladon_tasks_workers(web, celery_workers, redis_url):
    server = web()
    answering(server)
    environ = dict(os.environ, LADON_TASKS_SERVICES="lifecycle_service", LADON_TASKS_PATH=SERVICES_DIR,
                   LADON_TASKS_REDIS_URL=redis_url, LADON_TASKS_PROGRESS_INTERVAL="0.05")
    celery = [str(Path(sys.executable).parent / "celery"), "-A", "ladon_tasks.worker_app", "worker",
              "--pool", "prefork", "--concurrency", "2", "--queues", "ladon_tasks", "--without-mingle",
              "--without-gossip", "--loglevel", "INFO"]
    celery_workers(redis_url, command=celery, env=environ).wait_ready()
    client = tasks(server.url)
    task_id = client.start("flaky", counter=str(Path(server.log_path).with_suffix(".count")), failures=1)
    ended = client.wait_done("flaky", task_id)
    assert (ended["state"], ended["attempt"]) == ("succeeded", 2)


def test_a_users_own_celery_app_sends_and_runs_ladon_tasks_tasks_beside_its_own(
        celery_workers, redis_url, live_server, monkeypatch, tmp_path):
    broker = redis_url.rsplit("/", 1)[0] + "/1"
    monkeypatch.setenv("OWN_BROKER_URL", broker)
    monkeypatch.setenv("OWN_REDIS_URL", redis_url)
    sys.modules.pop("own_celery_app", None)
    own = importlib.import_module("own_celery_app")
    celery = [str(Path(sys.executable).parent / "celery"), "-A", "own_celery_app", "worker", "--pool",
              "prefork", "--concurrency", "2", "--queues", own.QUEUE, "--without-mingle", "--without-gossip",
              "--loglevel", "INFO"]
    worker = celery_workers(redis_url, command=celery, env=dict(os.environ, PYTHONPATH=SERVICES_DIR))
    app = make_app(["lifecycle_service"], mode="celery", redis_url=redis_url, celery_queue=own.QUEUE,
                   celery_app=own.app)
    assert app.engine.executor().app is own.app
    client = tasks(live_server(app).url)
    worker.wait_ready()
    task_id = client.start("quick", text="through my app")
    assert client.wait_done("quick", task_id)["state"] == "succeeded"
    assert client.result("quick", task_id) == "through my app"
    spinning = client.start("spin", marker=str(tmp_path / "m"), seconds=60.0)
    assert marked_pid(tmp_path / "m") in worker.pool_pids()
    client.ask("spin", "cancel", spinning)
    assert client.wait_done("spin", spinning)["state"] == "cancelled"
    # The user's own task runs on the same workers, as before.
    own.app.send_task("own.double", args=(21,), queue=own.QUEUE)
    wait_until(lambda: "own.double" in worker.log() and "succeeded" in worker.log().split("own.double")[-1],
               message="the user's own task to run")


def test_a_task_the_broker_does_not_take_is_lost_and_so_is_its_retry(redis_url):
    from conftest import free_port

    from ladon_tasks import BrokerUnavailable
    from ladon_tasks.listing import TaskQuery

    app = make_app(["lifecycle_service"], mode="celery", redis_url=redis_url,
                   broker_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        engine = app.engine
        store = engine.store()
        with pytest.raises(BrokerUnavailable):
            engine.start("LifecycleService.quick", {"payload": {"args": ["nowhere"]}})
        lost, = store.list_tasks(TaskQuery())
        assert lost.state.value == "lost" and lost.attempt == 1
        assert lost.error.startswith("TaskLost: ") and "broker" in lost.error
        with pytest.raises(BrokerUnavailable):
            engine.retry(lost.task_id)  # its job was kept, but nothing takes it again
        again = engine.status(lost.task_id)
        assert again.state.value == "lost" and again.attempt == 2
        assert again.error.startswith("TaskLost: ") and "broker" in again.error
    finally:
        app.close(grace_period=1)
