"""Task methods over real HTTP, with real clients, in thread and in process mode.

Protocols: SOAP 1.1 with zeep, raw JSON-WSP, Ladon's own JSON-WSP client, and JSON-RPC 1.0.
Every ``<m>_result`` is compared with the answer of a plain method of the same rtype
(``tests/services/proto_service.py``) over the same protocol: a task's result must be
typed exactly as a plain call's.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import werkzeug.test
import zeep
from conftest import make_app
from helpers import jsonwsp, wait_until
from lxml import etree
from zeep.helpers import serialize_object
from zeep.plugins import HistoryPlugin

from ladon_tasks import TaskWSGIApplication

EXAMPLES_DIR = str(Path(__file__).resolve().parent.parent / "examples")
TASK_ID = re.compile(r"[A-Za-z0-9_-]{22}")
UNKNOWN_ID = "A" * 22
MALFORMED_IDS = ["not-a-task-id", "A" * 21 + "!"]
PROGRESS_FIELDS = {"task_id", "state", "done", "progress", "duration", "starttime", "createtime",
                   "endtime", "error", "attempt", "cancel_requested", "silent_for", "health",
                   "message", "eta", "expected_duration", "poll_after"}


class Fault(Exception):
    """A fault as any of the clients saw it; ``text`` is every decoded string it carried."""

    def __init__(self, code: str, string: str, detail: str, text: str) -> None:
        super().__init__(f"{code} fault: {string} ({detail})")
        self.code = code.lower().rpartition(":")[2]
        self.string = string
        self.detail = detail.strip()
        self.text = text


def strings(value: Any) -> str:
    """All strings inside a decoded JSON value, joined (quotes unescaped)."""
    if isinstance(value, str):
        return value + "\n"
    if isinstance(value, Mapping):
        return "".join(strings(k) + strings(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "".join(strings(v) for v in value)
    return ""


def typed(value: Any) -> Any:
    """``value`` with the type of every leaf made part of it, so 0, 0.0 and False differ."""
    if isinstance(value, Mapping):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def assert_no_traceback(fault: Fault) -> None:
    assert "Traceback" not in fault.text, fault.text
    assert 'File "' not in fault.text, fault.text


# -- the four clients, behind one small interface --------------------------------------


class Protocol:
    """``call`` returns the client's decoded result or raises Fault; ``canonical`` is what
    must be identical between a task's ``_result`` and the plain twin."""

    name = ""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(self, service: str, method: str, **args: Any) -> Any:
        raise NotImplementedError

    def canonical(self, service: str, method: str, **args: Any) -> Any:
        return typed(self.call(service, method, **args))

    def start(self, service: str, method: str, **args: Any) -> str:
        answer = self.call(service, method, **args)
        assert isinstance(answer, Mapping) and set(answer) == {"task_id"}, answer
        return answer["task_id"]

    def progress(self, service: str, method: str, task_id: str) -> dict:
        return dict(self.call(service, f"{method}_progress", task_id=task_id))

    def result(self, service: str, method: str, task_id: str) -> Any:
        return self.call(service, f"{method}_result", task_id=task_id)

    def fault(self, service: str, method: str, **args: Any) -> Fault:
        with pytest.raises(Fault) as caught:
            self.call(service, method, **args)
        return caught.value


def _json_fault(fault: dict, answer: dict) -> Fault:
    detail = fault.get("detail") or ""
    if isinstance(detail, list):
        detail = "\n".join(detail)
    return Fault(fault["code"], fault["string"], detail, strings(answer))


class RawJsonWsp(Protocol):
    name = "jsonwsp"

    def call(self, service: str, method: str, **args: Any) -> Any:
        answer = jsonwsp(self.base_url, service, method, **args)
        if answer.get("type") == "jsonwsp/fault":
            raise _json_fault(answer["fault"], answer)
        assert answer["type"] == "jsonwsp/response", answer
        assert answer["methodname"] == method
        return answer["result"]


class LadonJsonWspClient(Protocol):
    name = "ladon-jsonwsp-client"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        from ladon.clients.jsonwsp import JSONWSPClient

        if service not in self._clients:
            self._clients[service] = JSONWSPClient(
                description=f"{self.base_url}/{service}/jsonwsp/description")
        return self._clients[service]

    def call(self, service: str, method: str, **args: Any) -> Any:
        response = getattr(self.client(service), method)(**args)
        assert response.status == 200
        answer = response.response_dict
        if answer.get("type") == "jsonwsp/fault":
            raise _json_fault(answer["fault"], answer)
        assert answer["type"] == "jsonwsp/response", answer
        return answer["result"]


