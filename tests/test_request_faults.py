"""Every bad request is answered with its own protocol's fault, through a real server.

One table per protocol: the body sent, the fault code and detail expected, and words the
fault text must hold. Every answer is also checked for what it must never carry: a
traceback, our file names and line numbers, Ladon's run-together converter texts, or a
huge echo of what the client sent. Client mistakes are logged at INFO in one line; the
service's own failures at ERROR with the traceback.
"""

from __future__ import annotations

import http.client
import json
import logging
import xml.etree.ElementTree as ET
from typing import Any, Callable, Iterator

import pytest
from conftest import Collect, LiveServer, make_app

SHAPE = "/ShapeService"
CALC = "/CalcService"
UNKNOWN_ID = "A" * 22
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
HUGE_NAME = "m" * 1_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(make_app(["shape_service", "calc_service"], max_request_bytes=4 * 1024 * 1024))
    yield live
    live.stop()


@pytest.fixture
def logs(collect_logs: Callable[[str], Collect]) -> Iterator[Collect]:
    logger = logging.getLogger("ladon_tasks")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield collect_logs("ladon_tasks")
    logger.setLevel(level)


def post(server: LiveServer, path: str, body: bytes, content_type: str = "application/json",
         ) -> tuple[int, bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def assert_clean(text: str) -> None:
    """What no fault may carry, debug off."""
    assert "Traceback" not in text and 'File "' not in text, text
    assert "filename" not in text and "lineno" not in text, text
    assert "Noneinvalid" not in text and "While handling attribute" not in text, text
    assert len(text) < 2000, len(text)


def jsonwsp_call(method: str, args: Any = None, **extra: Any) -> bytes:
    document = {"methodname": method, **extra}
    if args is not None:
        document["args"] = args
    return json.dumps(document).encode()


# -- JSON-WSP -------------------------------------------------------------------------------

JSONWSP_FAULTS = [
    ("empty", b"", "MalformedRequest", "the body is empty"),
    ("garbage", b"\x00\xff\xfegarbage", "MalformedRequest", "not UTF-8 text"),
    ("not json", b"methodname=add", "MalformedRequest", "not valid JSON"),
    ("truncated", b'{"methodname": "greet", "args": {', "MalformedRequest", "not valid JSON"),
    ("deep", b"[" * 100_000, "MalformedRequest", ""),
    ("array", b"[1, 2]", "InvalidRequest", "this body is a list"),
    ("string", b'"greet"', "InvalidRequest", "this body is a string"),
    ("no methodname", b'{"args": {}}', "InvalidRequest", 'no "methodname"'),
    ("number methodname", b'{"methodname": 5}', "InvalidRequest", "must be a method name"),
    ("args a list", jsonwsp_call("greet", ["x"]), "InvalidRequest", '"args" must be an object'),
    ("unknown", jsonwsp_call("nope", {}), "UnknownMethod", 'ShapeService has no method named "nope"'),
    ("huge name", jsonwsp_call(HUGE_NAME, {}), "UnknownMethod", "has no method named"),
    ("missing", jsonwsp_call("greet", {}), "MissingArgument", 'greet needs argument "name" (a string)'),
    ("unexpected", jsonwsp_call("greet", {"name": "a", "x": 1}), "UnexpectedArgument",
     'greet takes no argument named "x" (it takes name, punctuation)'),
    ("not an int", jsonwsp_call("positive", {"value": "ten"}), "InvalidArgument",
     'argument "value" of positive must be an integer; got "ten"'),
    ("bool for int", jsonwsp_call("positive", {"value": True}), "InvalidArgument", "got true"),
    ("null for int", jsonwsp_call("positive", {"value": None}), "InvalidArgument", "got null"),
    ("object for int", jsonwsp_call("positive", {"value": {}}), "InvalidArgument", "got an object"),
    ("string for list", jsonwsp_call("total", {"numbers": "12"}), "InvalidArgument",
     'argument "numbers" of total must be a list of integers; got "12"'),
    ("bad item", jsonwsp_call("total", {"numbers": [1, "x"]}), "InvalidArgument",
     'item 2 of argument "numbers" of total must be an integer; got "x"'),
    ("string for object", jsonwsp_call("describe", {"part": "bolt"}), "InvalidArgument",
     'argument "part" of describe must be a Part object; got "bolt"'),
    ("missing field", jsonwsp_call("describe", {"part": {"name": "bolt"}}), "InvalidArgument",
     'argument "part" of describe: field Part.weight is missing'),
    ("bad field", jsonwsp_call("describe", {"part": {"name": "bolt", "weight": "heavy"}}),
     "InvalidArgument", 'argument "part" of describe: field "weight" must be a number'),
    ("bad nested list", jsonwsp_call("countParts", {"assembly": {
        "label": "a", "count": 1, "ok": True, "main": {"name": "m", "weight": 1}, "parts": 3, "codes": []}}),
     "InvalidArgument", "must be a list"),
    ("bad task id", jsonwsp_call("square_progress", {"task_id": "../etc"}), "InvalidTaskId",
     "malformed task id"),
    ("unknown task", jsonwsp_call("square_result", {"task_id": UNKNOWN_ID}), "TaskNotFound", UNKNOWN_ID),
    # A poll that does not give the one string task_id leaves the dispatcher's short way.
    ("poll without id", jsonwsp_call("square_progress", {}), "MissingArgument",
     'square_progress needs argument "task_id" (a string)'),
    ("poll with more", jsonwsp_call("square_result", {"task_id": UNKNOWN_ID, "x": 1}), "UnexpectedArgument",
     'square_result takes no argument named "x" (it takes task_id)'),
    ("poll misnamed", jsonwsp_call("square_cancel", {"id": UNKNOWN_ID}), "UnexpectedArgument",
     'square_cancel takes no argument named "id" (it takes task_id)'),
    ("poll id a list", jsonwsp_call("square_progress", {"task_id": [UNKNOWN_ID]}), "InvalidArgument",
     'argument "task_id" of square_progress must be a string; got a list'),
    ("poll id an object", jsonwsp_call("square_dismiss", {"task_id": {"id": 1}}), "InvalidArgument",
     'argument "task_id" of square_dismiss must be a string; got an object'),
    ("poll id a number", jsonwsp_call("square_progress", {"task_id": 12345}), "InvalidTaskId",
     "malformed task id"),
]


@pytest.mark.parametrize(("body", "detail", "words"), [case[1:] for case in JSONWSP_FAULTS],
                         ids=[case[0] for case in JSONWSP_FAULTS])
def test_jsonwsp_client_faults(server: LiveServer, logs: Collect, body: bytes, detail: str,
                               words: str) -> None:
    status, raw = post(server, SHAPE + "/jsonwsp", body)
    assert status == 200
    assert_clean(raw.decode())
    answer = json.loads(raw)
    assert answer["type"] == "jsonwsp/fault", answer
    fault = answer["fault"]
    assert (fault["code"], fault["detail"]) == ("client", [detail]), fault
    assert words in fault["string"], fault["string"]
    assert set(fault) == {"code", "string", "detail", "hint"}
    assert not [r for r in logs.records if r.levelno >= logging.WARNING], logs.records
    lines = [r for r in logs.records if r.name == "ladon_tasks.faults"]
    assert lines and all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)


