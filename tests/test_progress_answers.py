"""Progress answers over JSON-WSP and JSON-RPC are encoded in one step (orjson): they must
say what Ladon's own path says (which the application takes while it logs response
dicts), for every shape of request, in any charset, and for documents orjson cannot write
(a mirror or id with an integer beyond 64 bits).

A request that gives the one string ``task_id`` to an endpoint taking nothing else goes
the dispatcher's short way (no service instance, no argument converter): it must say
exactly what the full way says, in every protocol and argument style, for every such
endpoint, to the task's own caller only."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any, Callable

import pytest
from helpers import fault_detail, wait_until
from ladon.server import LOG_RESPONSE_DICT
from test_caller_binding import PREFIX, AsUser
from test_lifecycle import SERVICE

from ladon_tasks.ladon_glue.dispatch import TaskDispatcher

#: Text beyond ASCII and beyond the BMP, quotes and a control character.
SAID = 'gr\u00f6\u00dfe \u2713 "quoted" \\ tab\t \U0001f680'


def post(url: str, interface: str, document: dict, charset: str = "UTF-8") -> tuple[bytes, str]:
    """The raw answer and its Content-Type."""
    body = json.dumps(document).encode(charset)
    request = urllib.request.Request(f"{url}/{SERVICE}/{interface}", data=body,
                                     headers={"Content-Type": f"application/json; charset={charset}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read(), response.headers["Content-Type"]


def wsp(url: str, method: str, charset: str = "UTF-8", **document: Any) -> dict:
    raw, _ = post(url, "jsonwsp", {"methodname": method, **document}, charset)
    return json.loads(raw.decode(charset))


@pytest.fixture
def app(serve: Callable) -> Any:
    return serve()


@pytest.fixture
def url(app: Any, live_server: Callable) -> str:
    return live_server(AsUser(app)).url


def ladons_path(app: Any, ask: Callable[[], Any]) -> Any:
    """What ``ask()`` gets while the application answers through Ladon's own path."""
    before, app.logging = app.logging, LOG_RESPONSE_DICT
    try:
        return ask()
    finally:
        app.logging = before


def ended_chatter(url: str, text: str = SAID) -> str:
    task_id = wsp(url, "chatter", args={"text": text})["result"]["task_id"]
    wait_until(lambda: wsp(url, "chatter_progress", args={"task_id": task_id})["result"]["done"],
               message="the task to end")
    return task_id


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_progress_answer_says_what_ladons_path_says(app, url):
    task_id = ended_chatter(url)
    raw, content_type = post(url, "jsonwsp", {"methodname": "chatter_progress", "args": {"task_id": task_id}})
    fast = json.loads(raw)
    assert content_type.startswith("application/json")
    slow_raw, _ = ladons_path(app, lambda: post(url, "jsonwsp", {"methodname": "chatter_progress",
                                                                 "args": {"task_id": task_id}}))
    assert b'"type":"jsonwsp/response"' in raw and b'"type": "jsonwsp/response"' in slow_raw  # two paths
    assert fast == json.loads(slow_raw)
    assert fast["type"] == "jsonwsp/response" and fast["methodname"] == "chatter_progress"
    assert fast["servicename"] == SERVICE and "reflection" not in fast
    result = fast["result"]
    assert result["message"] == SAID and result["state"] == "succeeded" and result["done"] is True
    assert "gr\u00f6\u00dfe \u2713".encode() in raw and "\U0001f680".encode() in raw  # UTF-8, not escaped
    assert {type(value) for value in result.values()} <= {str, bool, float, int}
    assert type(result["attempt"]) is int and type(result["progress"]) is float


@pytest.mark.parametrize("mode", ["thread"])
def test_any_text_reaches_a_caller_in_another_charset(url):
    task_id = ended_chatter(url)
    for charset in ("ISO-8859-1", "ascii", "UTF-16"):
        answer = wsp(url, "chatter_progress", charset=charset, args={"task_id": task_id})
        assert answer["result"]["message"] == SAID
    lone = ended_chatter(url, "half a pair: \udc80")
    assert wsp(url, "chatter_progress", args={"task_id": lone})["result"]["message"] == "half a pair: \udc80"


