"""TaskClient against a live server, over JSON-WSP (urllib) and SOAP (zeep)."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from decimal import Decimal
from typing import Any, Callable, Iterator

import calc_service
import pytest
from conftest import free_port, make_app
from helpers import wait_until

import ladon_tasks
import ladon_tasks.exceptions
from ladon_tasks.client import (
    FAULT_TYPES,
    ClientError,
    InvalidTaskIdFault,
    JoinTimeout,
    ResultNotReadyFault,
    ServiceFault,
    StoreUnavailableFault,
    TaskCancelledFault,
    TaskClient,
    TaskDismissedFault,
    TaskExpiredFault,
    TaskFailedFault,
    TaskLostFault,
    TaskNotFoundFault,
    TaskProgress,
    TransportError,
    make_fault,
    plain_value,
)

PROTOCOLS = ["jsonwsp", "soap"]
UNKNOWN_ID = "A" * 22

ASSEMBLY = {
    "label": "kit", "count": 2, "ok": True, "main": {"name": "main", "weight": 1.5},
    "parts": [{"name": "p0", "weight": 0.0}, {"name": "p1", "weight": 1.0}], "codes": [0, 1],
}


@pytest.fixture
def calc_url(live_server: Callable) -> str:
    return live_server(make_app(["calc_service"])).url + "/CalcService"


@pytest.fixture(params=PROTOCOLS)
def client(request: pytest.FixtureRequest, calc_url: str) -> TaskClient:
    return TaskClient(calc_url, protocol=request.param)


@pytest.fixture
def gate() -> Iterator[str]:
    """A gate name for calc_service.gated; opened after the test so no task is left waiting."""
    name = uuid.uuid4().hex
    yield name
    calc_service.GATES.setdefault(name, threading.Event()).set()


def open_gate(name: str) -> None:
    calc_service.GATES.setdefault(name, threading.Event()).set()


def finished(client: TaskClient, method: str, task_id: str) -> Callable[[], bool]:
    return lambda: client.progress(method, task_id).done


def soap_assembly(value: Any) -> dict:
    """A SOAP Assembly as plain values, arrays unwrapped from their ``item`` elements."""
    plain = plain_value(value)
    plain["parts"] = plain["parts"]["item"]
    plain["codes"] = plain["codes"]["item"]
    return plain


def test_start_progress_result(client: TaskClient) -> None:
    task_id = client.start("echoInt", 41)
    wait_until(finished(client, "echoInt", task_id), message="echoInt to finish")
    progress = client.progress("echoInt", task_id)
    assert isinstance(progress, TaskProgress)
    assert progress.task_id == task_id
    assert progress.state == ladon_tasks.TaskState.SUCCEEDED and progress.succeeded
    assert progress.done and progress.progress == 1.0 and progress.error == ""
    assert 0 < progress.createtime <= progress.starttime <= progress.endtime
    assert client.result("echoInt", task_id) == 41


def test_typed_results_json_values(calc_url: str) -> None:
    client = TaskClient(calc_url)
    task_id = client.start("assemble", "kit", count=2)
    assert client.join("assemble", task_id) == ASSEMBLY
    task_id = client.start("partList", 2)
    assert client.join("partList", task_id) == [{"name": "p0", "weight": 0.0}, {"name": "p1", "weight": 0.5}]
    assert client.join("echoString", client.start("echoString", "héllo")) == "héllo"


def test_typed_results_zeep_objects(calc_url: str) -> None:
    client = TaskClient(calc_url, protocol="soap")
    task_id = client.start("assemble", "kit", count=2)
    result = client.join("assemble", task_id)
    assert result.label == "kit" and result.count == 2
    assert result.main.weight == Decimal("1.5")
    assert soap_assembly(result) == ASSEMBLY
    assert client.join("countTo", client.start("countTo", 3)) == [0, 1, 2]


def test_join_reports_rising_progress(client: TaskClient, gate: str) -> None:
    seen: list[TaskProgress] = []
    task_id = client.start("gated", gate)
    outcome: dict = {}

    def join() -> None:
        outcome["result"] = client.join("gated", task_id, progress_callback=seen.append, poll_interval=0.02)

    joiner = threading.Thread(target=join)
    joiner.start()
    wait_until(lambda: any(p.progress == 0.25 for p in seen), message="progress 0.25")
    open_gate(gate)
    joiner.join(timeout=30)
    assert outcome["result"] == gate
    values = [p.progress for p in seen]
    assert values == sorted(values)
    assert 0.25 in values
    assert seen[-1].done and seen[-1].progress == 1.0
    assert not any(p.done for p in seen[:-1])


def test_join_raises_the_task_error(client: TaskClient) -> None:
    task_id = client.start("fail", "boom")
    with pytest.raises(ladon_tasks.TaskFailed) as caught:
        client.join("fail", task_id)
    error = caught.value
    assert isinstance(error, TaskFailedFault) and isinstance(error, ServiceFault)
    assert error.task_id == task_id
    assert error.error == "ValueError: boom"
    assert error.detail == "TaskFailed"
    assert "Traceback" not in str(error)


def test_join_timeout(client: TaskClient, gate: str) -> None:
    task_id = client.start("gated", gate)
    with pytest.raises(JoinTimeout) as caught:
        client.join("gated", task_id, timeout=0.2, poll_interval=0.05)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.task_id == task_id
    assert caught.value.progress.state in ("queued", "running")
    with pytest.raises(ResultNotReadyFault):
        client.result("gated", task_id)
    with pytest.raises(ladon_tasks.ResultNotReady):
        client.result("gated", task_id)
    open_gate(gate)
    assert client.join("gated", task_id) == gate


def test_unknown_and_malformed_ids(client: TaskClient) -> None:
    with pytest.raises(TaskNotFoundFault) as caught:
        client.progress("steps", UNKNOWN_ID)
    assert isinstance(caught.value, ladon_tasks.TaskNotFound)
    assert caught.value.code == "client" and caught.value.task_id == UNKNOWN_ID
    with pytest.raises(ladon_tasks.TaskNotFound):
        client.join("steps", UNKNOWN_ID)
    with pytest.raises(InvalidTaskIdFault):
        client.result("steps", "not-an-id")


def test_connection_refused(protocol_name: str) -> None:
    client = TaskClient(f"http://127.0.0.1:{free_port()}/CalcService", protocol=protocol_name)
    with pytest.raises(TransportError, match="cannot reach"):
        client.start("steps", 1, 0.0)


@pytest.fixture(params=PROTOCOLS)
def protocol_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_unknown_service_is_a_transport_error(live_server: Callable, protocol_name: str) -> None:
    url = live_server(make_app(["calc_service"])).url + "/NoSuchService"
    with pytest.raises(TransportError, match="HTTP 404"):
        TaskClient(url, protocol=protocol_name).start("steps", 1, 0.0)


def test_methods_that_are_not_task_methods(client: TaskClient) -> None:
    with pytest.raises(ClientError, match="add"):
        client.start("add", 1, 2)
    with pytest.raises(ClientError, match="noSuchMethod"):
        client.start("noSuchMethod")


def test_argument_binding(calc_url: str) -> None:
    client = TaskClient(calc_url)
    assert client.join("steps", client.start("steps", pause=0.0, count=2)) == 2
    with pytest.raises(ClientError, match="takes 2 arguments"):
        client.start("steps", 1, 0.0, 3)
    with pytest.raises(ClientError, match="no parameter 'speed'"):
        client.start("steps", 1, speed=2)
    with pytest.raises(ClientError, match="both by position and by name"):
        client.start("steps", 1, count=2)
    with pytest.raises(ClientError, match="missing pause"):
        client.start("steps", 1)


def test_soap_keyword_arguments_use_ladon_names(calc_url: str) -> None:
    client = TaskClient(calc_url, protocol="soap")
    assert client.join("steps", client.start("steps", count=2, pause=0.0)) == 2


def test_server_fault_without_known_detail(client: TaskClient) -> None:
    with pytest.raises(ServiceFault) as caught:
        client.start("steps", "not a number", 0.0)
    assert type(caught.value) is ServiceFault
    assert "Traceback" not in caught.value.message


def test_store_unavailable(live_server: Callable, redis_server: Any, redis_url: str) -> None:
    app = make_app(["calc_service"], mode="process", redis_url=redis_url, processes=1)
    client = TaskClient(live_server(app).url + "/CalcService")
    redis_server.stop(save=False)
    with pytest.raises(StoreUnavailableFault) as caught:
        client.start("echoInt", 1)
    assert isinstance(caught.value, ladon_tasks.StoreUnavailable)


def test_fault_table_matches_server_errors() -> None:
    for name, fault_type in FAULT_TYPES.items():
        fault = make_fault("message", "server", name, "t" * 22)
        assert isinstance(fault, fault_type)
        assert isinstance(fault, getattr(ladon_tasks.exceptions, name))
    lost = make_fault(f"task {'t' * 22} failed: TaskLost: worker died", "server", "TaskLost", "t" * 22)
    assert isinstance(lost, TaskLostFault) and isinstance(lost, ladon_tasks.TaskLost)
    assert lost.error == "TaskLost: worker died"
    cancelled = make_fault(f"task {'t' * 22} was cancelled: TaskCancelled: by a caller", "client",
                           "TaskCancelled", "t" * 22)
    assert isinstance(cancelled, TaskCancelledFault) and cancelled.error == "TaskCancelled: by a caller"
    for name, gone_type in (("TaskExpired", TaskExpiredFault), ("TaskDismissed", TaskDismissedFault)):
        gone = make_fault("gone", "client", name, "t" * 22)
        assert isinstance(gone, gone_type) and isinstance(gone, ladon_tasks.TaskNotFound)
        assert isinstance(gone, TaskNotFoundFault)
    assert type(make_fault("other", "server", "details are in the server log")) is ServiceFault


def test_progress_from_an_older_server() -> None:
    """A server without the lifecycle fields: they keep their defaults."""
    old = {"task_id": "t" * 22, "state": "running", "done": False, "progress": 0.5, "duration": 1.0,
           "starttime": 2.0, "createtime": 1.0, "endtime": 0.0, "error": ""}
    progress = TaskProgress.from_answer(old)
    assert (progress.attempt, progress.cancel_requested, progress.silent_for, progress.health) == (
        1, False, 0.0, "")
    new = TaskProgress.from_answer({**old, "attempt": 2, "cancel_requested": True,
                                    "silent_for": Decimal("1.5"), "health": "silent"})
    assert (new.attempt, new.cancel_requested, new.silent_for, new.health) == (2, True, 1.5, "silent")
    assert not new.cancelled and TaskProgress.from_answer({**old, "state": "cancelled"}).cancelled


def test_plain_value() -> None:
    assert plain_value({"a": [Decimal("1.5"), b"x", (1, None)]}) == {"a": [1.5, "x", [1, None]]}


def test_unknown_protocol() -> None:
    with pytest.raises(ClientError, match="unknown protocol"):
        TaskClient("http://127.0.0.1:1/X", protocol="xmlrpc")


def test_soap_without_zeep_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['zeep'] = None\n"
        "from ladon_tasks.client import ClientError, TaskClient\n"
        "try:\n"
        "    TaskClient('http://127.0.0.1:1/X', protocol='soap')\n"
        "except ClientError as error:\n"
        "    print(error)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "needs zeep" in output.stdout and "ladon_tasks[client]" in output.stdout


# -- cancel and dismiss -------------------------------------------------------------------


@pytest.fixture
def lifecycle_app_url(live_server: Callable) -> Callable[..., str]:
    """``lifecycle_app_url(**options)``: the URL of LifecycleClientService on a live server."""

    def serve(**options: Any) -> str:
        return live_server(make_app(["lifecycle_client_service"], **options)).url + "/LifecycleClientService"

    return serve


@pytest.fixture
def stubborn_gate() -> Iterator[str]:
    """A gate name for lifecycle_client_service.stubborn, opened after the test."""
    import lifecycle_client_service

    name = uuid.uuid4().hex
    yield name
    lifecycle_client_service.gate(name).set()


def running(client: TaskClient, method: str, task_id: str) -> Callable[[], bool]:
    return lambda: client.progress(method, task_id).state == ladon_tasks.TaskState.RUNNING


def progress_when(client: TaskClient, method: str, task_id: str,
                  condition: Callable[[TaskProgress], bool], message: str) -> TaskProgress:
    """The first progress of the task that meets ``condition``, polled for up to 30 s."""

    def check() -> TaskProgress | None:
        progress = client.progress(method, task_id)
        return progress if condition(progress) else None

    return wait_until(check, timeout=30, message=message)


def test_cancel_a_queued_task_it_never_runs(lifecycle_app_url: Callable[..., str],
                                            protocol_name: str) -> None:
    client = TaskClient(lifecycle_app_url(threads=1), protocol=protocol_name)
    first = client.start("spin", 60.0)
    wait_until(running(client, "spin", first), message="the first task to run")
    second = client.start("spin", 60.0)
    progress = client.cancel("spin", second)
    assert progress.state == ladon_tasks.TaskState.CANCELLED and progress.done and progress.cancelled
    assert progress.duration == 0.0 and progress.error.startswith("TaskCancelled:")
    client.cancel("spin", first)
    assert client.wait("spin", first, timeout=30).cancelled
    after = client.progress("spin", second)
    assert after.cancelled and after.duration == 0.0 and after.endtime == progress.endtime


def test_cancel_a_running_task(lifecycle_app_url: Callable[..., str], protocol_name: str) -> None:
    client = TaskClient(lifecycle_app_url(), protocol=protocol_name)
    task_id = client.start("spin", 60.0)
    wait_until(lambda: client.progress("spin", task_id).progress > 0, message="progress")
    answer = client.cancel("spin", task_id)
    assert answer.task_id == task_id
    assert answer.cancelled or (answer.state == ladon_tasks.TaskState.RUNNING and answer.cancel_requested)
    final = client.wait("spin", task_id, timeout=30, poll_interval=0.02)
    assert final.cancelled and final.done and final.error.startswith("TaskCancelled:")
    with pytest.raises(ladon_tasks.exceptions.TaskCancelled) as caught:
        client.join("spin", task_id)
    error = caught.value
    assert isinstance(error, TaskCancelledFault) and isinstance(error, ServiceFault)
    assert error.detail == "TaskCancelled" and error.task_id == task_id
    assert error.error.startswith("TaskCancelled:")
    with pytest.raises(TaskCancelledFault):
        client.result("spin", task_id)


def test_cancel_an_ended_task_changes_nothing(client: TaskClient) -> None:
    task_id = client.start("echoInt", 41)
    assert client.join("echoInt", task_id) == 41
    answer = client.cancel("echoInt", task_id)
    assert answer.succeeded and answer.done and not answer.cancel_requested
    assert client.cancel("echoInt", task_id).succeeded
    assert client.result("echoInt", task_id) == 41


def test_cancel_and_dismiss_unknown_ids(client: TaskClient) -> None:
    for call in (client.cancel, client.dismiss):
        with pytest.raises(TaskNotFoundFault) as caught:
            call("echoInt", UNKNOWN_ID)
        assert type(caught.value) is TaskNotFoundFault
        with pytest.raises(InvalidTaskIdFault):
            call("echoInt", "not-an-id")


def test_dismiss_an_ended_task(client: TaskClient) -> None:
    task_id = client.start("echoInt", 7)
    assert client.join("echoInt", task_id) == 7
    answer = client.dismiss("echoInt", task_id)
    assert answer.succeeded and answer.task_id == task_id
    for call in (client.progress, client.result, client.cancel, client.dismiss):
        with pytest.raises(TaskDismissedFault) as caught:
            call("echoInt", task_id)
        assert isinstance(caught.value, ladon_tasks.TaskNotFound)
        assert caught.value.detail == "TaskDismissed"


def test_dismiss_a_running_task(lifecycle_app_url: Callable[..., str], protocol_name: str) -> None:
    client = TaskClient(lifecycle_app_url(), protocol=protocol_name)
    task_id = client.start("spin", 60.0)
    wait_until(running(client, "spin", task_id), message="the task to run")
    answer = client.dismiss("spin", task_id)
    assert answer.task_id == task_id and answer.state == ladon_tasks.TaskState.RUNNING
    with pytest.raises(TaskDismissedFault):
        client.progress("spin", task_id)
    with pytest.raises(ladon_tasks.TaskNotFound):
        client.join("spin", task_id)


def test_an_expired_task_answers_task_expired(lifecycle_app_url: Callable[..., str],
                                              protocol_name: str) -> None:
    client = TaskClient(lifecycle_app_url(result_ttl=0.5), protocol=protocol_name)
    task_id = client.start("spin", 0.0)
    client.wait("spin", task_id, timeout=30)

    def expired() -> bool:
        try:
            client.progress("spin", task_id)
        except TaskExpiredFault as error:
            return isinstance(error, ladon_tasks.TaskNotFound)
        return False

    wait_until(expired, timeout=30, interval=0.1, message="TaskExpired")
    with pytest.raises(TaskExpiredFault):
        client.result("spin", task_id)


def test_progress_fields_of_a_running_task(lifecycle_app_url: Callable[..., str], protocol_name: str,
                                           stubborn_gate: str) -> None:
    client = TaskClient(lifecycle_app_url(max_silence=60.0, cancel_grace=60.0), protocol=protocol_name)
    task_id = client.start("stubborn", stubborn_gate, 60.0)
    progress = progress_when(client, "stubborn", task_id, lambda p: p.progress > 0, "a progress report")
    assert progress.state == ladon_tasks.TaskState.RUNNING
    assert progress.attempt == 1 and not progress.cancel_requested
    assert progress.health == "ok" and progress.silent_for >= 0.0
    asked = client.cancel("stubborn", task_id)
    assert asked.state == ladon_tasks.TaskState.RUNNING and asked.cancel_requested and not asked.done
    import lifecycle_client_service

    lifecycle_client_service.gate(stubborn_gate).set()
    final = client.wait("stubborn", task_id, timeout=30, poll_interval=0.02)
    assert final.cancelled and final.health == "" and final.silent_for == 0.0


def test_a_silent_task_turns_silent(lifecycle_app_url: Callable[..., str], stubborn_gate: str) -> None:
    client = TaskClient(lifecycle_app_url(max_silence=1.0, cancel_grace=60.0))
    task_id = client.start("stubborn", stubborn_gate, 60.0)
    silent = progress_when(client, "stubborn", task_id, lambda p: p.health == "silent", "silent")
    assert silent.state == ladon_tasks.TaskState.RUNNING and silent.silent_for >= 0.5
    later = progress_when(client, "stubborn", task_id, lambda p: p.health != "silent", "past silent")
    assert later.health in ("stalled", "")


def test_attempts_are_counted(lifecycle_app_url: Callable[..., str], protocol_name: str) -> None:
    client = TaskClient(lifecycle_app_url(retries=2, retry_backoff=0.0), protocol=protocol_name)
    task_id = client.start("flaky", "no luck")
    with pytest.raises(TaskFailedFault) as caught:
        client.join("flaky", task_id, poll_interval=0.02)
    assert caught.value.error.endswith("(after 3 attempts)")
    assert client.progress("flaky", task_id).attempt == 3
