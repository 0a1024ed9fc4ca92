"""Two JSON-RPC client libraries nobody here wrote, against the jsonrpc10 interface: a
plain call, a task's start, ``_progress`` and ``_result``, and the faults a caller meets
(unknown method, wrong argument, unknown task id, result asked for too early), in thread
and process mode. ``jsonrpcclient`` speaks JSON-RPC 2.0; ``jsonrpclib-pelix`` 1.0 and 2.0."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterator

import jsonrpcclient
import jsonrpclib
import pytest
import requests
from conftest import LiveServer, make_app
from helpers import wait_until

UNKNOWN_ID = "A" * 22


@pytest.fixture(params=["thread", "process"], scope="module")
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    options: dict[str, Any] = {"mode": request.param}
    if request.param == "process":
        options.update(redis_url=request.getfixturevalue("redis_server").empty_url(), processes=1)
    live = LiveServer(make_app(["shape_service", "calc_service", "proto_service"], **options))
    yield live.url
    live.stop()


class JsonRpcClient:
    """jsonrpcclient 4: builds the request and parses the answer; requests carries it."""

    name = "jsonrpcclient"
    ids = itertools.count(1)

    def __init__(self, url: str, service: str) -> None:
        self.endpoint = f"{url}/{service}/jsonrpc10"

    def call(self, method: str, *params: Any) -> Any:
        request_id = next(self.ids)
        body = jsonrpcclient.request(method, params=params, id=request_id)
        answer = requests.post(self.endpoint, json=body, timeout=30)
        parsed = jsonrpcclient.parse(answer.json())
        assert parsed.id == request_id, parsed
        if isinstance(parsed, jsonrpcclient.Error):
            raise CallFailed(parsed.code, parsed.message, parsed.data)
        return parsed.result


class PelixClient:
    """jsonrpclib-pelix's ServerProxy, in JSON-RPC 1.0 or 2.0."""

    def __init__(self, url: str, service: str, version: float) -> None:
        self.name = f"jsonrpclib-pelix {version}"
        self.proxy = jsonrpclib.ServerProxy(f"{url}/{service}/jsonrpc10", version=version)

    def call(self, method: str, *params: Any) -> Any:
        try:
            return getattr(self.proxy, method)(*params)
        except jsonrpclib.AppError as error:
            code, message, data = error.args[0]
            raise CallFailed(code, message, data) from None
        except jsonrpclib.ProtocolError as error:
            code, message = error.args[0]
            raise CallFailed(code, message, None) from None


class CallFailed(Exception):
    def __init__(self, code: int, message: str, data: Any) -> None:
        super().__init__(f"{code}: {message} ({data})")
        self.code, self.message, self.data = code, message, data


CLIENTS: dict[str, Callable[[str, str], Any]] = {
    "jsonrpcclient": JsonRpcClient,
    "pelix-1.0": lambda url, service: PelixClient(url, service, 1.0),
    "pelix-2.0": lambda url, service: PelixClient(url, service, 2.0),
}


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest, url: str) -> Callable[[str], Any]:
    return lambda service: CLIENTS[request.param](url, service)


def test_plain_calls(client: Callable[[str], Any]) -> None:
    calc = client("CalcService")
    assert calc.call("add", 2, 3) == 5
    shape = client("ShapeService")
    assert shape.call("greet", "Ann") == "Ann!"
    assert shape.call("total", [1, 2, 3]) == 6
    assert shape.call("describe", {"name": "bolt", "weight": 2.5}) == "bolt weighs 2.5"


def test_a_task_start_progress_and_result(client: Callable[[str], Any]) -> None:
    shape = client("ShapeService")
    started = shape.call("square", 7)
    task_id = started["task_id"]
    ended = wait_until(lambda: (lambda p: p if p["state"] == "succeeded" else None)(
        shape.call("square_progress", task_id)), message="the task to succeed")
    assert ended["progress"] == 1.0 and ended["task_id"] == task_id
    assert shape.call("square_result", task_id) == 49


def test_a_result_asked_for_too_early_is_a_client_fault(client: Callable[[str], Any], tmp_path) -> None:
    proto = client("ProtoService")
    gate = tmp_path / "gate"
    task_id = proto.call("waitForFile", str(gate))["task_id"]
    try:
        with pytest.raises(CallFailed) as caught:
            proto.call("waitForFile_result", task_id)
        assert caught.value.code == 1000 and caught.value.data["detail"] == "ResultNotReady", caught.value
    finally:
        gate.write_text("go")
    wait_until(lambda: proto.call("waitForFile_progress", task_id)["state"] == "succeeded",
               message="the opened task to succeed")


@pytest.mark.parametrize(("service", "method", "params", "code", "detail"), [
    ("ShapeService", "nope", (), -32601, "UnknownMethod"),
    ("ShapeService", "positive", ("ten",), -32602, "InvalidArgument"),
    ("ShapeService", "greet", (), -32602, "MissingArgument"),
    ("ShapeService", "square_progress", (UNKNOWN_ID,), 1000, "TaskNotFound"),
    ("ShapeService", "square_result", ("not/an id",), 1000, "InvalidTaskId"),
    ("CalcService", "explode", (1,), -32603, None),
])
def test_faults_are_read_by_the_client(client: Callable[[str], Any], service: str, method: str,
                                       params: tuple, code: int, detail: str | None) -> None:
    with pytest.raises(CallFailed) as caught:
        client(service).call(method, *params)
    failed = caught.value
    assert failed.code == code and failed.message, failed
    assert "Traceback" not in failed.message
    if failed.data is not None:  # pelix hands data on for application codes only
        assert failed.data["detail"] == (detail or "details are in the server log"), failed.data
    elif code >= 0:
        pytest.fail(f"{failed} lost its data")
