"""Small helpers shared by the tests: waiting on conditions, calling JSON-WSP."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 20.0, interval: float = 0.02,
               message: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def jsonwsp(base_url: str, service: str, method: str, **args: Any) -> dict:
    """POST one JSON-WSP call and return the decoded answer (response or fault)."""
    body = json.dumps({"methodname": method, "args": args}).encode()
    request = urllib.request.Request(
        f"{base_url}/{service}/jsonwsp", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def jsonwsp_result(base_url: str, service: str, method: str, **args: Any) -> Any:
    """The ``result`` of a JSON-WSP call; fails the test on a fault."""
    answer = jsonwsp(base_url, service, method, **args)
    assert answer.get("type") == "jsonwsp/response", answer
    return answer["result"]


def fault_detail(answer: dict) -> str:
    """The detail (the error's name) of a JSON-WSP fault; fails the test on a response."""
    assert answer.get("type") == "jsonwsp/fault", answer
    detail = answer["fault"]["detail"]
    return "".join(detail) if isinstance(detail, list) else detail
