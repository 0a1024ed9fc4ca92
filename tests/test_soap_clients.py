"""Standard SOAP clients, zeep and suds, against a live server over ``/soap``
(document/literal) and ``/soap11`` (rpc/encoded): each loads the WSDL, runs a task of
every rtype through start, ``_progress`` and ``_result``, calls plain methods, sends
strings whose whitespace must survive, and gets faults it raises.

Both clients decode an empty string and an empty list as None; :func:`matches` allows
that and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterator

import pytest
import suds
import suds.client
import suds.sudsobject
import zeep
from conftest import LiveServer, make_app
from helpers import wait_until
from zeep.helpers import serialize_object

SERVICE = "SoapService"
TASK_ID = re.compile(r"[A-Za-z0-9_-]{22}")
UNKNOWN_ID = "A" * 22
PROGRESS_FIELDS = {"task_id", "state", "done", "progress", "duration", "starttime", "createtime",
                   "endtime", "error", "attempt", "cancel_requested", "silent_for", "health",
                   "message", "eta", "expected_duration", "poll_after"}
ENDPOINTS = ("progress", "result", "cancel", "dismiss")


@dataclass
class Fault(Exception):
    """A SOAP fault as a client raised it."""

    code: str
    string: str
    detail: str


def plain(value: Any) -> Any:
    """What either client decoded, as plain data: dicts with Python field names, lists
    for SOAP arrays (``{'item': [...]}``), floats for decimals."""
    if isinstance(value, suds.sudsobject.Object):
        value = dict(value)
    if isinstance(value, Mapping):
        if list(value) == ["item"]:
            return plain(value["item"] or [])
        return {str(key).replace("-", "_"): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        return str(value)  # suds hands back a str subclass
    return value


def soap_arg(value: Any) -> Any:
    """A value as both clients take it: lists as SOAP arrays."""
    if isinstance(value, list):
        return {"item": [soap_arg(item) for item in value]}
    if isinstance(value, dict):
        return {key: soap_arg(item) for key, item in value.items()}
    return value


def matches(got: Any, expected: Any) -> bool:
    """``got`` is ``expected``, type for type, but for '' and [] decoded as None."""
    if isinstance(expected, dict):
        return (isinstance(got, dict) and set(got) == set(expected)
                and all(matches(got[key], item) for key, item in expected.items()))
    if isinstance(expected, list):
        if got is None:
            return expected == []
        return (isinstance(got, list) and len(got) == len(expected)
                and all(matches(item, want) for item, want in zip(got, expected, strict=True)))
    if expected == "" and got is None:
        return True
    return type(got) is type(expected) and got == expected


class ZeepClient:
    name = "zeep"

    def __init__(self, wsdl: str) -> None:
        self.client = zeep.Client(wsdl)

    def operations(self) -> set[str]:
        return set(self.client.service._binding._operations)

    def call(self, method: str, *args: Any) -> Any:
        try:
            return plain(serialize_object(self.client.service[method](*map(soap_arg, args))))
        except zeep.exceptions.Fault as fault:
            detail = "".join(fault.detail.itertext()) if fault.detail is not None else ""
            raise Fault(fault.code or "", fault.message or "", detail) from None


class SudsClient:
    name = "suds"

    def __init__(self, wsdl: str) -> None:
        self.client = suds.client.Client(wsdl, cache=None)

    def operations(self) -> set[str]:
        return set(self.client.wsdl.services[0].ports[0].methods)

    def call(self, method: str, *args: Any) -> Any:
        try:
            return plain(getattr(self.client.service, method)(*map(soap_arg, args)))
        except suds.WebFault as error:
            fault = error.fault
            raise Fault(str(fault.faultcode), str(fault.faultstring), str(fault.detail or "")) from None


CLIENTS: dict[str, Callable[[str], Any]] = {"zeep": ZeepClient, "suds": SudsClient}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(make_app(["soap_service"]))
    yield live
    live.stop()


@pytest.fixture(params=[(client, interface) for client in CLIENTS for interface in ("soap", "soap11")],
                ids=lambda param: f"{param[0]}-{param[1]}")
def client(request: pytest.FixtureRequest, server: LiveServer) -> Any:
    name, interface = request.param
    return CLIENTS[name](f"{server.url}/{SERVICE}/{interface}/description")


def start(client: Any, method: str, *args: Any) -> str:
    answer = client.call(method, *args)
    # zeep, and suds on /soap, hand back the only field of TaskInfoResponse by itself;
    # suds on /soap11 the object.
    task_id = answer["task_id"] if isinstance(answer, dict) else answer
    assert isinstance(task_id, str) and TASK_ID.fullmatch(task_id), answer
    return task_id


def wait_done(client: Any, method: str, task_id: str) -> dict:
    def done() -> dict | None:
        progress = client.call(f"{method}_progress", task_id)
        return progress if progress["done"] else None

    return wait_until(done, timeout=30, message=f"{method} task {task_id} to end")


def point(label: str, index: int) -> dict:
    return {"label": label, "x": index, "y": index / 2.0, "visible": index % 2 == 0}


def shape(name: str, count: int) -> dict:
    return {"name": name, "origin": point("origin", 0), "corners": [point(f"c{i}", i) for i in range(count)],
            "tags": [f"t{i}" for i in range(count)], "note": None}


#: (task method, arguments, its result as plain data)
TASKS = [
    ("double", (21,), 42),
    ("double", (0,), 0),
    ("echoText", (" a <b ",), " a <b "),
    ("half", (3.0,), 1.5),
    ("negate", (True,), False),
    ("negate", (False,), True),
    ("series", (4,), [0, 1, 2, 3]),
    ("series", (0,), []),
    ("makePoint", ("p", 3), point("p", 3)),
    ("makeShape", ("s", 2), shape("s", 2)),
    ("makeShape", ("", 0), shape("", 0)),
    ("makeDrawing", ("d", 2), {"title": "d", "shapes": [shape("s0", 0), shape("s1", 1)]}),
]


def test_the_wsdl_loads_with_every_operation(client: Any) -> None:
    operations = client.operations()
    for method in ("double", "echoText", "half", "negate", "series", "makePoint", "makeShape", "makeDrawing"):
        assert {method, *(f"{method}_{endpoint}" for endpoint in ENDPOINTS)} <= operations
    assert {"add", "echo", "length", "echoWords", "echoShape", "total"} <= operations
    assert "add_progress" not in operations


@pytest.mark.parametrize(("method", "args", "expected"), TASKS,
                         ids=[f"{case[0]}{case[1]!r}" for case in TASKS])
def test_a_task_of_every_rtype(client: Any, method: str, args: tuple, expected: Any) -> None:
    task_id = start(client, method, *args)
    progress = wait_done(client, method, task_id)
    assert set(progress) == PROGRESS_FIELDS, progress
    assert (progress["task_id"], progress["state"], progress["done"]) == (task_id, "succeeded", True)
    assert progress["progress"] == 1.0 and progress["attempt"] == 1
    assert progress["cancel_requested"] is False and progress["error"] in ("", None)
    assert 0 < progress["createtime"] <= progress["starttime"] <= progress["endtime"]
    for _ in range(2):  # a result is answered again until it expires
        result = client.call(f"{method}_result", task_id)
        assert matches(result, expected), (result, expected)


def test_plain_methods(client: Any) -> None:
    assert client.call("add", 2, 3) == 5
    assert client.call("add", -7, 0) == -7
    assert client.call("total", [1, 2, 3]) == 6
    assert client.call("total", []) == 0
    assert matches(client.call("echoWords", ["x", "y"]), ["x", "y"])


TEXTS = [" a <b ", "  leading", "trailing  ", "inner   three  spaces", "\ttabs\tinside\t", "\nlines\n\n",
         " ", "\n", "\t", "a & b", "<&>", "a<b>c", "caf\u00e9 \u2713 ", "x" * 3000 + "  " + "y" * 3000]
#: What suds itself sends wrong: it leaves a carriage return raw (XML reads it as a
#: newline) and does not escape an ampersand that already looks like an entity.
ZEEP_ONLY_TEXTS = ["a\r\nb", "\r", "&amp; as text", "&lt;"]


def texts_for(client: Any) -> list[str]:
    return TEXTS + (ZEEP_ONLY_TEXTS if client.name == "zeep" else [])


def test_strings_round_trip_exactly(client: Any) -> None:
    for text in texts_for(client):
        assert client.call("length", text) == len(text), repr(text)  # as the server got it
        assert client.call("echo", text) == text, repr(text)  # and as it came back


def test_a_task_gets_and_gives_strings_exactly(client: Any) -> None:
    started = [(text, start(client, "echoText", text)) for text in texts_for(client)]
    for text, task_id in started:
        wait_done(client, "echoText", task_id)
        assert client.call("echoText_result", task_id) == text, repr(text)


def test_strings_inside_objects_and_lists_round_trip(client: Any) -> None:
    words = [" a ", "b  ", "\tc", " <&> "]
    assert matches(client.call("echoWords", words), words)
    given = {"name": "  spaced  name ", "origin": point(" o ", 1),
             "corners": [point("\tc\t", 2), point(" d & <e> ", 3)], "tags": [" t ", "u  ", " "],
             "note": " a note "}
    assert matches(client.call("echoShape", given), given)
    given.update(note=None, corners=[], tags=[])
    assert matches(client.call("echoShape", given), given)


def test_unknown_and_malformed_task_ids_are_client_faults(client: Any) -> None:
    for endpoint in ENDPOINTS:
        with pytest.raises(Fault) as caught:
            client.call(f"double_{endpoint}", UNKNOWN_ID)
        fault = caught.value
        assert fault.code.rpartition(":")[2] == "Client", fault
        assert fault.detail == "TaskNotFound" and UNKNOWN_ID in fault.string, fault
        assert "Traceback" not in fault.detail
    with pytest.raises(Fault) as caught:
        client.call("double_result", "not-a-task-id")
    assert (caught.value.code.rpartition(":")[2], caught.value.detail) == ("Client", "InvalidTaskId")
    assert client.call("add", 1, 1) == 2  # the client is still usable


def test_process_mode(redis_url: str) -> None:
    live = LiveServer(make_app(["soap_service"], mode="process", redis_url=redis_url, processes=1,
                               progress_interval=0.05))
    try:
        for name, make in CLIENTS.items():
            for interface in ("soap", "soap11"):
                client = make(f"{live.url}/{SERVICE}/{interface}/description")
                task_id = start(client, "makeShape", " s ", 2)
                progress = wait_done(client, "makeShape", task_id)
                assert progress["state"] == "succeeded", (name, interface, progress)
                result = client.call("makeShape_result", task_id)
                assert matches(result, shape(" s ", 2)), (name, interface, result)
    finally:
        live.stop()