@pytest.mark.parametrize("mode", ["thread"])
def test_the_mirror_comes_back_and_one_orjson_cannot_write_takes_ladons_path(url):
    task_id = ended_chatter(url, "mirrored")
    mirror = {"n": 7, "list": [1, "two", None, True], "text": SAID}
    answer = wsp(url, "chatter_progress", args={"task_id": task_id}, mirror=mirror)
    assert answer["reflection"] == mirror and answer["result"]["message"] == "mirrored"
    huge = {"big": 2 ** 70}  # beyond orjson's 64-bit integers
    raw, _ = post(url, "jsonwsp", {"methodname": "chatter_progress", "args": {"task_id": task_id},
                                   "mirror": huge})
    answer = json.loads(raw)
    assert answer["reflection"] == huge and answer["result"] == wsp(
        url, "chatter_progress", args={"task_id": task_id})["result"]


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_jsonrpc_progress_answers_in_both_versions(url):
    task_id = ended_chatter(url)
    expected = wsp(url, "chatter_progress", args={"task_id": task_id})["result"]
    one, _ = post(url, "jsonrpc10", {"method": "chatter_progress", "params": [task_id], "id": "a-1"})
    assert json.loads(one) == {"result": expected, "error": None, "id": "a-1"}
    two, _ = post(url, "jsonrpc10", {"jsonrpc": "2.0", "method": "chatter_progress",
                                     "params": {"task_id": task_id}, "id": 42})
    assert json.loads(two) == {"jsonrpc": "2.0", "result": expected, "id": 42}
    huge, _ = post(url, "jsonrpc10", {"method": "chatter_progress", "params": [task_id], "id": 2 ** 70})
    assert json.loads(huge) == {"result": expected, "error": None, "id": 2 ** 70}


@pytest.mark.parametrize("mode", ["thread"])
def test_a_running_task_is_answered_alike_on_both_paths(app, url):
    task_id = wsp(url, "talker", args={"steps": 400, "pause": 0.01})["result"]["task_id"]
    wait_until(lambda: wsp(url, "talker_progress", args={"task_id": task_id})["result"]["message"],
               message="the talker to say something")
    fast = wsp(url, "talker_progress", args={"task_id": task_id})["result"]
    slow = ladons_path(app, lambda: wsp(url, "talker_progress", args={"task_id": task_id}))["result"]
    moving = {"progress", "duration", "silent_for", "message", "eta", "poll_after"}
    assert fast["state"] == slow["state"] == "running"
    def steady(result: dict) -> dict:
        return {key: value for key, value in result.items() if key not in moving}

    assert steady(fast) == steady(slow)
    assert fast["message"].startswith("step ") and slow["progress"] >= fast["progress"] > 0
    wsp(url, "talker_cancel", args={"task_id": task_id})


@pytest.mark.parametrize("mode", ["thread"])
def test_faults_and_other_callers_are_answered_as_before(url):
    task_id = ended_chatter(f"{url}{PREFIX}alice", "hers")
    alice = wsp(f"{url}{PREFIX}alice", "chatter_progress", args={"task_id": task_id})
    assert alice["result"]["message"] == "hers"
    fault = wsp(f"{url}{PREFIX}bob", "chatter_progress", args={"task_id": task_id})
    assert fault["type"] == "jsonwsp/fault" and "TaskNotFound" in fault_detail(fault)
    wsp(f"{url}{PREFIX}alice", "chatter_dismiss", args={"task_id": task_id})
    fault = wsp(f"{url}{PREFIX}alice", "chatter_progress", args={"task_id": task_id})
    assert fault["type"] == "jsonwsp/fault" and "TaskDismissed" in fault_detail(fault)


# -- the short way ---------------------------------------------------------------------

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def jsonwsp_body(method: str, task_id: str) -> bytes:
    return json.dumps({"methodname": method, "args": {"task_id": task_id}, "mirror": 7}).encode()


def jsonrpc_by_position(method: str, task_id: str) -> bytes:
    return json.dumps({"method": method, "params": [task_id], "id": "p"}).encode()


