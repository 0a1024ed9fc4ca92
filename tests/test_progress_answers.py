"""Progress answers over JSON-WSP and JSON-RPC are encoded in one step (orjson): they must
say what Ladon's own path says (which the application takes while it logs response
dicts), for every shape of request, in any charset, and for documents orjson cannot write
(a mirror or id with an integer beyond 64 bits)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Callable

import pytest
from helpers import fault_detail, wait_until
from ladon.server import LOG_RESPONSE_DICT
from test_caller_binding import PREFIX, AsUser
from test_lifecycle import SERVICE

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
