"""Issue 11: what a poll costs against a plain call; how fast a wait wakes; how good the ETA is.

    /tmp/benchvenv/bin/python benchmarks/polls.py                  # about 8 minutes
    /tmp/benchvenv/bin/python benchmarks/polls.py --quick          # about 1 minute
    /tmp/benchvenv/bin/python benchmarks/polls.py --shared-cores   # servers not on a core of their own

P1. Request rates on one server: the plain ``noop`` of the same service (the reference),
    ``spinFor_progress`` of a running task (``spinFor``, reporting progress every 10 ms),
    ``tiny_progress`` of an ended task and ``tiny_result``; thread and process mode, each
    under gunicorn gthread (1 worker, 32 threads, keep-alive) and werkzeug's threaded
    server, c=1 and c=32. In every round each server runs its four batches back to back
    (forwards in even rounds, backwards in odd ones; the servers in rotating order), so a
    batch is compared with the plain batch next to it: "vs plain" is the median over the
    rounds of those paired ratios, with their middle half beside it. Two tasks run
    ``spinFor`` on the server being measured during its batches, and on no other server.
    The servers' threads have the last core to themselves; the load generator, Redis and
    process mode's worker processes share the others (``cores``), as if the load came from
    another host. Server CPU per request is read to the nanosecond under gunicorn. Targets: a running
    task's ``_progress`` >= 0.95x the plain call in thread mode and >= 0.90x in process
    mode; an ended task's ``_progress`` and ``_result`` >= 0.95x in both.
P2. ``_wait`` wake-up: a 200 ms task is started and waited for at once; the latency is the
    time from the task's recorded end to the wait's answer (same host, same clock), p50 and
    p99 over the samples, each mode under gunicorn.
P3. ETA error of a task of steady speed (``spinFor`` 4 s): |eta - time actually left| as a
    share of the task's duration, read at 25, 50 and 75% progress, without history (the
    method's first run) and with it (the runs after).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cores
import report
from calls import Endpoint, task_ids, wait_done
from foundation import Cell
from load import percentile
from procs import GunicornProcess, RedisProcess, ServerProcess, descendants, precise_cpu_seconds

SERVICE = "BenchService"
KINDS = ("thread", "process")
TARGETS = {("thread", "running"): 0.95, ("process", "running"): 0.90}
ENDED_TARGET = 0.95
PHASES = ("plain", "running", "ended", "result")
NAMES = {"running": "_progress, running", "ended": "_progress, ended", "result": "_result"}


@dataclass(frozen=True)
class Plan:
    counts: dict[int, int]
    rounds: int
    wake_samples: int
    eta_runs: int


FULL = Plan(counts={1: 1000, 32: 3000}, rounds=20, wake_samples=40, eta_runs=3)
QUICK = Plan(counts={1: 300, 32: 600}, rounds=3, wake_samples=10, eta_runs=2)


def place(split: cores.CoreSplit, endpoints: dict, redis_pid: int) -> None:
    """The servers' own threads on the servers' core; their worker processes (process
    mode), Redis and this process's load generator on the others."""
    cores.pin_self(split.others)
    cores.pin(redis_pid, split.others)
    for ep in endpoints.values():
        cores.pin(ep.server.pid, split.servers)
        for child in descendants(ep.server.pid):
            cores.pin(child, split.others)


def servers(redis_url: str, workdir: Path) -> dict[tuple[str, str], Endpoint]:
    """(mode, server kind) -> endpoint, for thread and process mode under gunicorn and werkzeug."""
    found = {}
    for mode in KINDS:
        options: dict[str, Any] = {"mode": mode, "threads": 8}
        if mode == "process":
            options = {"mode": mode, "redis_url": redis_url, "processes": 2}
        name = f"{mode} mode, gunicorn"
        found[(mode, "gunicorn")] = Endpoint(name, GunicornProcess(
            f"{mode}-gunicorn", {"kind": "ladon_tasks", "module": "bench_service", "options": options},
            workdir), SERVICE)
        args = ["ladon_tasks", "bench_service", "--mode", mode]
        if mode == "process":
            args += ["--redis-url", redis_url, "--processes", "2"]
        name = f"{mode} mode, werkzeug"
        found[(mode, "werkzeug")] = Endpoint(name, ServerProcess(f"{mode}-werkzeug", args, workdir), SERVICE)
    return found


def start(ep: Endpoint, method: str, **args: Any) -> str:
    answer = ep.call(method, **args)
    if answer.get("type") != "jsonwsp/response":
        raise RuntimeError(f"{ep.label}: {method} failed: {answer}")
    return answer["result"]["task_id"]