def jsonrpc_by_name(method: str, task_id: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": {"task_id": task_id}, "id": 3}).encode()


def soap_body(method: str, task_id: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" '
            f'xmlns:ns="urn:{SERVICE}"><SOAP-ENV:Body><ns:{method}><task_id>{task_id}</task_id>'
            f"</ns:{method}></SOAP-ENV:Body></SOAP-ENV:Envelope>").encode()


#: (interface, body builder, content type) of every way to ask.
STYLES = {
    "jsonwsp": ("jsonwsp", jsonwsp_body, "application/json"),
    "jsonrpc by position": ("jsonrpc10", jsonrpc_by_position, "application/json"),
    "jsonrpc by name": ("jsonrpc10", jsonrpc_by_name, "application/json"),
    "soap": ("soap11", soap_body, "text/xml; charset=UTF-8"),
}


def ask(url: str, style: str, method: str, task_id: str, user: str | None = None) -> bytes:
    interface, body, content_type = STYLES[style]
    root = f"{url}{PREFIX}{user}" if user else url
    request = urllib.request.Request(f"{root}/{SERVICE}/{interface}", data=body(method, task_id),
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()
    except urllib.error.HTTPError as error:  # a SOAP fault comes with HTTP 500
        return error.read()


def meaning(raw: bytes) -> Any:
    """What an answer says, whatever its spacing (JSON) or namespace prefixes (SOAP)."""
    if raw.lstrip().startswith(b"<"):
        return re.sub(r"\s+", " ", re.sub(rb"<(/?)[\w-]+:", rb"<\1", raw).decode()).strip()
    return json.loads(raw)


@pytest.fixture
def full_way_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the methods the dispatcher calls the full way (service instance and all)."""
    called: list[str] = []
    full_way = TaskDispatcher._call

    def counted(self: TaskDispatcher, method: Any, *args: Any) -> Any:
        called.append(method.name())
        return full_way(self, method, *args)

    monkeypatch.setattr(TaskDispatcher, "_call", counted)
    return called


@pytest.mark.parametrize("mode", ["thread", "process"])
@pytest.mark.parametrize("style", list(STYLES))
def test_polls_take_the_short_way_and_answer_what_the_full_way_does(app, url, full_way_calls, style):
    task_id = ended_chatter(url, "said")
    for method in ("chatter_progress", "chatter_result", "chatter_cancel"):
        full_way_calls.clear()
        short = ask(url, style, method, task_id)
        assert full_way_calls == [], (method, full_way_calls)
        full = ladons_path(app, lambda method=method: ask(url, style, method, task_id))
        assert full_way_calls == [method]
        assert meaning(short) == meaning(full), method
    said = meaning(ask(url, style, "chatter_progress", task_id))
    assert ("said" in said) if isinstance(said, str) else said["result"]["message"] == "said"


@pytest.mark.parametrize("mode", ["thread"])
@pytest.mark.parametrize("style", list(STYLES))
def test_a_dismissal_the_short_way_forgets_the_task(app, url, full_way_calls, style):
    task_id = ended_chatter(url, "said")
    full_way_calls.clear()
    first = meaning(ask(url, style, "chatter_dismiss", task_id))
    assert full_way_calls == []
    assert "succeeded" in json.dumps(first)
    gone = ask(url, style, "chatter_progress", task_id)
    assert b"TaskDismissed" in gone and task_id.encode() in gone
    assert meaning(gone) == meaning(ladons_path(app, lambda: ask(url, style, "chatter_progress", task_id)))


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_the_short_way_answers_the_tasks_own_caller_only(app, url, full_way_calls):
    task_id = ended_chatter(f"{url}{PREFIX}alice", "said")
    full_way_calls.clear()
    assert wsp_result(ask(url, "jsonwsp", "chatter_result", task_id, user="alice")) == 4
    for stranger in ("bob", None):
        for method in ("chatter_progress", "chatter_result", "chatter_cancel", "chatter_dismiss"):
            answer = json.loads(ask(url, "jsonwsp", method, task_id, user=stranger))
            assert answer["type"] == "jsonwsp/fault" and answer["fault"]["detail"] == ["TaskNotFound"]
    assert full_way_calls == []
    assert wsp_result(ask(url, "jsonwsp", "chatter_result", task_id, user="alice")) == 4


def wsp_result(raw: bytes) -> Any:
    answer = json.loads(raw)
    assert answer["type"] == "jsonwsp/response", answer
    return answer["result"]
