"""A poll of an ended task over JSON-WSP is answered with the bytes encoded for the last
poll of it: the same answer as before, never a stale one (a dismissal, a caller that may
not see it, a mirror, a new expected duration are all answered as without the cache)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Callable

import pytest
from helpers import fault_detail, wait_until
from test_caller_binding import PREFIX, AsUser
from test_lifecycle import SERVICE

from ladon_tasks.ladon_glue.ended_answers import ENDED_ANSWERS, EndedAnswers


def post(url: str, method: str, **document: Any) -> bytes:
    body = json.dumps({"methodname": method, **document}).encode()
    request = urllib.request.Request(f"{url}/{SERVICE}/jsonwsp", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def answer(url: str, method: str, **args: Any) -> dict:
    return json.loads(post(url, method, args=args))


@pytest.fixture
def url(serve: Callable, live_server: Callable) -> str:
    return live_server(AsUser(serve())).url


def ended(url: str, **args: Any) -> str:
    task_id = answer(url, "quick", **args)["result"]["task_id"]
    wait_until(lambda: answer(url, "quick_progress", task_id=task_id)["result"]["done"],
               message="the task to end")
    return task_id


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_an_ended_task_is_answered_with_the_same_bytes_every_time(url):
    task_id = ended(url, text="once")
    first = post(url, "quick_progress", args={"task_id": task_id})
    assert post(url, "quick_progress", args={"task_id": task_id}) == first
    assert json.loads(first)["result"]["state"] == "succeeded"
    kept = [key for key in list(ENDED_ANSWERS._answers) if task_id in key[-1]]
    assert len(kept) == 1 and ENDED_ANSWERS.get(kept[0]) == first  # the second was the kept one
    mirrored = json.loads(post(url, "quick_progress", args={"task_id": task_id}, mirror={"n": 7}))
    assert mirrored["reflection"] == {"n": 7} and mirrored["result"] == json.loads(first)["result"]
    assert "reflection" not in json.loads(post(url, "quick_progress", args={"task_id": task_id}))


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_dismissed_task_is_not_answered_from_its_kept_answer(url):
    task_id = ended(url, text="gone soon")
    post(url, "quick_progress", args={"task_id": task_id})
    answer(url, "quick_dismiss", task_id=task_id)
    fault = answer(url, "quick_progress", task_id=task_id)
    assert fault["type"] == "jsonwsp/fault" and "TaskDismissed" in fault_detail(fault)


@pytest.mark.parametrize("mode", ["thread"])
def test_a_kept_answer_is_no_answer_for_another_caller(url):
    task_id = ended(f"{url}{PREFIX}alice", text="hers")
    assert answer(f"{url}{PREFIX}alice", "quick_progress", task_id=task_id)["result"]["task_id"] == task_id
    fault = answer(f"{url}{PREFIX}bob", "quick_progress", task_id=task_id)
    assert fault["type"] == "jsonwsp/fault" and "TaskNotFound" in fault_detail(fault)


@pytest.mark.parametrize("mode", ["thread"])
def test_a_new_expected_duration_makes_a_new_answer(url):
    task_id = ended(url, text="first")
    before = answer(url, "talker_progress", task_id=ended_talker(url, 0.05))["result"]
    assert before["expected_duration"] > 0
    again = answer(url, "talker_progress", task_id=ended_talker(url, 0.3))["result"]
    # Each answer says the history as it is when asked, kept or not.
    assert answer(url, "talker_progress", task_id=before["task_id"])["result"]["expected_duration"] \
        == again["expected_duration"]
    assert answer(url, "quick_progress", task_id=task_id)["result"]["task_id"] == task_id


def ended_talker(url: str, pause: float) -> str:
    task_id = answer(url, "talker", steps=1, pause=pause)["result"]["task_id"]
    wait_until(lambda: answer(url, "talker_progress", task_id=task_id)["result"]["done"],
               message="the talker to end")
    return task_id


def test_the_kept_answers_are_bounded_oldest_first():
    answers = EndedAnswers(size=3)
    for number in range(5):
        answers.keep(number, f"answer {number}".encode())
    assert [answers.get(number) for number in range(5)] == [None, None, b"answer 2", b"answer 3", b"answer 4"]
    assert ENDED_ANSWERS.size >= 1000