def prepare(ep: Endpoint) -> list[str]:
    """200 ended tasks on ``ep``: the ids the ended phases poll."""
    ended = task_ids(ep.load([ep.request("tiny") for _ in range(200)], 8, keep_bodies=True))
    wait_done(ep, "tiny", ended)
    return ended


@contextlib.contextmanager
def running_tasks(ep: Endpoint) -> Iterator[list[str]]:
    """Two ``spinFor`` tasks running on ``ep`` for the length of the block, then cancelled:
    only the server being measured has tasks at work."""
    running = [start(ep, "spinFor", seconds=3600.0) for _ in range(2)]
    deadline = time.monotonic() + 60
    while any(ep.call("spinFor_progress", task_id=task_id)["result"]["state"] != "running"
              for task_id in running):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ep.label}: the spinFor tasks did not start within 60 s")
        time.sleep(0.005)
    try:
        yield running
    finally:
        for task_id in running:
            ep.call("spinFor_cancel", task_id=task_id)
        wait_done(ep, "spinFor", running)


def requests(ep: Endpoint, phase: str, count: int, ids: dict[str, list[str]]) -> list[bytes]:
    if phase == "plain":
        return [ep.request("noop")] * count
    pool = ids["running" if phase == "running" else "ended"]
    method = {"running": "spinFor_progress", "ended": "tiny_progress", "result": "tiny_result"}[phase]
    return [ep.request(method, task_id=pool[i % len(pool)]) for i in range(count)]


def rates(endpoints: dict, ended: dict[tuple, list[str]], plan: Plan,
          say: Any) -> tuple[dict[tuple, Cell], dict[tuple, list[float]]]:
    """P1: every phase of every server at every concurrency; the cells and, per
    (server, phase, concurrency), each round's rate against the plain batch of that round."""
    cells: dict[tuple, Cell] = {}
    paired: dict[tuple, list[float]] = {}
    keys = list(endpoints)
    for concurrency, count in plan.counts.items():
        for turn in range(plan.rounds):
            shift = turn % len(keys)
            for key in keys[shift:] + keys[:shift]:
                ep = endpoints[key]
                with running_tasks(ep) as running:
                    ids = {"running": running, "ended": ended[key]}
                    got = {}
                    for phase in PHASES if turn % 2 == 0 else PHASES[::-1]:
                        got[phase] = batch(key, ep, phase, count, ids, concurrency, cells)
                for phase in PHASES[1:]:
                    paired.setdefault((key, phase, concurrency), []).append(got[phase] / got["plain"])
            say(f"  P1 c={concurrency} round {turn + 1} done")
    return cells, paired


def batch(key: tuple, ep: Endpoint, phase: str, count: int, ids: dict[str, list[str]],
          concurrency: int, cells: dict[tuple, Cell]) -> float:
    """One batch of ``phase`` calls; its rate (its cell in ``cells`` gets it and its CPU)."""
    before = server_cpu(ep)
    result = ep.load(requests(ep, phase, count, ids), concurrency)
    if result.errors:
        raise RuntimeError(f"{ep.label} {phase}: {result.errors} errors: {result.first_error[:300]!r}")
    cells.setdefault((key, phase, concurrency), Cell()).add(result, server_cpu(ep) - before)
    return result.rate


def server_cpu(ep: Endpoint) -> float:
    """The server's CPU seconds so far: to the nanosecond under gunicorn (its threads live
    as long as it does), in 10 ms ticks under werkzeug (a thread per request)."""
    if isinstance(ep.server, GunicornProcess):
        return precise_cpu_seconds(ep.server.pid)
    return ep.server.cpu_seconds()


def middle_half(values: list[float]) -> str:
    """The 25th to 75th percentile of ``values``, as ``0.91-0.97``."""
    return f"{percentile(values, 0.25):.2f}-{percentile(values, 0.75):.2f}"


def wake_latencies(ep: Endpoint, samples: int) -> list[float]:
    """P2: seconds from each task's recorded end to its wait's answer."""
    latencies = []
    for _ in range(samples):
        task_id = start(ep, "napPid", milliseconds=200)
        answer = ep.call("napPid_wait", task_id=task_id, timeout=20.0)
        arrived = time.time()
        progress = answer["result"]
        if not progress["done"]:
            raise RuntimeError(f"{ep.label}: the wait answered before the end: {progress}")
        latencies.append(arrived - float(progress["endtime"]))
    return latencies


