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
from ladon_tasks.client import (
    FAULT_TYPES,
    ClientError,
    InvalidTaskIdFault,
    JoinTimeout,
    ResultNotReadyFault,
    ServiceFault,
    StoreUnavailableFault,
    TaskClient,
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
    with pytest.raises(TransportError, match="HTTP 500"):
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
        assert isinstance(fault, getattr(ladon_tasks, name))
    lost = make_fault(f"task {'t' * 22} failed: TaskLost: worker died", "server", "TaskLost", "t" * 22)
    assert isinstance(lost, TaskLostFault) and isinstance(lost, ladon_tasks.TaskLost)
    assert lost.error == "TaskLost: worker died"
    assert type(make_fault("other", "server", "details are in the server log")) is ServiceFault


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
