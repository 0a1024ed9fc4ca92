"""A task method without ``**kw`` runs in the engine of the application serving it, in
both modes, like one that takes keywords."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from conftest import make_app
from helpers import jsonwsp_result, wait_until

SERVICE = "OutageService"


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_task_method_without_keywords_runs_in_its_applications_engine(mode: str, live_server: Callable,
                                                                        request: pytest.FixtureRequest):
    options: dict[str, Any] = {"threads": 3}
    if mode == "process":
        options = {"mode": "process", "processes": 1, "redis_url": request.getfixturevalue("redis_url")}
    app = make_app(["outage_service"], **options)
    base = live_server(app).url
    task_id = jsonwsp_result(base, SERVICE, "increment", n=41)["task_id"]
    final = wait_until(lambda: (p := jsonwsp_result(base, SERVICE, "increment_progress", task_id=task_id))
                       ["done"] and p, message="the task to end")
    assert final["state"] == "succeeded", final
    assert jsonwsp_result(base, SERVICE, "increment_result", task_id=task_id) == 42
    assert app.engine.status(task_id).method == "OutageService.increment"
