"""Tasks bound to their caller: a task started by an identity answers that identity only,
with the very fault of an unknown id for anyone else, over SOAP 1.1, JSON-WSP and
JSON-RPC, in thread, process and celery mode."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Callable

import pytest
from helpers import jsonwsp, wait_until
from test_lifecycle import CHECKED, SERVICE, Tasks
from test_protocols import PROTOCOLS, Fault, assert_no_traceback, over

from ladon_tasks.ids import new_task_id

#: Every endpoint that takes a task id, with its extra arguments.
ASKING = (("progress", {}), ("result", {}), ("wait", {"timeout": 0.0}), ("cancel", {}), ("dismiss", {}))
PREFIX = "/as/"


class AsUser:
    """WSGI middleware standing in for Apache's authentication: a request to
    ``/as/<name>/...`` is served as ``REMOTE_USER=<name>`` with ``/as/<name>`` as its
    application root; any other request has no REMOTE_USER."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        environ.pop("REMOTE_USER", None)
        if path.startswith(PREFIX):
            name, _, rest = path[len(PREFIX):].partition("/")
            environ["REMOTE_USER"] = name
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + PREFIX + name
            environ["PATH_INFO"] = "/" + rest
        return self.app(environ, start_response)

    def close(self, grace_period: float | None = None) -> list[str]:
        return self.app.close(grace_period)


def as_user(url: str, protocol: str, name: str | None) -> Tasks:
    """The lifecycle service over ``protocol``, asked as ``name`` (None: anonymously)."""
    return Tasks(PROTOCOLS[protocol](url if name is None else f"{url}{PREFIX}{name}"))


def ask(client: Tasks, method: str, suffix: str, task_id: str, **more: Any) -> Any:
    return client.proto.call(SERVICE, f"{method}_{suffix}", task_id=task_id, **more)


def refusal(client: Tasks, method: str, suffix: str, task_id: str, **more: Any) -> Fault:
    with pytest.raises(Fault) as caught:
        ask(client, method, suffix, task_id, **more)
    assert_no_traceback(caught.value)
    return caught.value


def unknown_fault(client: Tasks, method: str, suffix: str, task_id: str, **more: Any) -> tuple:
    """What ``client`` is told of ``task_id``, with the id itself taken out: comparable
    with what it is told of an id never issued."""
    fault = refusal(client, method, suffix, task_id, **more)
    return fault.code, fault.detail, fault.string.replace(task_id, "<id>")


@pytest.fixture
def bound(serve: Callable, live_server: Callable) -> Callable[..., str]:
    """``bound()`` -> the url of the lifecycle service, its callers told by /as/<name>/."""

    def start(**options: Any) -> str:
        app = serve(**options)
        return live_server(AsUser(app)).url

    return start


@pytest.mark.parametrize("protocol", CHECKED)
def test_a_task_started_by_an_identity_answers_it_alone(bound, protocol):
    url = bound()
    alice, bob, nobody = (as_user(url, protocol, name) for name in ("alice", "bob", None))
    with over(alice.proto), over(bob.proto), over(nobody.proto):
        task_id = alice.start("quick", text="hers")
        assert alice.wait_done("quick", task_id)["state"] == "succeeded"
        assert ask(alice, "quick", "result", task_id) == "hers"
        assert alice.progress("quick", task_id)["task_id"] == task_id

        never_issued = new_task_id()
        for other in (bob, nobody):
            for suffix, more in ASKING:
                told = unknown_fault(other, "quick", suffix, task_id, **more)
                assert told == unknown_fault(other, "quick", suffix, never_issued, **more), suffix
                assert told[1] == "TaskNotFound"
        # Neither their cancel nor their dismiss touched it.
        assert alice.progress("quick", task_id)["state"] == "succeeded"
        assert ask(alice, "quick", "result", task_id) == "hers"