class JsonRpc10(Protocol):
    name = "jsonrpc10"

    def call(self, service: str, method: str, **args: Any) -> Any:
        body = json.dumps({"method": method, "params": list(args.values()), "id": 1}).encode()
        request = urllib.request.Request(f"{self.base_url}/{service}/jsonrpc10", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        if answer.get("error"):
            error = answer["error"]
            assert isinstance(error["code"], int) and answer["id"] == 1, answer
            raise _json_fault({"code": error["data"]["faultcode"], "string": error["message"],
                               "detail": error["data"]["detail"]}, answer)
        assert set(answer) >= {"result", "id"} and answer["id"] == 1, answer
        return answer["result"]


def from_zeep(value: Any) -> Any:
    """zeep's objects as plain data: dicts, lists, and 'task-id' spelled 'task_id'."""
    value = serialize_object(value)
    if isinstance(value, Mapping):
        return {key.replace("-", "_"): from_zeep(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_zeep(item) for item in value]
    return value


class Soap11(Protocol):
    name = "soap11"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.history = HistoryPlugin()
        self._clients: dict[str, zeep.Client] = {}

    def client(self, service: str) -> zeep.Client:
        if service not in self._clients:
            self._clients[service] = zeep.Client(f"{self.base_url}/{service}/soap11/description",
                                                 plugins=[self.history])
        return self._clients[service]

    def call(self, service: str, method: str, **args: Any) -> Any:
        try:
            value = self.client(service).service[method](*args.values())
        except zeep.exceptions.Fault as fault:
            envelope = self.history.last_received["envelope"]
            detail = "".join(fault.detail.itertext()) if fault.detail is not None else ""
            raise Fault(fault.code or "", fault.message or "", detail,
                        "\n".join(envelope.itertext())) from None
        return from_zeep(value)

    def canonical(self, service: str, method: str, **args: Any) -> Any:
        """The raw SOAP response, with the method and service names taken out."""
        client = self.client(service)
        with client.settings(raw_response=True):
            response = client.service[method](*args.values())
        assert response.status_code == 200, response.content
        text = response.content.decode("utf-8")
        return text.replace(f"{method}Response", "RESPONSE").replace(f"urn:{service}", "urn:SERVICE")

    def start(self, service: str, method: str, **args: Any) -> str:
        # zeep hands back the only element of TaskInfoResponse by itself.
        answer = self.call(service, method, **args)
        return answer["task_id"] if isinstance(answer, Mapping) else answer

    def progress(self, service: str, method: str, task_id: str) -> dict:
        progress = self.call(service, f"{method}_progress", task_id=task_id)
        # SOAP sends xsd:decimal for floats and an empty element for ''.
        return {key: float(value) if isinstance(value, Decimal) else ("" if value is None else value)
                for key, value in progress.items()}


PROTOCOLS: dict[str, Callable[[str], Protocol]] = {
    cls.name: cls for cls in (Soap11, RawJsonWsp, LadonJsonWspClient, JsonRpc10)}


# -- fixtures ---------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    mode: str
    app: TaskWSGIApplication

    def protocols(self) -> list[Protocol]:
        """One client of each protocol, for this server."""
        return [PROTOCOLS[name](self.url) for name in sorted(PROTOCOLS)]


def _options(mode: str, request: pytest.FixtureRequest) -> dict:
    if mode == "thread":
        return {}
    return {"mode": "process", "redis_url": request.getfixturevalue("redis_url"), "processes": 2,
            "progress_interval": 0.05}


@pytest.fixture(params=["thread", "process"])
def served(request: pytest.FixtureRequest, live_server: Callable) -> Served:
    """calc_service and proto_service on a live server, in thread or process mode.

    Each test goes through the four protocols on one server: a server per protocol
    would cost a worker pool and a server shutdown each.
    """
    app = make_app(["calc_service", "proto_service"], **_options(request.param, request))
    return Served(live_server(app).url, request.param, app)


@contextlib.contextmanager
def over(proto: Protocol) -> Iterator[Protocol]:
    """Name the protocol in the report of any failure inside the block."""
    try:
        yield proto
    except BaseException as error:
        error.add_note(f"protocol: {proto.name}")
        raise


def wait_done(proto: Protocol, service: str, method: str, task_id: str) -> dict:
    def done() -> dict | None:
        progress = proto.progress(service, method, task_id)
        return progress if progress["done"] else None

    return wait_until(done, timeout=30, message=f"{method} task {task_id} to end")


def check_ended(progress: dict, task_id: str, state: str) -> None:
    """The TaskProgressResponse of an ended task: every field, typed."""
    assert set(progress) == PROGRESS_FIELDS, progress
    assert progress["task_id"] == task_id
    assert progress["state"] == state
    assert progress["done"] is True
    for name in ("progress", "duration", "starttime", "createtime", "endtime"):
        assert type(progress[name]) is float, (name, progress)
    # Ladon's contract: 1.0 once the task has ended, however it ended.
    assert progress["progress"] == 1.0
    assert 0 < progress["createtime"] <= progress["starttime"] <= progress["endtime"]
    assert progress["duration"] == pytest.approx(progress["endtime"] - progress["starttime"], abs=1e-3)
    assert isinstance(progress["error"], str)
    assert progress["attempt"] == 1 and type(progress["attempt"]) is int
    assert progress["silent_for"] == 0.0 and progress["health"] == ""
    assert progress["eta"] == 0.0 and progress["poll_after"] > 0 and isinstance(progress["message"], str)
    assert type(progress["expected_duration"]) is float and progress["expected_duration"] >= 0.0
    if state == "succeeded":
        assert progress["error"] == ""
        assert progress["cancel_requested"] is False


# -- results of every rtype ------------------------------------------------------------

ASSEMBLY = {"label": "kit", "count": 2, "ok": True, "main": {"name": "main", "weight": 1.5},
            "parts": [{"name": "p0", "weight": 0.0}, {"name": "p1", "weight": 1.0}], "codes": [0, 1]}
EMPTY_ASSEMBLY = {"label": "", "count": 0, "ok": False, "main": {"name": "main", "weight": 1.5},
                  "parts": [], "codes": []}

#: (task method, arguments, plain twin in ProtoService, expected result as JSON gives it)
RESULT_CASES = [
    ("echoInt", {"value": 42}, "plainInt", 42),
    ("echoInt", {"value": 0}, "plainInt", 0),
    ("echoFloat", {"value": 2.5}, "plainFloat", 2.5),
    ("echoFloat", {"value": 0.0}, "plainFloat", 0.0),
    ("echoBool", {"value": True}, "plainBool", True),
    ("echoBool", {"value": False}, "plainBool", False),
    ("echoString", {"value": "h\u00e9llo \u2713"}, "plainString", "h\u00e9llo \u2713"),
    ("echoString", {"value": ""}, "plainString", ""),
    ("echoBytes", {"value": "caf\u00e9"}, "plainBytes", "caf\u00e9"),
    ("echoBytes", {"value": ""}, "plainBytes", ""),
    ("countTo", {"value": 3}, "plainCountTo", [0, 1, 2]),
    ("countTo", {"value": 0}, "plainCountTo", []),
    ("words", {"value": 2}, "plainWords", ["w0", "w1"]),
    ("words", {"value": 0}, "plainWords", []),
    ("assemble", {"label": "kit", "count": 2}, "plainAssemble", ASSEMBLY),
    ("assemble", {"label": "", "count": 0}, "plainAssemble", EMPTY_ASSEMBLY),
    ("partList", {"count": 2}, "plainPartList",
     [{"name": "p0", "weight": 0.0}, {"name": "p1", "weight": 0.5}]),
    ("partList", {"count": 0}, "plainPartList", []),
]


def as_zeep_gives(value: Any) -> Any:
    """The expected JSON value as zeep decodes SOAP 1.1: floats as Decimal, '' as None,
    lists wrapped in ``{'item': [...]}`` inside LadonTypes."""
    if isinstance(value, bool) or isinstance(value, int):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if value == "":
        return None
    if isinstance(value, Mapping):
        return {key: {"item": as_zeep_gives(item)} if isinstance(item, list) else as_zeep_gives(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [as_zeep_gives(item) for item in value]
    return value


def test_results_of_every_rtype_are_typed_as_a_plain_call(served: Served) -> None:
    for proto in served.protocols():
        with over(proto):
            started = [(case, proto.start("CalcService", case[0], **case[1])) for case in RESULT_CASES]
            for (method, args, plain, expected), task_id in started:
                assert TASK_ID.fullmatch(task_id), task_id
                check_ended(wait_done(proto, "CalcService", method, task_id), task_id, "succeeded")
                # Exactly what the plain method of the same rtype answers, and again when asked again.
                plain_answer = proto.canonical("ProtoService", plain, **args)
                for _ in range(2):
                    assert proto.canonical("CalcService", f"{method}_result", task_id=task_id) == plain_answer
                value = proto.result("CalcService", method, task_id)
                assert typed(value) == typed(proto.call("ProtoService", plain, **args))
                want = as_zeep_gives(expected) if isinstance(proto, Soap11) else expected
                assert typed(value) == typed(want), (method, args, value)


def test_task_gets_the_keywords_of_a_plain_call_plus_update_progress(served: Served) -> None:
    for proto in served.protocols():
        with over(proto):
            task_id = proto.start("CalcService", "keywords")
            wait_done(proto, "CalcService", "keywords", task_id)
            task_keywords = set(proto.result("CalcService", "keywords", task_id).split(","))
            plain_keywords = set(proto.call("ProtoService", "plainKeywords").split(","))
            assert "LADON_METHOD_TC" in plain_keywords
            assert task_keywords == plain_keywords | {"update_progress"}


# -- faults -----------------------------------------------------------------------------


def _post(url: str, body: bytes, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


MALFORMED_REQUESTS = [
    ("jsonwsp", b'{"methodname": "echoInt", "args": {', "application/json"),
    ("jsonwsp", b"not json at all", "application/json"),
    ("jsonrpc10", b'{"method": "echoInt_result", "params": [', "application/json"),
    ("soap11", b"<soap:Envelope", "text/xml"),
]


def test_bad_task_ids_and_plain_faults_are_told_without_traceback(served: Served) -> None:
    for proto in served.protocols():
        with over(proto):
            for endpoint in ("echoInt_progress", "echoInt_result", "assemble_result"):
                fault = proto.fault("CalcService", endpoint, task_id=UNKNOWN_ID)
                assert (fault.code, fault.detail) == ("client", "TaskNotFound"), fault
                assert UNKNOWN_ID in fault.string
                assert_no_traceback(fault)
                for bad in MALFORMED_IDS:
                    fault = proto.fault("CalcService", endpoint, task_id=bad)
                    assert (fault.code, fault.detail) == ("client", "InvalidTaskId"), fault
                    assert "malformed task id" in fault.string
                    assert_no_traceback(fault)
            fault = proto.fault("CalcService", "explode", value=1)
            assert fault.code == "server"
            assert "plain method exploded" in fault.string
            assert_no_traceback(fault)
            assert proto.call("CalcService", "add", a=2, b=3) == 5
    for interface, body, content_type in MALFORMED_REQUESTS:
        status, text = _post(f"{served.url}/CalcService/{interface}", body, content_type)
        assert status in (200, 400, 500), (interface, body, status)
        assert "Traceback" not in text and 'File "' not in text, (interface, body, text)


def test_result_while_running_is_result_not_ready(served: Served, tmp_path: Path) -> None:
    for proto in served.protocols():
        with over(proto):
            gate = tmp_path / f"gate-{proto.name}"
            task_id = proto.start("ProtoService", "waitForFile", path=str(gate))

            def running(proto: Protocol = proto, task_id: str = task_id) -> dict | None:
                progress = proto.progress("ProtoService", "waitForFile", task_id)
                return progress if progress["state"] == "running" and progress["progress"] == 0.25 else None

            progress = wait_until(running, message="the gated task to run")
            assert progress["done"] is False
            assert progress["endtime"] == 0.0 and progress["error"] == ""
            assert 0 < progress["createtime"] <= progress["starttime"]
            assert type(progress["duration"]) is float and progress["duration"] >= 0.0
            fault = proto.fault("ProtoService", "waitForFile_result", task_id=task_id)
            assert (fault.code, fault.detail) == ("client", "ResultNotReady"), fault
            assert "still running" in fault.string
            assert_no_traceback(fault)

            gate.touch()
            check_ended(wait_done(proto, "ProtoService", "waitForFile", task_id), task_id, "succeeded")
            assert proto.result("ProtoService", "waitForFile", task_id) == str(gate)


def test_failing_tasks_report_their_error_without_traceback(served: Served) -> None:
    message = "disque en feu \u00e9"
    for proto in served.protocols():
        with over(proto):
            task_id = proto.start("CalcService", "fail", message=message)
            progress = wait_done(proto, "CalcService", "fail", task_id)
            check_ended(progress, task_id, "failed")
            assert progress["error"] == f"ValueError: {message}"
            for _ in range(2):
                fault = proto.fault("CalcService", "fail_result", task_id=task_id)
                assert (fault.code, fault.detail) == ("server", "TaskFailed"), fault
                assert f"ValueError: {message}" in fault.string
                assert_no_traceback(fault)

            task_id = proto.start("CalcService", "wrongType", value=3)
            progress = wait_done(proto, "CalcService", "wrongType", task_id)
            check_ended(progress, task_id, "failed")
            error = progress["error"]
            assert "int" in error and "str" in error, error
            assert "Traceback" not in error and 'File "' not in error
            fault = proto.fault("CalcService", "wrongType_result", task_id=task_id)
            assert (fault.code, fault.detail) == ("server", "TaskFailed"), fault
            assert error in fault.string
            assert_no_traceback(fault)


def test_debug_shows_tracebacks(live_server: Callable) -> None:
    server = live_server(make_app(["calc_service"], debug=True))
    answer = jsonwsp(server.url, "CalcService", "explode", value=1)
    assert answer["type"] == "jsonwsp/fault"
    assert "Traceback" in strings(answer["fault"])
    assert "plain method exploded" in strings(answer["fault"])
    fault = Soap11(server.url).fault("CalcService", "explode", value=1)
    assert "Traceback" in fault.text and 'File "' in fault.text


# -- descriptions -----------------------------------------------------------------------

#: Task method -> its plain twin in ProtoService (same rtype).
TWINS = {"echoInt": "plainInt", "echoFloat": "plainFloat", "echoBool": "plainBool",
         "echoString": "plainString", "echoBytes": "plainBytes", "countTo": "plainCountTo",
         "words": "plainWords", "assemble": "plainAssemble", "partList": "plainPartList"}


def _description(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _wsdl_messages(url: str) -> dict[str, str]:
    """``{message name: "part:type ..."}`` of a WSDL, types without namespace prefix
    (prefixes are numbered per WSDL)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        wsdl = etree.fromstring(response.read())
    found = {}
    for message in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/}message"):
        parts = message.findall("{http://schemas.xmlsoap.org/wsdl/}part")
        found[message.get("name")] = " ".join(
            f"{part.get('name')}:{part.get('type').rpartition(':')[2]}" for part in parts)
    return found


#: The endpoints every task method gets that answer a TaskProgressResponse.
PROGRESS_ENDPOINTS = ("progress", "cancel", "dismiss")


def test_descriptions_list_every_task_endpoint(live_server: Callable) -> None:
    url = live_server(make_app(["calc_service", "proto_service"])).url

    calc = _description(f"{url}/CalcService/jsonwsp/description")
    proto = _description(f"{url}/ProtoService/jsonwsp/description")
    methods = calc["methods"]
    for method, twin in TWINS.items():
        assert methods[method]["ret_info"]["type"] == "TaskInfoResponse"
        assert list(methods[method]["params"]) == list(proto["methods"][twin]["params"])
        answers = {f"{method}_{suffix}": "TaskProgressResponse" for suffix in PROGRESS_ENDPOINTS}
        answers[f"{method}_result"] = proto["methods"][twin]["ret_info"]["type"]
        for endpoint, ret_type in answers.items():
            assert methods[endpoint]["ret_info"]["type"] == ret_type, endpoint
            assert list(methods[endpoint]["params"]) == ["task_id"]
            assert methods[endpoint]["params"]["task_id"]["type"] == "string"
        wait = methods[f"{method}_wait"]
        assert wait["ret_info"]["type"] == "TaskProgressResponse"
        assert {name: spec["type"] for name, spec in wait["params"].items()} == {
            "task_id": "string", "timeout": "float"}
    assert methods["countTo_result"]["ret_info"]["type"] == ["number"]
    assert methods["partList_result"]["ret_info"]["type"] == ["Part"]
    types = calc["types"]
    assert {name: spec["type"] for name, spec in types["TaskProgressResponse"].items()} == {
        "task_id": "string", "state": "string", "done": "boolean", "progress": "float",
        "duration": "float", "starttime": "float", "createtime": "float", "endtime": "float",
        "error": "string", "attempt": "number", "cancel_requested": "boolean", "silent_for": "float",
        "health": "string", "message": "string", "eta": "float", "expected_duration": "float",
        "poll_after": "float"}
    assert {name: spec["type"] for name, spec in types["TaskInfoResponse"].items()} == {"task_id": "string"}
    assert types["Assembly"] == proto["types"]["Assembly"]
    assert "add_progress" not in methods and "add_result" not in methods

    calc_wsdl = _wsdl_messages(f"{url}/CalcService/soap11/description")
    proto_wsdl = _wsdl_messages(f"{url}/ProtoService/soap11/description")
    operations = zeep.Client(f"{url}/CalcService/soap11/description").service._binding._operations
    for method, twin in TWINS.items():
        endpoints = [f"{method}_{suffix}" for suffix in (*PROGRESS_ENDPOINTS, "result")]
        assert {method, *endpoints} <= set(operations)
        assert calc_wsdl[method] == proto_wsdl[twin]
        assert calc_wsdl[f"{method}Response"] == "result:TaskInfoResponse"
        assert {calc_wsdl[endpoint] for endpoint in endpoints} == {"task-id:string"}
        for suffix in (*PROGRESS_ENDPOINTS, "wait"):
            assert calc_wsdl[f"{method}_{suffix}Response"] == "result:TaskProgressResponse"
        assert f"{method}_wait" in operations
        assert calc_wsdl[f"{method}_wait"] in ("task-id:string timeout:decimal",
                                                "task-id:string timeout:float")
        assert calc_wsdl[f"{method}_resultResponse"] == proto_wsdl[f"{twin}Response"]
    assert "add_progress" not in operations


# -- multi-process servers in thread mode ------------------------------------------------


def test_thread_mode_under_a_multiprocess_server_says_why_a_task_is_missing() -> None:
    app = make_app(["calc_service"])
    client = werkzeug.test.Client(app)
    environ = {"wsgi.multiprocess": True}

    def call(method: str, **args: Any) -> dict:
        response = client.post("/CalcService/jsonwsp", data=json.dumps({"methodname": method, "args": args}),
                               content_type="application/json", environ_overrides=environ)
        return json.loads(response.get_data())

    try:
        for endpoint in ("echoInt_progress", "echoInt_result"):
            fault = call(endpoint, task_id=UNKNOWN_ID)["fault"]
            assert fault["detail"] == ["TaskNotFound"]
            assert "multiprocessing mode" in fault["string"]
            assert "Traceback" not in strings(fault)
        # A task this process started is found all the same.
        task_id = call("echoInt", value=7)["result"]["task_id"]
        wait_until(lambda: call("echoInt_progress", task_id=task_id)["result"]["done"])
        assert call("echoInt_result", task_id=task_id)["result"] == 7
    finally:
        app.close(grace_period=5)


# -- services written for Ladon alone ----------------------------------------------------


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_unchanged_ladon_service_module(mode: str, request: pytest.FixtureRequest,
                                        live_server: Callable) -> None:
    import ladon.types.tasktype as ladon_tasktype

    app = TaskWSGIApplication(["task_service"], [EXAMPLES_DIR], debug=False, **_options(mode, request))
    server = live_server(app)
    from task_service import TaskService

    # Ladon's built-in tasktype was never installed on the class.
    assert not hasattr(TaskService, "_task_taskExample")
    for name, ladon_function in (("taskExample", ladon_tasktype.task_starter),
                                 ("taskExample_progress", ladon_tasktype.task_progress),
                                 ("taskExample_result", ladon_tasktype.task_result)):
        assert getattr(TaskService, name).__code__ is not ladon_function.__code__, name

    description = _description(f"{server.url}/TaskService/jsonwsp/description")
    assert set(description["types"]["TaskProgressResponse"]) == PROGRESS_FIELDS
    assert description["methods"]["taskExample_result"]["ret_info"]["type"] == "number"

    # Both tasks run at once: one started over JSON-WSP, one over SOAP.
    protocols = [RawJsonWsp(server.url), Soap11(server.url)]
    started = [(proto, proto.start("TaskService", "taskExample", session_id="s1", counter=7))
               for proto in protocols]
    for proto, task_id in started:
        assert TASK_ID.fullmatch(task_id), task_id
        assert not re.fullmatch(r"[0-9a-f]{40}", task_id)
        seen: list[float] = []

        def done(proto: Protocol = proto, task_id: str = task_id, seen: list = seen) -> dict | None:
            progress = proto.progress("TaskService", "taskExample", task_id)
            seen.append(progress["progress"])
            return progress if progress["done"] else None

        check_ended(wait_until(done, timeout=30), task_id, "succeeded")
        assert seen == sorted(seen)
        assert proto.result("TaskService", "taskExample", task_id) == 7
        assert proto.call("TaskService", "add", a=1, b=2) == 3
        fault = proto.fault("TaskService", "taskExample_result", task_id=UNKNOWN_ID)
        assert fault.detail == "TaskNotFound"
