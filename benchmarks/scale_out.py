"""Issue 10: celery mode against process mode and against bare Celery, on one Redis.

    /tmp/benchvenv/bin/python benchmarks/scale_out.py            # about 6 minutes
    /tmp/benchvenv/bin/python benchmarks/scale_out.py --quick    # about 2 minutes

Every system gets 2 worker processes on the same private redis-server, and stays up for the
whole run; batches of the systems are interleaved in rotating order, a row is the median.

S1. Tiny tasks end to end: N starts over HTTP (JSON-WSP, 16 clients), then ``tiny_progress``
    of every task not yet done, round after round, until all are (32 clients); tasks/s =
    N / (starts + waiting). Celery mode: the web server sends, ``ladon-tasks worker
    --concurrency 2`` runs. Process mode: the web server's own 2 worker processes. Each under
    gunicorn gthread (1 worker, 32 threads, keep-alive) and werkzeug's threaded server.
    Bare Celery: the same body (returns 1), ``delay()`` per task from this process, then the
    results awaited (``ResultSet.join_native``), on ``celery worker --pool prefork -c 2``,
    no HTTP. Target: celery mode >= 0.8x bare Celery.
S2. ``update_progress`` calls per second inside a celery-mode task (2,000,000 calls in a
    tight loop, measured in the task), beside process mode. Target: >= 200,000/s.
S3. Queue wait: 2 x 60 tasks of 20 ms started at once; on each worker process, the time from
    one task's recorded end to the next one's recorded start (the hand-off of a free
    slot to a waiting task), p50 and p99, celery mode beside process mode (gunicorn).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import report
from calls import Endpoint, task_ids, wait_done
from celery_compare import CeleryWorker, celery_available, celery_version
from load import percentile
from procs import GunicornProcess, RedisProcess, ServerProcess

HERE = Path(__file__).resolve().parent
SERVICE = "BenchService"
CELERY_TARGET = 0.8
PROGRESS_TARGET = 200_000.0
WORKERS = 2


@dataclass(frozen=True)
class Plan:
    tasks: int
    rounds: int
    progress_calls: int
    progress_rounds: int
    naps: int


FULL = Plan(tasks=1_000, rounds=5, progress_calls=2_000_000, progress_rounds=3, naps=60)
QUICK = Plan(tasks=300, rounds=2, progress_calls=500_000, progress_rounds=1, naps=20)


@dataclass
class Rates:
    """The batches of one system: tasks/s of each."""

    label: str
    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


class LadonTasksWorker:
    """``ladon-tasks worker bench_service --concurrency 2`` in a subprocess."""

    def __init__(self, redis_url: str, workdir: Path) -> None:
        command = Path(sys.executable).parent / "ladon-tasks"
        self.log_path = workdir / "ladon-tasks-worker.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(command), "worker", "bench_service", "--path", str(HERE / "services"),
                 "--redis-url", redis_url, "--concurrency", str(WORKERS), "--log-level", "WARNING"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(os.environ, PYTHONPATH=str(HERE / "services")))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def web_servers(redis_url: str, workdir: Path) -> dict[str, Endpoint]:
    """The four web servers: celery and process mode, each under gunicorn and werkzeug."""
    endpoints = {}
    for mode, extra in (("celery", {}), ("process", {"processes": WORKERS})):
        options = {"mode": mode, "redis_url": redis_url, **extra}
        name = f"{mode} mode, gunicorn"
        server: Any = GunicornProcess(f"{mode}-gunicorn", {"kind": "ladon_tasks", "module": "bench_service",
                                                           "options": options}, workdir)
        endpoints[name] = Endpoint(name, server, SERVICE)
        args = ["ladon_tasks", "bench_service", "--mode", mode, "--redis-url", redis_url]
        if mode == "process":
            args += ["--processes", str(WORKERS)]
        name = f"{mode} mode, werkzeug"
        endpoints[name] = Endpoint(name, ServerProcess(f"{mode}-werkzeug", args, workdir), SERVICE)
    return endpoints


def http_batch(endpoint: Endpoint, tasks: int) -> float:
    """tasks/s of ``tasks`` tiny tasks started over HTTP and seen done by ``_progress``."""
    started = time.perf_counter()
    ids = task_ids(endpoint.load([endpoint.request("tiny") for _ in range(tasks)], 16, keep_bodies=True))
    wait_done(endpoint, "tiny", ids, concurrency=32, timeout=300)
    return tasks / (time.perf_counter() - started)


def throughput(endpoints: dict[str, Endpoint], celery: CeleryWorker, plan: Plan,
               say: Callable[[str], None]) -> list[Rates]:
    """S1: interleaved batches of every system, in rotating order."""
    sides: list[tuple[Rates, Callable[[], float]]] = [
        (Rates(label), lambda ep=endpoint: http_batch(ep, plan.tasks))
        for label, endpoint in endpoints.items()]
    bare = Rates(f"bare Celery {celery_version()}, delay() + join_native, no HTTP")

    def celery_batch() -> float:
        submit, wait = celery.batch(plan.tasks)
        return plan.tasks / (submit + wait)

    sides.append((bare, celery_batch))
    for _, batch in sides:  # warm every path once
        batch()
    for turn in range(plan.rounds):
        order = sides[turn % len(sides):] + sides[:turn % len(sides)]
        for side, batch in order:
            side.rates.append(batch())
            say(f"  S1 round {turn + 1}: {side.label}: {side.rates[-1]:,.0f} tasks/s")
    return [side for side, _ in sides]


def progress_rates(endpoints: dict[str, Endpoint], plan: Plan) -> dict[str, float]:
    """S2: update_progress calls/s measured inside a task, median of the rounds."""
    from calls import run_one_task

    rates = {}
    for label in ("celery mode, gunicorn", "process mode, gunicorn"):
        values = [run_one_task(endpoints[label], "progressLoop", calls=plan.progress_calls)
                  for _ in range(plan.progress_rounds)]
        rates[label.split(",")[0]] = statistics.median(values)
    return rates


def queue_waits(endpoint: Endpoint, naps: int) -> list[float]:
    """S3: seconds between a task's end and the next task's start on the same process."""
    count = naps * WORKERS
    ids = task_ids(endpoint.load([endpoint.request("napPid", milliseconds=20) for _ in range(count)], 16,
                                 keep_bodies=True))
    wait_done(endpoint, "napPid", ids, concurrency=8, timeout=300)
    runs: dict[int, list[tuple[float, float]]] = {}
    for task_id in ids:
        progress = endpoint.call("napPid_progress", task_id=task_id)["result"]
        pid = endpoint.call("napPid_result", task_id=task_id)["result"]
        runs.setdefault(pid, []).append((float(progress["starttime"]), float(progress["endtime"])))
    waits = []
    for spans in runs.values():
        spans.sort()
        waits += [following[0] - previous[1] for previous, following in zip(spans, spans[1:], strict=False)]
    return waits


def render(s1: list[Rates], s2: dict[str, float], s3: dict[str, list[float]], plan: Plan) -> str:
    bare = s1[-1].median
    rows = []
    for side in s1:
        ratio = side.median / bare if bare else None
        target = CELERY_TARGET if side.label.startswith("celery") else None
        rows.append([side.label, report.rate(side.median), report.ratio(ratio),
                     f">= {CELERY_TARGET:.2f}x" if target else "-",
                     report.met(ratio, target) if target else "-"])
    out = [report.table(
        f"S1. Tiny tasks end to end, {WORKERS} worker processes each, one Redis "
        f"({plan.rounds} interleaved rounds of {plan.tasks:,}; median tasks/s)",
        ["system", "tasks/s", "vs bare Celery", "target", "met?"], rows)]
    rows = [[mode, report.rate(value), f">= {PROGRESS_TARGET:,.0f}/s" if mode == "celery mode" else "-",
             report.met(value / PROGRESS_TARGET, 1.0) if mode == "celery mode" else "-"]
            for mode, value in s2.items()]
    out.append(report.table(f"S2. update_progress calls/s inside a task ({plan.progress_calls:,} calls, "
                            f"median of {plan.progress_rounds})",
                            ["mode", "calls/s", "target", "met?"], rows))
    rows = [[label, str(len(waits)), report.ms(percentile(waits, 0.5)), report.ms(percentile(waits, 0.99)),
             report.ms(max(waits))] for label, waits in s3.items()]
    out.append(report.table(f"S3. Queue wait: a free worker process to the next waiting task "
                            f"({WORKERS} x {plan.naps} tasks of 20 ms at once)",
                            ["system", "hand-offs", "p50", "p99", "max"], rows))
    return "\n\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    missing = celery_available()
    if missing:
        print(f"scale_out: {missing}", file=sys.stderr)
        return 2
    plan = QUICK if args.quick else FULL

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="ladon-tasks-scale-out-"))
    with contextlib.ExitStack() as stack:
        redis = RedisProcess(workdir)
        stack.callback(redis.stop)
        worker = LadonTasksWorker(redis.url, workdir)
        stack.callback(worker.stop)
        endpoints = web_servers(redis.url, workdir)
        for endpoint in endpoints.values():
            stack.callback(endpoint.server.stop)
        celery = CeleryWorker(redis.url, workdir, processes=WORKERS)
        stack.callback(celery.stop)
        say("S1: throughput")
        s1 = throughput(endpoints, celery, plan, say)
        say("S2: update_progress")
        s2 = progress_rates(endpoints, plan)
        say("S3: queue wait")
        s3 = {label: queue_waits(endpoints[label], plan.naps)
              for label in ("celery mode, gunicorn", "process mode, gunicorn")}
    print(render(s1, s2, s3, plan))
    if args.keep:
        say(f"work directory: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
