"""Task calls over JSON-WSP, driven by the load generator: start, wait until done, fetch."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

from load import LoadResult, jsonwsp_request, run_load
from procs import ServerProcess

HOST = "127.0.0.1"


@dataclass
class Endpoint:
    """One service of one benchmark server."""

    label: str
    server: ServerProcess
    service: str
    #: Share of the request counts this endpoint gets (a slow baseline gets fewer).
    scale: float = 1.0

    @property
    def port(self) -> int:
        return self.server.port

    def request(self, method: str, **args: Any) -> bytes:
        """The HTTP request calling ``method`` with ``args``."""
        body = json.dumps({"methodname": method, "args": args}).encode()
        return jsonwsp_request(HOST, self.port, self.service, body)

    def load(self, requests: Iterable[bytes], concurrency: int, keep_bodies: bool = False) -> LoadResult:
        return run_load(HOST, self.port, requests, concurrency, keep_bodies=keep_bodies)

    def call(self, method: str, **args: Any) -> dict:
        """One call; the decoded JSON-WSP answer (response or fault)."""
        return json.loads(self.load([self.request(method, **args)], 1, keep_bodies=True).bodies[0])


def task_ids(result: LoadResult) -> list[str]:
    """The task ids in the answers of a run of start calls (faults fail loudly)."""
    ids = []
    for body in result.bodies:
        answer = json.loads(body)
        if answer.get("type") != "jsonwsp/response":
            raise RuntimeError(f"a start call failed: {body[:300]!r}")
        ids.append(answer["result"]["task_id"])
    return ids


def _done(answer: dict) -> tuple[str, bool] | None:
    """``(task_id, done)`` from a progress answer; None for a fault (task not seen yet).

    ladon_tasks says ``done``; Ladon 1.0.7 sets progress 1.0 after the result is stored.
    """
    if answer.get("type") != "jsonwsp/response":
        return None
    result = answer["result"]
    done = result["done"] if "done" in result else float(result.get("progress") or 0.0) >= 1.0
    return result["task_id"], bool(done)


def wait_done(endpoint: Endpoint, method: str, ids: list[str], concurrency: int = 32,
              timeout: float = 120.0) -> float:
    """Poll ``<method>_progress`` of every id until all are done; return the seconds taken.

    Each round asks once about every task not yet seen done. A fault counts as "not yet"
    (Ladon 1.0.7 knows a task only once its thread or process has started) until
    ``timeout``; then the last fault is shown.
    """
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    pending = set(ids)
    progress = f"{method}_progress"
    fault = b""
    while pending:
        result = endpoint.load([endpoint.request(progress, task_id=task_id) for task_id in pending],
                               concurrency, keep_bodies=True)
        for body in result.bodies:
            seen = _done(json.loads(body))
            if seen is None:
                fault = body
            elif seen[1]:
                pending.discard(seen[0])
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{endpoint.label}: {len(pending)} task(s) not done after "
                                   f"{timeout:.0f} s; last fault: {fault[:300]!r}")
            time.sleep(0.005)
    return time.perf_counter() - started


def fetch_results(endpoint: Endpoint, method: str, ids: list[str], concurrency: int) -> LoadResult:
    """Ask ``<method>_result`` once per id (Ladon 1.0.7 forgets a result once fetched)."""
    result_method = f"{method}_result"
    return endpoint.load((endpoint.request(result_method, task_id=task_id) for task_id in ids),
                         concurrency)


def run_one_task(endpoint: Endpoint, method: str, **args: Any) -> Any:
    """Start one task, wait for it, and return its result."""
    answer = endpoint.call(method, **args)
    if answer.get("type") != "jsonwsp/response":
        raise RuntimeError(f"{endpoint.label}: {method} failed: {answer}")
    task_id = answer["result"]["task_id"]
    wait_done(endpoint, method, [task_id], 1)
    answer = endpoint.call(f"{method}_result", task_id=task_id)
    if answer.get("type") != "jsonwsp/response":
        raise RuntimeError(f"{endpoint.label}: {method}_result failed: {answer}")
    return answer["result"]
