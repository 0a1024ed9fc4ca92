"""Issue 12: what binding a task to its caller costs a poll, in process (no HTTP).

    .venv-test-3.11/bin/python benchmarks/binding_cost.py            # about 1 minute

B1. One thread-mode TaskWSGIApplication over ``bench_service``, called directly with JSON-WSP
    environs, in interleaved batches (the least CPU per call of each, over the rounds):
    ``noop`` and ``tiny_progress`` with no identity (tasks started anonymously: the
    baseline, nothing bound) and as ``REMOTE_USER=alice`` (her own tasks: ``identify``
    runs, the start records her, every poll compares). The difference, against the plain
    call in process (about a tenth of what a call costs through gunicorn, so the strictest
    denominator there is), is what binding adds; the target is 3%.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

import app_cost
import report
import serve

TARGET = 0.03


def as_user(app: Callable, user: str | None) -> Callable:
    def call(environ: dict, start_response: Callable) -> Any:
        if user is not None:
            environ["REMOTE_USER"] = user
        return app(environ, start_response)

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, serve.SERVICES)
    options = argparse.Namespace(mode="thread", redis_url=None, result_ttl=None, threads=None,
                                 processes=None)
    app = serve.ladon_tasks_app("bench_service", options)
    callers = {name: app_cost._caller(as_user(app, user), "BenchService")
               for name, user in (("anonymous", None), ("alice", "alice"))}
    ids = {}
    for name, call in callers.items():
        ids[name] = [call(app_cost._body("tiny"))["result"]["task_id"] for _ in range(args.calls)]
        for task_id in ids[name]:
            app_cost._wait_done(call, task_id)
    best: dict[tuple[str, str], float] = {}
    for round_number in range(args.rounds):
        order = list(callers) if round_number % 2 == 0 else list(callers)[::-1]
        for name in order:
            call = callers[name]
            for method, bodies in (("noop", [app_cost._body("noop")] * args.calls),
                                   ("tiny_progress", [app_cost._body("tiny_progress", task_id=i)
                                                      for i in ids[name]])):
                cost = app_cost._timed(call, bodies)
                best[(name, method)] = min(best.get((name, method), cost), cost)
    app.close(grace_period=2)
    plain = best[("anonymous", "noop")]
    rows = []
    for method in ("noop", "tiny_progress"):
        unbound, bound = best[("anonymous", method)], best[("alice", method)]
        added = (bound - unbound) / plain
        rows.append([method, f"{unbound:.1f}", f"{bound:.1f}", f"{bound - unbound:+.2f}",
                     f"{added:+.1%}", f"<= {TARGET:.0%}", "yes" if added <= TARGET else "NO"])
    print(report.table(
        f"B1. Binding's cost in process, CPU us per call (least of {args.rounds} rounds of {args.calls})",
        ["call", "anonymous", "as alice", "added", "vs plain call", "target", "met?"], rows,
        [time.strftime("%Y-%m-%d %H:%M"),
         "added/plain: the plain call here is the in-process noop; through gunicorn a call costs "
         "about ten times more CPU, so the share there is a tenth of this"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
