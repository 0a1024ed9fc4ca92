"""C1: time from ``<m>_cancel`` to state ``cancelled``, over HTTP JSON-WSP.

One sample: start a task, poll ``<m>_progress`` until it is ``running`` (for the
cooperative task: until it has reported progress, so it is inside its loop), then send
``<m>_cancel`` and poll ``<m>_progress`` back to back until the state is ``cancelled``.
The time is from just before the cancel request is sent to the arrival of the first
answer that says ``cancelled`` (the cancel answer itself, if it already does). Polls
are sequential HTTP requests (werkzeug, a connection each, about 1-2 ms apart here),
which bounds the resolution of the cooperative rows.

- cooperative: ``LifecycleService.cooperative`` calls update_progress about every
  millisecond; the cancel is seen at its next call, which raises CancelRequested.
- killed: ``LifecycleService.sleeper`` sleeps without ever calling update_progress, so it
  ends only when ``cancel_grace`` (0.5 s on these servers) runs out: process mode kills
  and replaces its worker process, thread mode records it cancelled and abandons the
  thread. The time is then grace + detection + kill.

After each sample the task's ``_result`` must be a ``TaskCancelled`` fault.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import report
from calls import Endpoint
from load import percentile

METHODS = {"cooperative": "cooperative", "killed": "sleeper"}
#: How long a sample's task would run if it were not cancelled (seconds).
TASK_SECONDS = 20.0
#: The sleeper's own length: longer than the grace, short enough that abandoned thread-mode
#: threads end soon (at most a few at once, well under the pool's ``threads``).
SLEEP_SECONDS = 3.0
CANCEL_GRACE = 0.5


@dataclass
class Samples:
    """Every sample of one (kind, server) cell."""

    kind: str
    label: str
    seconds: list[float] = field(default_factory=list)
    cancel_answer: list[float] = field(default_factory=list)
    polls: int = 0
    errors: list[str] = field(default_factory=list)

    def p(self, fraction: float) -> float | None:
        return percentile(self.seconds, fraction) if self.seconds else None


def _result(answer: dict) -> dict:
    if answer.get("type") != "jsonwsp/response":
        raise RuntimeError(json.dumps(answer)[:400])
    return answer["result"]


def _poll_until(ep: Endpoint, method: str, task_id: str, done, timeout: float) -> tuple[dict, int]:
    """Poll ``<method>_progress`` until ``done(result)``; ``(result, polls)``."""
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        result = _result(ep.call(f"{method}_progress", task_id=task_id))
        polls += 1
        if done(result):
            return result, polls
        if time.monotonic() > deadline:
            raise RuntimeError(f"task {task_id}: still {result.get('state')} after {timeout:.0f} s: "
                               f"{json.dumps(result)[:300]}")


def sample(ep: Endpoint, kind: str, into: Samples, timeout: float = 30.0,
           cancel_via: Endpoint | None = None) -> None:
    """One cancel of a running task of ``kind``; adds its time to ``into``.

    ``cancel_via``: send the cancel to this server (another one on the same Redis)."""
    method = METHODS[kind]
    seconds = TASK_SECONDS if kind == "cooperative" else SLEEP_SECONDS
    task_id = _result(ep.call(method, seconds=seconds))["task_id"]
    if kind == "cooperative":
        def ready(r: dict) -> bool:
            return r["state"] == "running" and float(r.get("progress") or 0) > 0
    else:
        def ready(r: dict) -> bool:
            return r["state"] == "running"
    _poll_until(ep, method, task_id, ready, timeout)
    clock = time.perf_counter
    started = clock()
    answer = _result((cancel_via or ep).call(f"{method}_cancel", task_id=task_id))
    into.cancel_answer.append(clock() - started)
    polls = 0
    if answer["state"] != "cancelled":
        if answer["state"] != "running" and answer["state"] != "queued":
            raise RuntimeError(f"{ep.label}: cancel of a running task answered {answer}")
        _, polls = _poll_until(ep, method, task_id, lambda r: r["state"] == "cancelled", timeout)
    into.seconds.append(clock() - started)
    into.polls += polls
    fetched = ep.call(f"{method}_result", task_id=task_id)
    if "TaskCancelled" not in json.dumps(fetched):
        into.errors.append(f"_result of a cancelled task answered {json.dumps(fetched)[:200]}")


Row = tuple[str, str, Endpoint, "Endpoint | None"]  # kind, label, server, server to cancel on


def measure(rows: list[Row], samples: int, say=print) -> list[Samples]:
    """``samples`` cancels per row, rows of a kind interleaved sample by sample."""
    cells = [Samples(kind, label) for kind, label, _, _ in rows]
    for kind, _, ep, via in rows:  # warm up: pools, imports, first worker processes
        if kind == "cooperative":
            sample(ep, kind, Samples("warm-up", ep.label), cancel_via=via)
    for kind in METHODS:
        mine = [(cell, row) for cell, row in zip(cells, rows, strict=True) if row[0] == kind]
        say(f"  {kind}: {samples} cancel(s) x {len(mine)} server(s)")
        for _ in range(samples):
            for cell, (_, _, ep, via) in mine:
                sample(ep, kind, cell, cancel_via=via)
    return cells


def table(cells: list[Samples], samples: int, grace: float = CANCEL_GRACE) -> str:
    rows = []
    for cell in cells:
        p50, p99 = cell.p(0.50), cell.p(0.99)
        rows.append([cell.kind, cell.label, len(cell.seconds), report.ms(p50), report.ms(p99),
                     report.ms(max(cell.seconds) if cell.seconds else None),
                     report.ms(percentile(cell.cancel_answer, 0.50)),
                     f"{cell.polls / max(1, len(cell.seconds)):.1f}",
                     "1 progress call" if cell.kind == "cooperative" else f"grace {grace:g} s + kill",
                     len(cell.errors)])
    return report.table(
        "C1. Time from <m>_cancel to state cancelled, over HTTP JSON-WSP",
        ["task", "server", "n", "p50 ms", "p99 ms", "max ms", "cancel ans ms", "polls", "expected",
         "err"], rows,
        [f"{samples} cancel(s) per row, servers interleaved; each cancels a running task, timed "
         "from just before <m>_cancel is sent to the first answer that says cancelled.",
         "cooperative: the task calls update_progress about every 1 ms; killed: the task sleeps "
         f"without calling it, the servers run with cancel_grace={grace:g} s (process mode: "
         "worker process killed and replaced; thread mode: recorded cancelled, thread abandoned).",
         "cancel ans ms: latency of the <m>_cancel request itself (p50); polls: <m>_progress "
         "requests per sample after the cancel answer (each 1-2 ms over werkzeug, the "
         "resolution of the cooperative rows). p99 of few samples is near the max.",
         "via 2nd server: the cancel goes to another process-mode server on the same Redis "
         "(it records the request there); the server running the task reads it from Redis at "
         "its supervisor's next check instead of being woken at once.",
         "err: samples whose <m>_result was not a TaskCancelled fault."])
