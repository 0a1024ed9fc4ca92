"""The cost of one call inside the WSGI application, without HTTP: CPU microseconds.

    python app_cost.py ladon|ladon_tasks MODULE SERVICE [--mode M --redis-url URL]
                       [--calls N] [--repeat R] [--noop-only]

Calls the application object directly with a JSON-WSP request environ, ``N`` times per
method (``noop``, ``tiny``, ``tiny_progress``, ``tiny_result``), in ``R`` batches, and
prints one JSON line: ``{method: cpu_us_per_call}``, the least over the batches. CPU is
the whole process (all threads: the tiny tasks a start runs in thread mode count, worker
processes and Redis do not).
This shows what a task endpoint adds to a call once werkzeug's per-request cost is
out of the picture. Like ``serve.py``, the ``ladon`` kind never imports ladon_tasks.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from typing import Any, Callable

import serve


def _environ(service: str, body: bytes) -> dict:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": f"/{service}/jsonwsp", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json; charset=UTF-8", "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.multithread": True,
        "wsgi.multiprocess": False, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
    }


def _caller(app: Callable, service: str) -> Callable[[bytes], dict]:
    def start_response(status: str, headers: list, exc_info: Any = None) -> None:
        pass

    def call(body: bytes) -> dict:
        return json.loads(b"".join(app(_environ(service, body), start_response)))

    return call


def _body(method: str, **args: Any) -> bytes:
    return json.dumps({"methodname": method, "args": args}).encode()


def _timed(call: Callable[[bytes], dict], bodies: list[bytes]) -> float:
    cpu = time.process_time()
    for body in bodies:
        answer = call(body)
        if answer.get("type") != "jsonwsp/response":
            raise RuntimeError(f"call failed: {answer}")
    return (time.process_time() - cpu) / len(bodies) * 1e6


def _done(call: Callable[[bytes], dict], task_id: str) -> bool:
    result = call(_body("tiny_progress", task_id=task_id)).get("result") or {}
    return bool(result.get("done") or float(result.get("progress") or 0) >= 1.0)


def _wait_done(call: Callable[[bytes], dict], task_id: str) -> None:
    deadline = time.monotonic() + 120
    while not _done(call, task_id):
        if time.monotonic() > deadline:
            raise RuntimeError(f"task {task_id} not done after 120 s")
        time.sleep(0.002)


def measure(app: Callable, service: str, calls: int, tasks: bool, repeat: int) -> dict[str, float]:
    """CPU microseconds per call of each method: the least of ``repeat`` batches.

    Noise on a shared machine only ever adds time, so the fastest batch is the best
    estimate of what a call costs.
    """
    call = _caller(app, service)
    for _ in range(50):
        call(_body("noop"))
    out: dict[str, list[float]] = {}
    for _ in range(repeat):
        out.setdefault("noop", []).append(_timed(call, [_body("noop")] * calls))
        if not tasks:
            continue
        cpu = time.process_time()
        ids = [call(_body("tiny"))["result"]["task_id"] for _ in range(calls)]
        _wait_done(call, ids[-1])  # tasks run in order: the last one done, (nearly) all are
        out.setdefault("tiny", []).append((time.process_time() - cpu) / calls * 1e6)
        for task_id in ids:
            _wait_done(call, task_id)
        out.setdefault("tiny_progress", []).append(
            _timed(call, [_body("tiny_progress", task_id=i) for i in ids]))
        out.setdefault("tiny_result", []).append(
            _timed(call, [_body("tiny_result", task_id=i) for i in ids]))
    return {method: min(values) for method, values in out.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("ladon", "ladon_tasks"))
    parser.add_argument("module")
    parser.add_argument("service")
    parser.add_argument("--mode", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--noop-only", action="store_true", help="the service has no task methods")
    args = parser.parse_args()
    sys.path.insert(0, serve.SERVICES)
    options = argparse.Namespace(mode=args.mode, redis_url=args.redis_url, result_ttl=None,
                                 threads=None, processes=None)
    if args.kind == "ladon":
        app = serve.ladon_app(args.module)
    else:
        app = serve.ladon_tasks_app(args.module, options)
    try:
        print(json.dumps(measure(app, args.service, args.calls, not args.noop_only, args.repeat)), flush=True)
    finally:
        close = getattr(app, "close", None)
        if close is not None:
            close(grace_period=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