def test_jsonwsp_answers_and_reflection(server: LiveServer) -> None:
    status, raw = post(server, SHAPE + "/jsonwsp", jsonwsp_call("greet", {"name": "Ann"}, mirror={"n": 1}))
    answer = json.loads(raw)
    assert (status, answer["result"], answer["reflection"]) == (200, "Ann!", {"n": 1}), answer
    _, raw = post(server, SHAPE + "/jsonwsp", jsonwsp_call("total", {"numbers": [1, 2, 3]}))
    assert json.loads(raw)["result"] == 6
    _, raw = post(server, SHAPE + "/jsonwsp", jsonwsp_call("countParts", {"assembly": {
        "label": "a", "count": 1, "ok": True, "main": {"name": "m", "weight": 1.5},
        "parts": [{"name": "p", "weight": 2}], "codes": [1]}}))
    assert json.loads(raw)["result"] == 2
    _, raw = post(server, SHAPE + "/jsonwsp", jsonwsp_call("nope", mirror="back"))
    assert json.loads(raw)["reflection"] == "back"


def test_a_service_fault_and_a_service_crash(server: LiveServer, logs: Collect) -> None:
    _, raw = post(server, SHAPE + "/jsonwsp", jsonwsp_call("positive", {"value": -1}))
    fault = json.loads(raw)["fault"]
    assert (fault["code"], fault["string"]) == ("client", "value must be positive")
    assert not [r for r in logs.records if r.levelno >= logging.WARNING]
    _, raw = post(server, CALC + "/jsonwsp", jsonwsp_call("explode", {"value": 1}))
    assert_clean(raw.decode())
    fault = json.loads(raw)["fault"]
    assert fault["code"] == "server" and fault["detail"] == ["details are in the server log"], fault
    errors = [r for r in logs.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None, errors
    assert "exploded" in errors[0].getMessage()


def test_a_method_that_returns_the_wrong_type(server: LiveServer, logs: Collect) -> None:
    for interface in ("jsonwsp", "soap11"):
        body = (jsonwsp_call("wrongAnswer", {"value": 1}) if interface == "jsonwsp"
                else envelope("wrongAnswer", "<value>1</value>"))
        _, raw = post(server, f"{SHAPE}/{interface}", body, "text/xml")
        assert_clean(raw.decode())
        assert b"wrongAnswer returned a string, not an integer (its rtype)" in raw, raw
    errors = [r for r in logs.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info is not None for r in errors), errors


# -- JSON-RPC -------------------------------------------------------------------------------


def rpc(method: Any = "add", params: Any = (1, 2), request_id: Any = 1, **extra: Any) -> bytes:
    document = {"method": method, "id": request_id, **extra}
    if params is not None:
        document["params"] = list(params) if isinstance(params, tuple) else params
    return json.dumps(document).encode()


JSONRPC_FAULTS = [
    ("garbage", b"\xff\xfe{", -32700, "MalformedRequest", None),
    ("not json", b"{method: add}", -32700, "MalformedRequest", None),
    ("batch", b"[" + rpc() + b"]", -32600, "InvalidRequest", None),
    ("no method", b'{"params": [], "id": 7}', -32600, "InvalidRequest", 7),
    ("params a string", rpc(params="1,2", request_id="s"), -32600, "InvalidRequest", "s"),
    ("unknown", rpc("nope", request_id="abc"), -32601, "UnknownMethod", "abc"),
    ("too few", rpc("greet", (), request_id=3), -32602, "MissingArgument", 3),
    ("too many", rpc("greet", ("a", "b", "c"), request_id=3.5), -32602, "UnexpectedArgument", 3.5),
    ("wrong type", rpc("positive", ["x"], request_id=[1]), -32602, "InvalidArgument", [1]),
    ("unknown name", rpc("greet", {"nam": "x"}), -32602, "UnexpectedArgument", 1),
    ("unknown task", rpc("square_progress", [UNKNOWN_ID], request_id=9), 1000, "TaskNotFound", 9),
    ("unknown task by name", rpc("square_result", {"task_id": UNKNOWN_ID}, request_id=10), 1000,
     "TaskNotFound", 10),
    ("poll without id", rpc("square_progress", (), request_id=11), -32602, "MissingArgument", 11),
    ("poll with two", rpc("square_progress", (UNKNOWN_ID, UNKNOWN_ID), request_id=12), -32602,
     "UnexpectedArgument", 12),
    ("poll id null", rpc("square_result", [None], request_id=13), -32602, "InvalidArgument", 13),
]


@pytest.mark.parametrize(("body", "code", "detail", "request_id"), [case[1:] for case in JSONRPC_FAULTS],
                         ids=[case[0] for case in JSONRPC_FAULTS])
def test_jsonrpc_faults_echo_the_id_with_its_type(server: LiveServer, body: bytes, code: int,
                                                  detail: str, request_id: Any) -> None:
    status, raw = post(server, SHAPE + "/jsonrpc10", body)
    assert status == 200
    assert_clean(raw.decode())
    answer = json.loads(raw)
    assert answer["result"] is None and answer["id"] == request_id, answer
    assert type(answer["id"]) is type(request_id)
    error = answer["error"]
    assert (error["code"], error["data"]) == (code, {"faultcode": "client", "detail": detail}), error
    assert isinstance(error["message"], str) and error["message"] == error["string"]


@pytest.mark.parametrize(("params", "request_id"), [
    ((2, 3), 11), ((2, 3), "11"), ({"a": 2, "b": 3}, 1.5), ({"b": 3, "a": 2}, None), ((2, 3), {"k": [1]}),
])
def test_jsonrpc_answers_by_position_and_by_name(server: LiveServer, params: Any, request_id: Any) -> None:
    _, raw = post(server, CALC + "/jsonrpc10", rpc("add", params, request_id))
    answer = json.loads(raw)
    assert answer == {"result": 5, "error": None, "id": request_id}, answer


def test_jsonrpc_2_requests_get_2_answers(server: LiveServer) -> None:
    _, raw = post(server, CALC + "/jsonrpc10", rpc("add", (2, 3), 5, jsonrpc="2.0"))
    assert json.loads(raw) == {"jsonrpc": "2.0", "result": 5, "id": 5}
    _, raw = post(server, CALC + "/jsonrpc10", rpc("nope", (), 6, jsonrpc="2.0"))
    answer = json.loads(raw)
    assert set(answer) == {"jsonrpc", "error", "id"} and answer["error"]["code"] == -32601, answer
    _, raw = post(server, SHAPE + "/jsonrpc10", rpc("greet", ["Bo"], None))
    assert json.loads(raw) == {"result": "Bo!", "error": None, "id": None}


def test_jsonrpc_server_fault(server: LiveServer) -> None:
    _, raw = post(server, CALC + "/jsonrpc10", rpc("explode", [1], 2))
    error = json.loads(raw)["error"]
    assert (error["code"], error["data"]["faultcode"]) == (-32603, "server"), error


# -- SOAP 1.1 (rpc/encoded on /soap11, document/literal on /soap) ------------------------------


def envelope(operation: str, inner: str, service: str = "ShapeService") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" '
            f'xmlns:ns="urn:{service}"><SOAP-ENV:Body><ns:{operation}>{inner}</ns:{operation}>'
            f"</SOAP-ENV:Body></SOAP-ENV:Envelope>").encode()


