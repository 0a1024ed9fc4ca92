"""Results too large to keep, in thread and process mode, through a live server: the task
fails at once with ResultTooLarge, is never run again, and the server serves on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import pytest
from conftest import make_app
from helpers import jsonwsp, jsonwsp_result, wait_until

SERVICE = "OutageService"
LIMIT = 10_000


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def blob(self, size: int) -> str:
        return jsonwsp_result(self.base, SERVICE, "blob", size=size)["task_id"]

    def wait_done(self, task_id: str, timeout: float = 30) -> dict:
        return wait_until(lambda: (p := jsonwsp_result(self.base, SERVICE, "blob_progress",
                                                       task_id=task_id))["done"] and p,
                          timeout=timeout, message=f"task {task_id} to end")


@pytest.fixture(params=["thread", "process"])
def serve(request: pytest.FixtureRequest, live_server: Callable) -> Iterator[Callable[..., Client]]:
    apps: list[Any] = []

    def start(redis_url: str | None = None, **options: Any) -> Client:
        if request.param == "process":
            options.update(mode="process", processes=2,
                           redis_url=redis_url or request.getfixturevalue("redis_url"))
        app = make_app(["outage_service"], **options)
        apps.append(app)
        return Client(live_server(app).url)

    yield start


def test_a_result_over_max_result_bytes_fails_the_task_without_a_retry(serve):
    client = serve(max_result_bytes=LIMIT, retries=2, retry_backoff=0)
    too_big, fits = client.blob(5 * LIMIT), client.blob(LIMIT // 2)
    final = client.wait_done(too_big)
    assert (final["state"], final["attempt"]) == ("failed", 1), final
    assert final["error"].startswith("ResultTooLarge: the result is ")
    assert "max_result_bytes" in final["error"]
    answer = jsonwsp(client.base, SERVICE, "blob_result", task_id=too_big)
    assert answer["type"] == "jsonwsp/fault" and "ResultTooLarge" in answer["fault"]["string"]
    assert client.wait_done(fits)["state"] == "succeeded"
    assert len(jsonwsp_result(client.base, SERVICE, "blob_result", task_id=fits)) == LIMIT // 2


def test_a_flood_of_results_too_large_leaves_the_server_serving(serve):
    client = serve(max_result_bytes=LIMIT)
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: client.blob(20 * LIMIT), range(40)))
    finals = [client.wait_done(task_id) for task_id in ids]
    assert {f["state"] for f in finals} == {"failed"}
    assert all(f["error"].startswith("ResultTooLarge:") for f in finals)
    after = client.blob(10)
    assert client.wait_done(after)["state"] == "succeeded"


def test_a_result_over_redis_bulk_limit_fails_clearly_not_lost(live_server, small_bulk_redis):
    app = make_app(["outage_service"], mode="process", processes=1, redis_url=small_bulk_redis.url)
    client = Client(live_server(app).url)
    final = client.wait_done(client.blob(2_000_000), timeout=20)  # not 60 s of retries, then lost
    assert final["state"] == "failed", final
    assert final["error"].startswith("ResultTooLarge:") and "proto-max-bulk-len" in final["error"]