@pytest.mark.parametrize("protocol", CHECKED)
def test_a_running_task_cannot_be_cancelled_or_dismissed_by_another_caller(bound, protocol, tmp_path):
    url = bound()
    alice, bob = as_user(url, protocol, "alice"), as_user(url, protocol, "bob")
    with over(alice.proto), over(bob.proto):
        task_id = alice.start("spin", marker=str(tmp_path / "spin"), seconds=30.0)
        wait_until(lambda: alice.progress("spin", task_id)["state"] == "running",
                   message="the task to run")
        for suffix in ("cancel", "dismiss"):
            assert unknown_fault(bob, "spin", suffix, task_id)[1] == "TaskNotFound"
        mine = alice.progress("spin", task_id)
        assert mine["state"] == "running" and not mine["cancel_requested"]
        assert alice.ask("spin", "dismiss", task_id)["task_id"] == task_id
        # Gone: its owner is told it was dismissed, anyone else that no such task exists.
        assert unknown_fault(alice, "spin", "progress", task_id)[1] == "TaskDismissed"
        assert unknown_fault(bob, "spin", "progress", task_id) == \
            unknown_fault(bob, "spin", "progress", new_task_id())


def test_an_expired_task_is_expired_for_its_owner_and_unknown_for_others(bound):
    url = bound(result_ttl=1)
    alice, bob = as_user(url, "jsonwsp", "alice"), as_user(url, "jsonwsp", "bob")
    task_id = alice.start("quick", text="soon gone")
    alice.wait_done("quick", task_id)
    wait_until(lambda: refusal(alice, "quick", "progress", task_id).detail == "TaskExpired"
               if _fails(alice, task_id) else False, timeout=20, message="the record to expire")
    assert unknown_fault(bob, "quick", "result", task_id) == \
        unknown_fault(bob, "quick", "result", new_task_id())


def _fails(client: Tasks, task_id: str) -> bool:
    try:
        ask(client, "quick", "progress", task_id)
    except Fault:
        return True
    return False


@pytest.mark.parametrize("protocol", CHECKED)
def test_a_task_started_without_an_identity_answers_everyone(bound, protocol):
    url = bound()
    nobody, alice = as_user(url, protocol, None), as_user(url, protocol, "alice")
    with over(nobody.proto), over(alice.proto):
        task_id = nobody.start("quick", text="shared")
        assert alice.wait_done("quick", task_id)["state"] == "succeeded"
        assert ask(alice, "quick", "result", task_id) == "shared"
        assert ask(nobody, "quick", "result", task_id) == "shared"


def _post_jsonwsp(url: str, body: dict, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/{SERVICE}/jsonwsp", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_an_application_names_its_callers_with_identify(serve):
    def by_api_key(environ: dict) -> str | None:
        key = environ.get("HTTP_X_API_KEY")
        if key == "broken":
            raise RuntimeError("the key service is down")
        if key == "wrong-type":
            return 42  # type: ignore[return-value]
        return {"k-alice": "alice", "k-bob": "bob"}.get(key or "")

    app = serve(identify=by_api_key)
    start = {"methodname": "quick", "args": {"text": "keyed"}}
    status, text = _post_jsonwsp(app.url, start, {"X-Api-Key": "k-alice"})
    assert status == 200, text
    task_id = json.loads(text)["result"]["task_id"]
    ask_result = {"methodname": "quick_result", "args": {"task_id": task_id}}
    wait_until(lambda: json.loads(_post_jsonwsp(app.url, ask_result, {"X-Api-Key": "k-alice"})[1])
               .get("result") == "keyed", message="alice's result")
    for headers in ({"X-Api-Key": "k-bob"}, {}):
        answer = json.loads(_post_jsonwsp(app.url, ask_result, headers)[1])
        assert answer["type"] == "jsonwsp/fault" and answer["fault"]["detail"] == ["TaskNotFound"], answer
    # identify's own failures are the application's: a plain 500, and no traceback for the caller.
    for key in ("broken", "wrong-type"):
        status, text = _post_jsonwsp(app.url, ask_result, {"X-Api-Key": key})
        assert status == 500 and "Traceback" not in text and "key service" not in text
    assert jsonwsp(app.url, SERVICE, "quick_progress", task_id=task_id)["type"] == "jsonwsp/fault"
