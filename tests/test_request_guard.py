"""The request guard in front of Ladon: unknown services and interfaces, calls that are
not POSTs, and bodies too large or of unknown length, answered in plain HTTP before the
body is read. Table-driven on the guard itself, then through a real HTTP server."""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import time
from typing import Callable

import pytest
from conftest import make_app
from helpers import jsonwsp, jsonwsp_result

from ladon_tasks.ladon_glue.guard import RequestGuard

LIMIT = 1000
SERVICES = {"CalcService"}
INTERFACES = {"soap", "soap11", "jsonwsp", "jsonrpc10", "xmlrpc"}


def guard() -> RequestGuard:
    return RequestGuard(LIMIT, SERVICES.__contains__, INTERFACES.__contains__)


def environ(path: str, method: str = "POST", length: str | None = "10", **extra: object) -> dict:
    env: dict = {"PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO(b"x" * 10)}
    if length is not None:
        env["CONTENT_LENGTH"] = length
    env.update(extra)
    return env


@pytest.mark.parametrize(("env", "status", "text"), [
    (environ("/NoSuch/jsonwsp"), "404", "no service named 'NoSuch'"),
    (environ("/NoSuch/"), "404", "no service named 'NoSuch'"),
    (environ("/CalcService/nosuch"), "404", "no interface named 'nosuch'"),
    (environ("/" + "A" * 5000), "404", "..."),
    (environ("/CalcService/jsonwsp", method="GET"), "405", "must be POSTed"),
    (environ("/CalcService/soap11", method="PUT"), "405", "must be POSTed"),
    (environ("/CalcService/jsonwsp", length=None), "411", "Content-Length"),
    (environ("/CalcService/jsonwsp", length="ten"), "400", "not a number"),
    (environ("/CalcService/jsonwsp", length="-5"), "400", "not a number"),
    (environ("/CalcService/jsonwsp", length=str(LIMIT + 1)), "413", "at most 1,000 bytes"),
    (environ("/CalcService/xmlrpc"), "404", "XML-RPC is not served here"),
    (environ("/CalcService/xmlrpc/description", method="GET"), "404", "never ported to Python 3"),
    (environ("/CalcService/jsonwsp", CONTENT_TYPE="application/json; charset=klingon"), "415",
     "charset 'klingon'"),
    (environ("/CalcService/jsonwsp", CONTENT_TYPE="application/json; charset=base64"), "415",
     "charset 'base64'"),
    (environ("/CalcService/jsonwsp", CONTENT_TYPE="application/json; charset=rot13"), "415",
     "charset 'rot13'"),
    (environ("/CalcService/soap11", CONTENT_TYPE='text/xml; charset="x' + "y" * 500), "415", "..."),
])
def test_refused(env: dict, status: str, text: str) -> None:
    refusal = guard().check(env)
    assert refusal is not None and refusal.status.startswith(status), refusal
    assert text in refusal.message
    assert len(refusal.message) < 300  # a 5,000-character name is not echoed whole


def test_a_405_names_the_allowed_method() -> None:
    refusal = guard().check(environ("/CalcService/jsonwsp", method="GET"))
    assert refusal is not None and ("Allow", "POST") in refusal.headers


@pytest.mark.parametrize("env", [
    environ("/", method="GET", length=None),
    environ("/CalcService", method="GET", length=None),
    environ("/CalcService/", method="GET", length=None),
    environ("/CalcService/jsonwsp/description", method="GET", length=None),
    environ("/skins/default/style.css", method="GET", length=None),
    environ("/CalcService/jsonwsp", length=str(LIMIT)),
    environ("/CalcService/jsonwsp", CONTENT_TYPE="application/json; charset=latin-1"),
    environ("/CalcService/soap11", CONTENT_TYPE='text/xml; charset="utf-8"'),
])
def test_passed_on(env: dict) -> None:
    assert guard().check(env) is None


def test_a_chunked_body_within_the_limit_is_handed_on_with_its_length() -> None:
    env = environ("/CalcService/jsonwsp", length=None, **{"wsgi.input_terminated": True})
    env["wsgi.input"] = io.BytesIO(b"y" * LIMIT)
    assert guard().check(env) is None
    assert env["CONTENT_LENGTH"] == str(LIMIT) and env["wsgi.input"].read() == b"y" * LIMIT


def test_a_chunked_body_over_the_limit_is_read_no_further() -> None:
    stream = io.BytesIO(b"z" * (100 * LIMIT))
    env = environ("/CalcService/jsonwsp", length=None, HTTP_TRANSFER_ENCODING="chunked")
    env["wsgi.input"] = stream
    refusal = guard().check(env)
    assert refusal is not None and refusal.status.startswith("413")
    assert stream.tell() == LIMIT + 1


# -- through a real server ------------------------------------------------------------------


@pytest.fixture
def server(live_server: Callable) -> tuple[str, int]:
    url = live_server(make_app(["calc_service"], max_request_bytes=LIMIT)).url
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def request(server: tuple[str, int], method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, chunked: bool = False) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def call(method: str, **args: object) -> bytes:
    return json.dumps({"methodname": method, "args": args}).encode()


def test_unknown_service_and_interface_are_404_not_500(server) -> None:
    status, _, body = request(server, "GET", "/NoSuchService/")
    assert status == 404 and b"no service named 'NoSuchService'" in body
    status, _, body = request(server, "POST", "/CalcService/nosuch", call("add", a=1, b=2))
    assert status == 404 and b"Traceback" not in body


def test_a_call_that_is_not_posted_is_405_with_allow(server) -> None:
    status, headers, _ = request(server, "GET", "/CalcService/jsonwsp")
    assert status == 405 and headers.get("Allow") == "POST"


def test_a_body_over_max_request_bytes_is_413_before_it_is_sent(server) -> None:
    # Announce 1 GB and send nothing of it: the answer comes at once, unread.
    sock = socket.create_connection(server, timeout=10)
    try:
        sock.sendall(b"POST /CalcService/jsonwsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000000\r\n\r\n")
        began = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert time.monotonic() - began < 5
    finally:
        sock.close()


def test_chunked_calls_work_within_the_limit_and_are_refused_past_it(server) -> None:
    status, _, body = request(server, "POST", "/CalcService/jsonwsp", iter([call("add", a=2, b=3)]),
                              {"Content-Type": "application/json"}, chunked=True)
    assert status == 200 and json.loads(body)["result"] == 5
    big = call("add", a=2, b=3, padding="p" * (2 * LIMIT))
    status, _, body = request(server, "POST", "/CalcService/jsonwsp", iter([big]),
                              {"Content-Type": "application/json"}, chunked=True)
    assert status == 413 and b"max_request_bytes" in body


def test_calls_within_the_limit_are_answered_as_before(server) -> None:
    base = f"http://{server[0]}:{server[1]}"
    assert jsonwsp_result(base, "CalcService", "add", a=20, b=22) == 42
    status, _, _ = request(server, "GET", "/CalcService/jsonwsp/description")
    assert status == 200


# -- what the log says of a client's mistake ------------------------------------------------


def test_a_client_mistake_is_logged_in_one_line_without_a_traceback(live_server, collect_logs):
    logs = collect_logs("ladon_tasks.faults")
    logging.getLogger("ladon_tasks.faults").setLevel(logging.DEBUG)
    try:
        base = live_server(make_app(["calc_service"])).url
        answer = jsonwsp(base, "CalcService", "noSuchMethod" + "x" * 1000)
        assert answer["type"] == "jsonwsp/fault" and answer["fault"]["code"] == "client"
    finally:
        logging.getLogger("ladon_tasks.faults").setLevel(logging.NOTSET)
    (record,) = [r for r in logs.records if "noSuchMethod" in r.getMessage()]
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "\n" not in record.getMessage() and len(record.getMessage()) < 400


def test_xmlrpc_is_neither_listed_nor_served(server) -> None:
    status, _, page = request(server, "GET", "/CalcService/")
    assert status == 200 and b"jsonrpc10" in page and b"xmlrpc" not in page
    status, _, body = request(server, "POST", "/CalcService/xmlrpc", b"<methodCall/>",
                              {"Content-Type": "text/xml"})
    assert status == 404 and b"Use soap11, soap, jsonwsp or jsonrpc10" in body


def test_a_path_found_good_is_still_checked_as_a_call_every_time() -> None:
    checked = guard()
    assert checked.check(environ("/CalcService/jsonwsp")) is None
    refusal = checked.check(environ("/CalcService/jsonwsp", method="GET"))
    assert refusal is not None and refusal.status.startswith("405")
    refusal = checked.check(environ("/CalcService/jsonwsp", length=str(LIMIT + 1)))
    assert refusal is not None and refusal.status.startswith("413")
    refusal = checked.check(environ("/CalcService/jsonwsp", CONTENT_TYPE="text/xml; charset=nope"))
    assert refusal is not None and refusal.status.startswith("415")


def test_the_guards_caches_stay_bounded_whatever_a_client_sends() -> None:
    checked = guard()
    for n in range(5000):
        checked.check(environ("/CalcService/jsonwsp", CONTENT_TYPE=f"application/json; v={n}"))
        checked.check(environ(f"/CalcService/jsonwsp/{n}"))
    assert len(checked._good_paths) <= 1024 and len(checked._content_types) <= 1024