SOAP_FAULTS = [
    ("malformed", b"<SOAP-ENV:Envelope", "MalformedRequest", "not a SOAP envelope"),
    ("empty", b"", "MalformedRequest", "the body is empty"),
    ("binary", b"\x00\x01\x02\xff", "MalformedRequest", "not a SOAP envelope"),
    ("unknown operation", envelope("nope", ""), "UnknownMethod", 'has no method named "nope"'),
    ("missing", envelope("greet", ""), "MissingArgument", 'greet needs argument "name"'),
    ("not an int", envelope("positive", "<value>ten</value>"), "InvalidArgument",
     'argument "value" of positive must be an integer; got "ten"'),
    ("unknown task", envelope("square_result", f"<task_id>{UNKNOWN_ID}</task_id>"), "TaskNotFound",
     UNKNOWN_ID),
    ("poll without id", envelope("square_progress", ""), "MissingArgument",
     'square_progress needs argument "task_id"'),
]


@pytest.mark.parametrize("interface", ["soap11", "soap"])
@pytest.mark.parametrize(("body", "detail", "words"), [case[1:] for case in SOAP_FAULTS],
                         ids=[case[0] for case in SOAP_FAULTS])
def test_soap_faults_are_fault_envelopes(server: LiveServer, logs: Collect, interface: str, body: bytes,
                                         detail: str, words: str) -> None:
    status, raw = post(server, f"{SHAPE}/{interface}", body, "text/xml; charset=UTF-8")
    assert status == 500, raw
    assert_clean(raw.decode())
    fault = ET.fromstring(raw).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, raw
    assert fault.findtext("faultcode") == "SOAP-ENV:Client"
    assert fault.findtext("detail") == detail
    assert words in (fault.findtext("faultstring") or ""), raw
    assert not [r for r in logs.records if r.levelno >= logging.WARNING], logs.records