def eta_errors(ep: Endpoint, runs: int, seconds: float = 4.0) -> dict[str, dict[float, float]]:
    """P3: the ETA's error at 25/50/75% progress, as a share of the duration."""
    found: dict[str, dict[float, list[float]]] = {"no history": {}, "with history": {}}
    for run in range(runs):
        task_id = start(ep, "spinFor", seconds=seconds)
        readings: dict[float, tuple[float, float]] = {}
        while True:
            progress = ep.call("spinFor_progress", task_id=task_id)["result"]
            if progress["done"]:
                ended = float(progress["endtime"])
                break
            for mark in (0.25, 0.5, 0.75):
                if mark not in readings and progress["progress"] >= mark:
                    readings[mark] = (time.time(), float(progress["eta"]))
            time.sleep(0.02)
        label = "no history" if run == 0 else "with history"
        for mark, (when, eta) in readings.items():
            found[label].setdefault(mark, []).append(abs(eta - (ended - when)) / seconds)
    return {label: {mark: statistics.median(values) for mark, values in marks.items()}
            for label, marks in found.items()}


def render(cells: dict, paired: dict, endpoints: dict, plan: Plan, wakes: dict, etas: dict,
           placement: str) -> str:
    rows = []
    for (mode, kind), ep in endpoints.items():
        for concurrency in plan.counts:
            plain = cells[((mode, kind), "plain", concurrency)]
            rows.append([ep.label, f"c={concurrency}", "noop (plain)", report.rate(plain.rate), "1.00x", "-",
                         "-", "-", f"{plain.cpu_us:.0f}", "1.00x"])
            for phase in PHASES[1:]:
                cell = cells[((mode, kind), phase, concurrency)]
                ratios = paired[((mode, kind), phase, concurrency)]
                value = statistics.median(ratios)
                target = TARGETS.get((mode, phase), ENDED_TARGET)
                rows.append([ep.label, f"c={concurrency}", NAMES[phase], report.rate(cell.rate),
                             report.ratio(value), middle_half(ratios), f">= {target:.2f}x",
                             report.met(value, target), f"{cell.cpu_us:.0f}",
                             report.ratio(plain.cpu_us / cell.cpu_us)])
    out = [report.table(f"P1. Polls against a plain call on the same server, JSON-WSP ({plan.rounds} rounds; "
                        "vs plain: median of the rounds' paired ratios; server CPU per request, and plain's "
                        "CPU per request over this call's; "
                        f"{placement})",
                        ["server", "c", "call", "req/s", "vs plain", "middle half", "target", "met?",
                         "CPU us", "CPU vs plain"], rows)]
    rows = [[label, str(len(values)), report.ms(percentile(values, 0.5)), report.ms(percentile(values, 0.99)),
             report.ms(max(values))] for label, values in wakes.items()]
    out.append(report.table("P2. _wait wake-up: the task's recorded end to the wait's answer, gunicorn",
                            ["mode", "samples", "p50 ms", "p99 ms", "max ms"], rows))
    rows = [[mode, label, *(f"{marks.get(mark, float('nan')) * 100:.1f}%" for mark in (0.25, 0.5, 0.75))]
            for mode, by_label in etas.items() for label, marks in by_label.items()]
    out.append(report.table("P3. ETA error of a 4 s task of steady speed (|eta - time left| / duration)",
                            ["mode", "history", "at 25%", "at 50%", "at 75%"], rows))
    return "\n\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shared-cores", action="store_true",
                        help="leave the servers and the load generator on the same cores")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="ladon-tasks-polls-"))
    with contextlib.ExitStack() as stack:
        redis = RedisProcess(workdir)
        stack.callback(redis.stop)
        endpoints = servers(redis.url, workdir)
        for ep in endpoints.values():
            stack.callback(ep.server.stop)
        ended = {key: prepare(ep) for key, ep in endpoints.items()}  # process mode's workers are up
        split = None if args.shared_cores else cores.split_cores()
        if split is not None:
            place(split, endpoints, redis.process.pid)
        say("P1: poll rates" + (f" ({split.describe()})" if split else ""))
        cells, paired = rates(endpoints, ended, plan, say)
        say("P2: wake-up latency")
        wakes = {mode: wake_latencies(endpoints[(mode, "gunicorn")], plan.wake_samples) for mode in KINDS}
        say("P3: ETA error")
        etas = {mode: eta_errors(endpoints[(mode, "gunicorn")], plan.eta_runs) for mode in KINDS}
    print(render(cells, paired, endpoints, plan, wakes, etas, split.describe() if split else "cores shared"))
    print(json.dumps({"generated": time.strftime("%Y-%m-%d %H:%M")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
