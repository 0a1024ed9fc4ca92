"""The dispatcher's parts on their own: reading a body into a call, and writing faults."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from ladon.exceptions.service import ClientFault, ServerFault

from ladon_tasks.ladon_glue import request_faults as rf
from ladon_tasks.ladon_glue.arguments import type_name
from ladon_tasks.ladon_glue.replies import FaultParts, jsonrpc_answer, jsonrpc_fault, soap_fault
from ladon_tasks.ladon_glue.request_readers import Reply, read_jsonrpc, read_jsonwsp


def read(reader: Any, body: bytes) -> tuple[Any, Reply]:
    reply = Reply()
    return reader(None, body, "UTF-8", reply), reply


def test_jsonwsp_arguments_arrive_as_ladon_converts_them() -> None:
    request, reply = read(read_jsonwsp, b'{"methodname": "m", "args": {"a": 1, "b": [2.5, true, null],'
                                        b' "c": {"d": 3}}, "mirror": {"k": 1}}')
    assert (request.method, request.positional) == ("m", None)
    assert request.named == {"a": "1", "b": ["2.5", True, None], "c": {"d": "3"}}
    assert reply.reflection == {"k": 1}  # the mirror keeps its JSON types


def test_jsonwsp_numbers_json_lacks_and_a_byte_order_mark_are_read() -> None:
    request, _ = read(read_jsonwsp, b'{"methodname": "m", "args": {"a": NaN, "b": [Infinity, -Infinity]}}')
    assert request.named == {"a": "NaN", "b": ["Infinity", "-Infinity"]}
    request, _ = read(read_jsonwsp, '\ufeff{"methodname": "m", "args": {"a": 1}}'.encode())
    assert (request.method, request.named) == ("m", {"a": "1"})  # RFC 8259 lets a reader ignore it
    request, _ = read(read_jsonrpc, '\ufeff{"method": "m", "params": ["x"], "id": 1}'.encode())
    assert request.positional == ["x"]


@pytest.mark.parametrize(("body", "fault", "words"), [
    (b"", rf.MalformedRequest, "empty"),
    ("\ufeff".encode(), rf.MalformedRequest, "empty"),
    (b'{"methodname": "m"} {}', rf.MalformedRequest, "Extra data"),
    (b"\xff", rf.MalformedRequest, "not UTF-8 text"),
    (b"{", rf.MalformedRequest, "not valid JSON"),
    (b"[" * 50_000 + b"]" * 50_000, rf.MalformedRequest, ""),
    (b"null", rf.InvalidRequest, "this body is null"),
    (b'{"methodname": ["m"]}', rf.InvalidRequest, "not a list"),
    (b'{"methodname": "m", "args": 3}', rf.InvalidRequest, "not a number"),
])
def test_jsonwsp_bodies_that_are_no_call(body: bytes, fault: type, words: str) -> None:
    with pytest.raises(fault) as caught:
        read(read_jsonwsp, body)
    assert words in caught.value.faultstring
    assert caught.value.detail == fault.__name__ and caught.value.faultcode == "client"


def test_jsonrpc_keeps_the_id_even_when_the_call_is_bad() -> None:
    reply = Reply()
    with pytest.raises(rf.InvalidRequest):
        read_jsonrpc(None, b'{"id": 12, "jsonrpc": "2.0", "params": []}', "UTF-8", reply)
    assert (reply.request_id, reply.jsonrpc2) == (12, True)
    request, reply = read(read_jsonrpc, b'{"method": "m", "params": {"x": 1}, "id": "12"}')
    assert (request.named, request.positional, reply.request_id) == ({"x": "1"}, None, "12")
    request, _ = read(read_jsonrpc, b'{"method": "m", "params": [1, "a"]}')
    assert request.positional == ["1", "a"]


def test_jsonrpc_answers_in_the_version_asked() -> None:
    one = json.loads(jsonrpc_answer(5, Reply(request_id=1.5), "UTF-8"))
    two = json.loads(jsonrpc_answer(5, Reply(request_id="x", jsonrpc2=True), "UTF-8"))
    assert one == {"result": 5, "error": None, "id": 1.5}
    assert two == {"jsonrpc": "2.0", "result": 5, "id": "x"}


@pytest.mark.parametrize(("fault", "code"), [
    (rf.MalformedRequest("x"), -32700), (rf.UnknownMethod("x"), -32601), (rf.InvalidArgument("x"), -32602),
    (rf.InternalError("x"), -32603), (ClientFault("x", detail="TaskNotFound"), 1000),
    (ServerFault("x", detail="TaskFailed"), 2000),
])
def test_jsonrpc_error_codes(fault: Any, code: int) -> None:
    answer = json.loads(jsonrpc_fault(fault, FaultParts.of(fault), Reply(request_id=[1]), "UTF-8"))
    assert answer["id"] == [1] and answer["result"] is None
    assert answer["error"]["code"] == code and answer["error"]["message"] == "x"
    assert answer["error"]["data"] == {"faultcode": fault.faultcode, "detail": fault.detail or ""}
    assert set(answer["error"]) == {"code", "message", "data", "string", "detail"}


def test_a_soap_fault_is_well_formed_whatever_its_text() -> None:
    fault = rf.UnknownMethod('no method named "\x00<&>\x07\ud800"')
    envelope = ET.fromstring(soap_fault(fault, FaultParts.of(fault), Reply(), "UTF-8"))
    body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    texts = {element.tag: element.text for element in body.iter()}
    assert texts["faultcode"] == "SOAP-ENV:Client" and texts["detail"] == "UnknownMethod"
    assert "<&>" in texts["faultstring"] and "\x00" not in texts["faultstring"]


@pytest.mark.parametrize(("declared", "name"), [
    (int, "an integer"), (float, "a number"), (bool, "a boolean"), (str, "a string"),
    ([int], "a list of integers"), ([str], "a list of strings"),
])
def test_type_names(declared: Any, name: str) -> None:
    assert type_name(declared) == name


def test_shown_values_are_short_and_on_one_line() -> None:
    assert rf.shown("a\nb") == '"a b"' and rf.shown(None) == "null" and rf.shown(True) == "true"
    assert len(rf.shown("x" * 10_000)) < 70 and rf.shown("  ") == '"  "'
