"""Hostile and broken XML sent to a live server over ``/soap`` and ``/soap11``: each body
is answered with a SOAP Fault (faultcode Client) in well under a second, nothing it
points at is fetched, and the server answers a normal call right after."""

from __future__ import annotations

import http.client
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator

import pytest
from conftest import LiveServer, make_app
from hostile_bodies import MALFORMED, SOAP_ENV, billion_laughs, envelope, hostile

INTERFACES = ("soap", "soap11")
#: How long a refusal may take, HTTP round trip included.
FAST = 0.5


class Listener:
    """An HTTP server that records every request made to it: external entities and DTDs
    point here, and nothing may ever arrive."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Record(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"<!ENTITY leaked 'LEAKED'>LEAKED")

            def log_message(self, *args: object) -> None:
                pass

        self.hits = hits
        self.server = HTTPServer(("127.0.0.1", 0), Record)
        self.url = f"http://127.0.0.1:{self.server.server_port}/xxe-target"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(make_app(["soap_service"]))
    yield live
    live.stop()


def post(server: LiveServer, path: str, body: bytes) -> tuple[int, bytes, float]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    started = time.perf_counter()
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "text/xml; charset=UTF-8"})
        response = connection.getresponse()
        raw = response.read()
        return response.status, raw, time.perf_counter() - started
    finally:
        connection.close()


def fault_code(raw: bytes) -> str | None:
    """The faultcode of a SOAP Fault envelope, or None if ``raw`` is not one."""
    try:
        fault = ET.fromstring(raw).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    except ET.ParseError:
        return None
    return None if fault is None else fault.findtext("faultcode")


def assert_still_answers(server: LiveServer, interface: str) -> None:
    status, raw, _ = post(server, f"/SoapService/{interface}", envelope("add", "<a>2</a><b>3</b>"))
    assert status == 200, raw
    results = [element.text for element in ET.fromstring(raw).iter() if element.tag.endswith("result")]
    assert results == ["5"], raw


def bodies(listener: Listener) -> dict[str, bytes]:
    return {**hostile(listener.url), **MALFORMED}


BODY_NAMES = sorted({**hostile("http://unused/"), **MALFORMED})


@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize("name", BODY_NAMES)
def test_each_body_is_a_client_fault_at_once(server: LiveServer, listener: Listener, interface: str,
                                             name: str) -> None:
    status, raw, took = post(server, f"/SoapService/{interface}", bodies(listener)[name])
    assert status == 500, raw
    code = fault_code(raw)
    assert code is not None and code.rpartition(":")[2] == "Client", raw
    assert took < FAST, f"{name} took {took:.3f} s"
    assert b"root:" not in raw and b"LEAKED" not in raw and b"lol" * 10 not in raw
    assert listener.hits == []
    assert_still_answers(server, interface)


@pytest.mark.parametrize("interface", INTERFACES)
def test_billion_laughs_at_once_from_many_clients(server: LiveServer, interface: str) -> None:
    body = billion_laughs()
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(server, f"/SoapService/{interface}", body), range(16)))
    assert time.perf_counter() - started < 4 * FAST
    for status, raw, _took in answers:
        assert status == 500 and (fault_code(raw) or "").endswith("Client"), raw
    assert_still_answers(server, interface)
