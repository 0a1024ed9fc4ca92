"""Issue 11, P4: what a poll costs inside the application when many threads poll at once.

    /tmp/benchvenv/bin/python benchmarks/poll_threads.py                      # about 2 minutes
    /tmp/benchvenv/bin/python benchmarks/poll_threads.py --baseline e549752 --runs 3

The thread-mode application is called directly (no HTTP, as ``app_cost.py`` does) by 1 and
by 32 threads at once: the plain ``noop``, ``spinFor_progress`` of a running task (two
tasks reporting every 10 ms), ``tiny_progress`` of an ended task and ``tiny_result``.
A cell is the process's CPU microseconds per call (answers kept as bytes, not decoded,
since 2026-12-03 18:30), the least of 5 batches of 8,000 calls
in each of ``--runs`` runs; the runs of this tree and of the baseline commit (a git
worktree, ladon_tasks imported from it) alternate, each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import report
from worktrees import ROOT, baseline_tree

HERE = Path(__file__).resolve().parent
THREADS = (1, 32)
CALLS = 8000
BATCHES = 5
PHASES = ("noop", "running", "ended", "result")


def _batch(call: Callable[[bytes], object], bodies: list[bytes], threads: int) -> float:
    """CPU us per call of ``bodies`` sent by ``threads`` threads at once."""
    share = len(bodies) // threads

    def work(chunk: list[bytes]) -> None:
        for body in chunk:
            call(body)

    chunks = [bodies[i * share:(i + 1) * share] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    cpu = time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.process_time() - cpu) / (share * threads) * 1e6


def _answer_of(app: Callable, service: str) -> Callable[[bytes], bytes]:
    """A call of ``app`` that keeps its answer's bytes (decoding them is no cost of the
    server's: a poll's answer is 4 times a plain call's, and its ``json.loads`` took 3 us)."""
    import app_cost

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        pass

    def call(body: bytes) -> bytes:
        return b"".join(app(app_cost._environ(service, body), start_response))

    return call


def child() -> dict[str, float]:
    """Run in the measured tree's process: ``{"<phase> <threads>": cpu_us}``."""
    import app_cost
    import serve

    sys.path.insert(0, serve.SERVICES)
    options = argparse.Namespace(mode="thread", redis_url=None, result_ttl=None, threads=8, processes=None)
    app = serve.ladon_tasks_app("bench_service", options)
    call = app_cost._caller(app, "BenchService")
    body = app_cost._body
    try:
        ended = [call(body("tiny"))["result"]["task_id"] for _ in range(200)]
        for task_id in ended:
            app_cost._wait_done(call, task_id)
        running = [call(body("spinFor", seconds=3600.0))["result"]["task_id"] for _ in range(2)]
        deadline = time.monotonic() + 60
        while any(call(body("spinFor_progress", task_id=task_id))["result"]["state"] != "running"
                  for task_id in running):
            if time.monotonic() > deadline:
                raise RuntimeError("the spinFor tasks did not start within 60 s")
            time.sleep(0.01)
        phases = {
            "noop": [body("noop")] * CALLS,
            "running": [body("spinFor_progress", task_id=running[i % 2]) for i in range(CALLS)],
            "ended": [body("tiny_progress", task_id=ended[i % 200]) for i in range(CALLS)],
            "result": [body("tiny_result", task_id=ended[i % 200]) for i in range(CALLS)],
        }
        for phase, bodies in phases.items():
            if call(bodies[0]).get("type") != "jsonwsp/response":
                raise RuntimeError(f"{phase}: {call(bodies[0])}")
        answer = _answer_of(app, "BenchService")
        found: dict[str, float] = {}
        for threads in THREADS:
            for _ in range(BATCHES):
                for phase, bodies in phases.items():
                    key = f"{phase} {threads}"
                    found[key] = min(found.get(key, float("inf")), _batch(answer, bodies, threads))
        for task_id in running:
            call(body("spinFor_cancel", task_id=task_id))
        return found
    finally:
        app.close(grace_period=1)


def measured(tree: Path) -> dict[str, float]:
    """One child run with ladon_tasks imported from ``tree``."""
    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(HERE)!r})\n"
            "import json, poll_threads\nprint(json.dumps(poll_threads.child()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(HERE),
                          timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(baseline: str, runs: dict[str, list[dict[str, float]]]) -> str:
    best = {name: {key: min(run[key] for run in found) for key in found[0]} for name, found in runs.items()}
    rows = []
    for threads in THREADS:
        for phase in PHASES:
            key = f"{phase} {threads}"
            then, now = best["baseline"][key], best["now"][key]
            rows.append([phase, str(threads), f"{then:.1f}", f"{now:.1f}", report.ratio(now / then),
                         report.ratio(best["now"][f"noop {threads}"] / now)])
    return report.table(
        f"P4. CPU us per call inside the application, thread mode, 1 and 32 calling threads "
        f"(least of {BATCHES} x {len(runs['now'])} runs)",
        ["call", "threads", f"baseline {baseline}", "now", "now / baseline", "noop / call, now"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="e549752", help="the commit to compare with")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ladon-tasks-poll-threads-"))
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "now": []}
    with baseline_tree(args.baseline, workdir) as tree:
        for turn in range(args.runs):
            order = [("baseline", tree), ("now", ROOT)]
            for name, root in order if turn % 2 == 0 else order[::-1]:
                runs[name].append(measured(root))
                print(f"  P4 run {turn + 1}: {name} done", file=sys.stderr, flush=True)
    print(render(args.baseline, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
