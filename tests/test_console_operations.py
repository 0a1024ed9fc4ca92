"""What an administrator does through the console besides looking: retry a task, pause and
resume methods (across two servers sharing Redis), the summary; and unique tasks, started
at once by 16 clients on two servers. Thread, process and celery mode."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers import wait_until
from test_caller_binding import AsUser, as_user
from test_console_api import Http, is_root
from test_lifecycle import SERVICE

from ladon_tasks import TaskConfig, TaskEngine
from ladon_tasks.exceptions import NotRetryable
from ladon_tasks.ids import new_task_id
from ladon_tasks.task import TaskState

#: Seconds a paused task is watched to stay queued: several turns of every executor
#: (a thread or process pool looks at the pauses twice a second, a Celery worker gets
#: a held message back every 2 s), so a start would show.
STAYS_QUEUED = 2.5


@pytest.fixture
def consoles(serve: Callable, live_server: Callable) -> Callable[..., list[str]]:
    """``consoles(n)`` -> the urls of ``n`` servers of the lifecycle service (sharing
    Redis in process and celery mode), root their administrator."""

    def start(count: int = 1, **options: Any) -> list[str]:
        return [live_server(AsUser(serve(admin=is_root, **options))).url for _ in range(count)]

    return start


def counted(counter: Path) -> int:
    return len(counter.read_text().split()) if counter.exists() else 0


# -- retry ------------------------------------------------------------------------------------


def test_a_failed_task_is_retried_as_its_next_attempt_with_its_arguments_and_owner(consoles, tmp_path):
    url, = consoles()
    alice = as_user(url, "jsonwsp", "alice")
    counter = tmp_path / "attempts"
    task_id = alice.start("failFirst", counter=str(counter))
    ended = alice.wait_done("failFirst", task_id)
    assert ended["state"] == "failed" and "attempt 1 fails" in ended["error"]
    admin = Http(url)
    row = admin.post(f"api/tasks/{task_id}/retry")
    assert row["task_id"] == task_id and row["attempt"] == 2 and row["owner"] == "alice"
    assert row["state"] in ("queued", "running") and row["error"] == "" and row["finished"] is None
    assert alice.wait_done("failFirst", task_id)["state"] == "succeeded"
    assert alice.result("failFirst", task_id) == 2  # the same arguments: the same counter file
    assert counted(counter) == 2
    status, _, body = admin.request("POST", f"api/tasks/{task_id}/retry")
    assert status == 409 and body["error"]["code"] == "NotRetryable"
    assert "succeeded" in body["error"]["message"]


def test_a_cancelled_task_runs_again_when_retried(consoles, tmp_path):
    url, = consoles()
    bob = as_user(url, "jsonwsp", "bob")
    task_id = bob.start("spin", marker=str(tmp_path / "spin"), seconds=30.0)
    wait_until(lambda: bob.progress("spin", task_id)["state"] == "running", message="the task to run")
    admin = Http(url)
    status, _, body = admin.request("POST", f"api/tasks/{task_id}/retry")
    assert status == 409 and "running" in body["error"]["message"]
    admin.post(f"api/tasks/{task_id}/cancel")
    assert bob.wait_done("spin", task_id)["state"] == "cancelled"
    (tmp_path / "spin").unlink()
    assert admin.post(f"api/tasks/{task_id}/retry")["attempt"] == 2
    wait_until(lambda: bob.progress("spin", task_id)["state"] == "running" and (tmp_path / "spin").exists(),
               message="the retried task to run")
    assert not bob.progress("spin", task_id)["done"]
    admin.post(f"api/tasks/{task_id}/cancel")
    assert bob.wait_done("spin", task_id)["state"] == "cancelled"


@pytest.mark.parametrize("mode", ["thread"])  # the routes, not the modes
def test_a_retry_of_an_unknown_or_malformed_id_is_refused(consoles):
    url, = consoles()
    admin = Http(url)
    never = new_task_id()
    status, _, body = admin.request("POST", f"api/tasks/{never}/retry")
    assert status == 404 and body["error"]["code"] == "TaskNotFound"
    status, _, body = admin.request("POST", "api/tasks/not-an-id/retry")
    assert status == 400 and body["error"]["code"] == "InvalidTaskId"
    status, headers, _ = admin.request("GET", f"api/tasks/{never}/retry")
    assert status == 405 and headers["Allow"] == "POST"
    status, _, body = admin.request("POST", f"api/tasks/{never}/retry", {"Origin": "http://evil.example"})
    assert status == 403 and body["error"]["code"] == "CrossSiteRequest"


def test_a_thread_mode_task_that_gave_its_arguments_away_is_not_retryable():
    engine = TaskEngine(TaskConfig(threads=1))
    try:
        def fails(update_progress: Any) -> None:
            raise ValueError("no")

        task_id = engine.start("Service.fails", fails)
        wait_until(lambda: engine.status(task_id).state is TaskState.FAILED, message="the task to fail")
        with pytest.raises(NotRetryable, match="arguments were not kept"):
            engine.retry(task_id)
        assert engine.status(task_id).attempt == 1
    finally:
        engine.shutdown(1)


# -- pause and resume -------------------------------------------------------------------------


def test_while_paused_tasks_are_accepted_and_stay_queued_on_every_server(consoles, mode, tmp_path):
    urls = consoles(1 if mode == "thread" else 2)
    first, last = Http(urls[0]), Http(urls[-1])  # two servers sharing Redis, but in thread mode
    client = as_user(urls[-1], "jsonwsp", "carol")
    assert first.post("api/pause") == {"paused": {"all": True, "methods": []}}
    assert last.get("api/summary")["paused"]["all"] is True
    held = client.start("quick", text="later")
    time.sleep(STAYS_QUEUED)  # a start would show meanwhile; a pause never lets one happen
    assert client.progress("quick", held)["state"] == "queued"
    assert first.post("api/resume") == {"paused": {"all": False, "methods": []}}
    assert client.wait_done("quick", held)["state"] == "succeeded"
    assert client.result("quick", held) == "later"


def test_a_pause_of_one_method_lets_the_others_run(consoles, mode, tmp_path):
    urls = consoles(1 if mode == "thread" else 2)
    first = Http(urls[0])
    client = as_user(urls[-1], "jsonwsp", None)
    quick = f"{SERVICE}.quick"
    assert first.post(f"api/pause?method={quick}") == {"paused": {"all": False, "methods": [quick]}}
    held = client.start("quick", text="held")
    other = client.start("talker", steps=2, pause=0.01)
    assert client.wait_done("talker", other)["state"] == "succeeded"
    time.sleep(STAYS_QUEUED)
    assert client.progress("quick", held)["state"] == "queued"
    assert Http(urls[-1]).post(f"api/resume?method={quick}")["paused"]["methods"] == []
    assert client.wait_done("quick", held)["state"] == "succeeded"


@pytest.mark.parametrize("mode", ["thread"])  # the routes, not the modes
def test_a_pause_of_a_method_not_served_is_refused(consoles):
    url, = consoles()
    admin = Http(url)
    status, _, body = admin.request("POST", "api/pause?method=Nope.nothing")
    assert status == 400 and body["error"]["code"] == "InvalidQuery"
    assert "Nope.nothing" in body["error"]["message"]
    status, _, body = admin.request("POST", "api/pause?colour=red")
    assert status == 400 and "colour" in body["error"]["message"]
    status, headers, _ = admin.request("GET", "api/pause")
    assert status == 405 and headers["Allow"] == "POST"
    assert admin.get("api/summary")["paused"] == {"all": False, "methods": []}


# -- the summary ------------------------------------------------------------------------------


def test_the_summary_counts_what_each_method_did(consoles, tmp_path):
    url, = consoles()
    client = as_user(url, "jsonwsp", "dave")
    for number in range(3):
        client.wait_done("quick", client.start("quick", text=str(number)))
    failed = client.start("failFirst", counter=str(tmp_path / "counter"))
    client.wait_done("failFirst", failed)
    summary = Http(url).get("api/summary")
    methods = {row["method"]: row for row in summary["methods"]}
    assert f"{SERVICE}.spin" in methods  # every served method, run or not
    quick = methods[f"{SERVICE}.quick"]
    assert (quick["started"], quick["succeeded"], quick["failed"], quick["queued"]) == (3, 3, 0, 0)
    assert quick["p50"] is not None and quick["p90"] >= quick["p50"] >= 0
    fail_first = methods[f"{SERVICE}.failFirst"]
    assert (fail_first["started"], fail_first["failed"], fail_first["p50"]) == (1, 1, None)
    assert summary["totals"]["succeeded"] == 3 and summary["totals"]["failed"] == 1


# -- unique tasks -----------------------------------------------------------------------------


def test_sixteen_clients_starting_one_unique_task_on_two_servers_get_one_task(consoles, mode, tmp_path):
    urls = consoles(1 if mode == "thread" else 2, size=4)
    counter = tmp_path / "starts"
    clients = [as_user(urls[number % len(urls)], "jsonwsp", "erin") for number in range(16)]
    answers: list[str] = []
    barrier = threading.Barrier(len(clients))

    def start(client: Any) -> None:
        barrier.wait()
        answers.append(client.start("single", counter=str(counter), seconds=30.0))

    threads = [threading.Thread(target=start, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 16 and len(set(answers)) == 1
    task_id = answers[0]
    wait_until(lambda: counted(counter) == 1, message="the one task to start")
    listed = Http(urls[0]).get(f"api/tasks?method={SERVICE}.single")["tasks"]
    assert [row["task_id"] for row in listed] == [task_id]
    # Another caller, or other arguments, is another task.
    frank = as_user(urls[0], "jsonwsp", "frank")
    other_caller = frank.start("single", counter=str(counter), seconds=30.0)
    other_args = clients[0].start("single", counter=str(counter), seconds=29.0)
    assert len({task_id, other_caller, other_args}) == 3
    for ended in (task_id, other_caller, other_args):
        Http(urls[0]).post(f"api/tasks/{ended}/cancel")
    assert clients[0].wait_done("single", task_id)["state"] == "cancelled"
    again = clients[1].start("single", counter=str(counter), seconds=30.0)
    assert again != task_id  # once ended, the same start makes a new task
    Http(urls[0]).post(f"api/tasks/{again}/cancel")
    frank.wait_done("single", other_caller)
    for started in (other_args, again):
        clients[0].wait_done("single", started)