@pytest.mark.parametrize("interface", ["soap11", "soap"])
def test_soap_answers_still_work(server: LiveServer, interface: str) -> None:
    status, raw = post(server, f"{CALC}/{interface}", envelope("add", "<a>2</a><b>3</b>", "CalcService"),
                       "text/xml")
    assert status == 200, raw
    assert [element.text for element in ET.fromstring(raw).iter() if element.tag.endswith("result")] == ["5"]


def test_a_fault_text_holds_no_characters_xml_cannot_carry(server: LiveServer) -> None:
    status, raw = post(server, SHAPE + "/soap11", envelope("positive", "<value>&#x7;</value>"), "text/xml")
    if status == 500:  # the parser may refuse the character reference itself: a fault either way
        ET.fromstring(raw)
    status, raw = post(server, SHAPE + "/jsonwsp", jsonwsp_call("positive", {"value": "\x07\x00"}))
    assert "got" in json.loads(raw)["fault"]["string"]


def test_debug_on_sends_the_traceback_of_a_crash() -> None:
    live = LiveServer(make_app(["calc_service"], debug=True))
    try:
        _, raw = post(live, CALC + "/jsonwsp", jsonwsp_call("explode", {"value": 1}))
    finally:
        live.stop()
    fault = json.loads(raw)["fault"]
    assert fault["code"] == "server" and any("Traceback" in line for line in fault["detail"]), fault
