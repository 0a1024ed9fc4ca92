"""Property: whatever body is posted to any interface, the answer is that protocol's
valid answer or its client fault, never a traceback, never an error in the server log,
and the server goes on answering.

Bodies are random bytes, random JSON, JSON calls of the real methods with random
arguments, and SOAP envelopes of random operations and arguments. In CI the examples
are derandomized (the same every run); run locally they are new each time.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import xml.etree.ElementTree as ET
from typing import Callable, Iterator
from xml.sax.saxutils import escape

import pytest
from conftest import Collect, LiveServer, make_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SERVICE = "ShapeService"
METHODS = ["total", "describe", "countParts", "greet", "positive", "square", "square_progress",
           "square_result", "nope", ""]
ARGUMENTS = ["numbers", "part", "assembly", "name", "punctuation", "value", "task_id", "x"]
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
FUZZ = settings(max_examples=int(os.environ.get("LADON_TASKS_FUZZ_EXAMPLES", "200")), deadline=None,
                derandomize=bool(os.environ.get("CI")), database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
arguments = st.dictionaries(st.sampled_from(ARGUMENTS), json_values, max_size=3)
jsonwsp_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(lambda m, a: json.dumps({"methodname": m, "args": a}).encode(), st.sampled_from(METHODS),
              arguments),
)
jsonrpc_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(lambda m, p, i: json.dumps({"method": m, "params": p, "id": i}).encode(),
              st.sampled_from(METHODS), st.lists(json_values, max_size=3) | arguments, json_values),
)
xml_text = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20)
xml_arguments = st.dictionaries(st.sampled_from(ARGUMENTS), xml_text, max_size=3).map(
    lambda args: "".join(f"<{name}>{escape(value)}</{name}>" for name, value in args.items()))
soap_bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda op, inner: (f'<?xml version="1.0"?><e:Envelope xmlns:e="{SOAP_ENV}" '
                                 f'xmlns:ns="urn:{SERVICE}"><e:Body><ns:{op}>{inner}</ns:{op}>'
                                 f"</e:Body></e:Envelope>").encode(),
              st.sampled_from([m for m in METHODS if m]), xml_arguments),
    xml_text.map(lambda text: text.encode()),
)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(make_app(["shape_service"], max_request_bytes=1024 * 1024))
    yield live
    live.stop()


@pytest.fixture
def errors(collect_logs: Callable[[str], Collect]) -> Collect:
    return collect_logs("ladon_tasks")


def post(server: LiveServer, interface: str, body: bytes) -> tuple[int, str, bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        content_type = "text/xml" if "soap" in interface else "application/json"
        connection.request("POST", f"/{SERVICE}/{interface}", body=body,
                           headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def check_json(status: int, raw: bytes, interface: str) -> None:
    assert status == 200, (status, raw)
    answer = json.loads(raw)
    if interface == "jsonwsp":
        assert answer["type"] in ("jsonwsp/response", "jsonwsp/fault"), answer
        if answer["type"] == "jsonwsp/fault":
            assert answer["fault"]["code"] == "client", answer
        return
    assert "id" in answer and ("result" in answer or "error" in answer), answer
    if answer.get("error"):
        assert answer["error"]["data"]["faultcode"] == "client", answer


def check_soap(status: int, raw: bytes) -> None:
    body = ET.fromstring(raw).find(f"{{{SOAP_ENV}}}Body")
    assert body is not None, raw
    fault = body.find(f"{{{SOAP_ENV}}}Fault")
    if fault is not None:
        assert status == 500 and fault.findtext("faultcode") == "SOAP-ENV:Client", raw
    else:
        assert status == 200, raw


def check(server: LiveServer, errors: Collect, interface: str, body: bytes) -> None:
    status, content_type, raw = post(server, interface, body)
    text = raw.decode("utf-8", "replace")
    assert "Traceback" not in text and 'File "' not in text, text
    if status in (400, 411, 413, 415):  # refused by the guard before any parsing, in plain HTTP
        return
    if "soap" in interface:
        check_soap(status, raw)
    else:
        check_json(status, raw, interface)
    assert not [r for r in errors.records if r.levelno >= logging.ERROR], errors.records[-1].getMessage()


@FUZZ
@given(body=jsonwsp_bodies)
def test_jsonwsp_fuzz(server: LiveServer, errors: Collect, body: bytes) -> None:
    check(server, errors, "jsonwsp", body)


@FUZZ
@given(body=jsonrpc_bodies)
def test_jsonrpc_fuzz(server: LiveServer, errors: Collect, body: bytes) -> None:
    check(server, errors, "jsonrpc10", body)


@FUZZ
@given(body=soap_bodies, interface=st.sampled_from(["soap11", "soap"]))
def test_soap_fuzz(server: LiveServer, errors: Collect, body: bytes, interface: str) -> None:
    check(server, errors, interface, body)


def test_the_server_still_answers_after_the_fuzz(server: LiveServer) -> None:
    _, _, raw = post(server, "jsonwsp", json.dumps({"methodname": "greet", "args": {"name": "ok"}}).encode())
    assert json.loads(raw)["result"] == "ok!"

