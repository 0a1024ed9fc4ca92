"""C5: the start request against a plain call under gunicorn gthread, keep-alive; and its profile.

Three gunicorn servers (``--worker-class gthread``, 1 worker, 32 threads, keep-alive):
Ladon 1.0.7 alone serving the plain ``noop``, and ``TaskWSGIApplication`` serving the tiny
task in thread mode and in process mode. The load generator keeps one HTTP/1.1
connection per client, so a request costs no TCP connect and no new thread: what is left
is Ladon's and ladon_tasks' own cost, which is what the ratio should show.

The profile runs fresh servers with every worker thread under its own cProfile on its
thread CPU clock (``thread_profile``): N calls at c=1 after a warm-up, then the servers
idle until their CPU is quiet (the tasks' own work in the server process counts), then
the statistics are dumped. The tables divide by the number of requests and set each
function's own time in a start against the plain call's: what a start adds, and where.
"""

from __future__ import annotations

import json
import pstats
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import foundation
import report
from calls import HOST, Endpoint, task_ids, wait_done
from load import run_load
from procs import descendants, precise_cpu_seconds, thread_cpu_seconds

PLAIN = "plain (Ladon 1.0.7)"
OURS_T = "ladon_tasks thread"
OURS_P = "ladon_tasks process"
#: Targets of the start/plain ratio, and the ratios measured before issue 7 (two runs).
TARGETS = {OURS_T: 0.90, OURS_P: 0.60}
BEFORE = {OURS_T: "0.40-0.78x", OURS_P: "0.19-0.43x"}
PROFILE_TOP = 10


def short(label: str) -> str:
    """``plain``, ``thread`` or ``process``: for file names."""
    return "plain" if label == PLAIN else label.split()[-1]


def settings(label: str, redis_url: str, processes: int = 2) -> tuple[dict, str]:
    """``(gunicorn_app settings, service name)`` of one of the three servers."""
    if label == PLAIN:
        return {"kind": "ladon", "module": "plain_service"}, "PlainService"
    options: dict = {"mode": "thread"}
    if label == OURS_P:
        options = {"mode": "process", "redis_url": redis_url, "processes": processes}
    return {"kind": "ladon_tasks", "module": "bench_service", "options": options}, "BenchService"


def measure(plain: Endpoint, tasks: list[Endpoint], counts: dict[int, int], rounds: int,
            say: Callable[[str], None]) -> dict:
    """Start rates of every server at every concurrency, interleaved (see foundation)."""
    for ep in [plain, *tasks]:
        for _ in range(30):
            ep.call("noop" if ep is plain else "tiny")
    return foundation.measure(plain, tasks, counts, rounds, say, phases=("start",))


def table(cells: dict, counts: dict[int, int], rounds: int, labels: list[str]) -> tuple[str, list[list]]:
    """The C5 table and its rows for the targets table."""
    rows, targets = [], []
    for concurrency in counts:
        ref = cells[("start", concurrency, PLAIN)]
        rows.append(_row("noop", PLAIN, concurrency, ref, None))
        for label in labels:
            cell = cells[("start", concurrency, label)]
            value = cell.rate / ref.rate
            rows.append(_row("tiny (start)", label, concurrency, cell, value))
            targets.append([f"C5 start / plain, gunicorn keep-alive, {label}, c={concurrency}",
                            report.ratio(value), f">={TARGETS[label]:.2f}x",
                            report.met(value, TARGETS[label])])
    per_round = ", ".join(f"c={c}: {n} requests" for c, n in counts.items())
    generator = max(cell.client_cpu / cell.elapsed for cell in cells.values() if cell.elapsed)
    text = report.table(
        "C5. Start request vs a plain call under gunicorn gthread, keep-alive (JSON-WSP)",
        ["call", "server", "c", "req/s", "p50 ms", "p99 ms", "CPU us/req", "conns", "x plain",
         "before", "target", "met?", "err"], rows,
        ["gunicorn --worker-class gthread --workers 1 --threads 32 --keep-alive 30; the load "
         "generator keeps one HTTP/1.1 connection per client (conns: connections opened over "
         "all rounds of the row).",
         f"{rounds} round(s) per row, servers interleaved in rotating order ({per_round} per "
         "round); req/s is the median over rounds; after each batch of starts the run waits "
         "until those tasks are done.",
         "CPU us/req: the gunicorn worker process (not the master, not process-mode worker "
         "processes, not Redis). process mode: processes=2.",
         "before: start/plain under gunicorn gthread before issue 7 (two runs, from the "
         "issue).",
         f"The load generator used at most {generator:.0%} of a core in any row."])
    return text, targets


def _row(name: str, label: str, concurrency: int, cell: foundation.Cell, value: float | None) -> list:
    target = TARGETS.get(label) if value is not None else None
    return [name, label, concurrency, report.rate(cell.rate), report.ms(cell.p(0.50)),
            report.ms(cell.p(0.99)), f"{cell.cpu_us:,.0f}", cell.connections,
            report.ratio(value) if value is not None else "1.00x",
            BEFORE.get(label, "-") if value is not None else "-",
            f">={target:.2f}x" if target else "-", report.met(value, target), cell.errors]


# -- CPU by process and thread ------------------------------------------------------------

#: Rows of the CPU table, in order: components of the gunicorn worker, then the others.
COMPONENTS = ("gunicorn main thread", "gunicorn request threads", "ladon_tasks task threads",
              "ladon_tasks pool supervisor", "other threads of the worker",
              "task worker processes", "redis-server", "load generator")


def component_of(thread_name: str) -> str:
    """Which row of the CPU table a thread of the gunicorn worker counts in."""
    if thread_name == "MainThread":
        return COMPONENTS[0]
    if thread_name.startswith("ThreadPoolExecutor"):
        return COMPONENTS[1]
    if thread_name.startswith("ladon-task-"):
        return COMPONENTS[2]
    if thread_name in ("ladon-tasks-task threads", "ladon-tasks-worker pool"):
        return COMPONENTS[3]
    return COMPONENTS[4]


@dataclass
class CpuSplit:
    """CPU seconds one batch cost each component, and the requests of the batch."""

    label: str
    requests: int
    seconds: dict[str, float]

    def us(self, component: str) -> float:
        return self.seconds.get(component, 0.0) / self.requests * 1e6

    @property
    def total_us(self) -> float:
        return sum(self.seconds.values()) / self.requests * 1e6


def _cpu_of(pids: list[int]) -> float:
    return sum(precise_cpu_seconds(pid) for pid in pids)


def _threads(ep: Endpoint) -> dict[int, str]:
    return {int(tid): name for tid, name in json.loads(_get(ep, "/__bench/threads")).items()}


def cpu_split(ep: Endpoint, method: str, requests: int, concurrency: int, redis_pid: int) -> CpuSplit:
    """One batch of ``requests`` calls, then idle until the tasks are done (no polls):
    CPU per component (threads of the gunicorn worker by role, its descendants: the
    process-mode worker processes, redis-server, the load generator)."""
    tasks = method != "noop"
    server = ep.server
    kids = descendants(server.pid)
    names = _threads(ep)
    threads_before = thread_cpu_seconds(server.pid)
    others_before = (_cpu_of(kids), _cpu_of([redis_pid]))
    result = ep.load([ep.request(method)] * requests, concurrency, keep_bodies=tasks)
    _quiet(ep, kids)
    threads_after = thread_cpu_seconds(server.pid)
    others_after = (_cpu_of(kids), _cpu_of([redis_pid]))
    names.update(_threads(ep))  # threads started during the batch
    # The main thread's native_id is the master's (set before gunicorn forked the worker).
    names[server.pid] = "MainThread"
    if result.errors:
        raise RuntimeError(f"{ep.label}: {result.errors} failed calls: {result.first_error[:300]!r}")
    if tasks:
        wait_done(ep, method, task_ids(result))
    seconds = dict.fromkeys(COMPONENTS, 0.0)
    for tid, after in threads_after.items():
        component = component_of(names.get(tid, "?"))
        seconds[component] += after - threads_before.get(tid, 0.0)
    seconds["task worker processes"] = others_after[0] - others_before[0]
    seconds["redis-server"] = others_after[1] - others_before[1]
    seconds["load generator"] = result.client_cpu
    return CpuSplit(ep.label, result.requests, seconds)


def cpu_table(splits: list[CpuSplit], concurrency: int) -> str:
    plain = splits[0]
    rows = [[component, *[f"{split.us(component):,.0f}" for split in splits]] for component in COMPONENTS]
    rows.append(["total", *[f"{split.total_us:,.0f}" for split in splits]])
    rows.append(["x plain", *[report.ratio(split.total_us / plain.total_us) for split in splits]])
    return report.table(
        f"C5c. CPU us per request by process and thread, gunicorn keep-alive, c={concurrency} "
        "(no profiler)",
        ["component", *[f"{'noop' if split is plain else 'start'}, {split.label}" for split in splits]],
        rows,
        [f"One batch of {plain.requests:,} requests per server, then idle until the server and its "
         "workers are quiet (their tasks are done; no polls). Per-thread CPU from /proc, threads "
         "named by the worker (GET /__bench/threads), time on CPU from schedstat (ns).",
         "task worker processes: process mode's workers (and the forkserver) under the gunicorn "
         "worker. The machine has 2 cores: when they are saturated (c=32), a start/plain ratio "
         "cannot exceed about plain total / start total."])


# -- the profile ---------------------------------------------------------------------------


@dataclass
class Profile:
    """One profiled server: statistics per request, and CPU per thread group."""

    label: str
    requests: int
    groups: dict[str, float]
    own: dict[tuple, float]
    cumulative: dict[tuple, float]
    unprofiled_cpu_us: float = 0.0

    @property
    def total_us(self) -> float:
        return sum(self.groups.values()) / self.requests * 1e6 if self.requests else 0.0


def _get(ep: Endpoint, path: str) -> bytes:
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{ep.port}\r\n\r\n".encode("ascii")
    return run_load(HOST, ep.port, [request], 1, keep_bodies=True).bodies[0]


def _quiet(ep: Endpoint, kids: list[int] | None = None, timeout: float = 15.0) -> None:
    """Wait until the server process (and ``kids``) use (almost) no CPU: tasks are done."""
    pids = [ep.server.pid, *(kids or [])]
    deadline = time.monotonic() + timeout
    last = _cpu_of(pids)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = _cpu_of(pids)
        if now - last < 0.005 * len(pids):
            return
        last = now


def profile_one(ep: Endpoint, method: str, requests: int, path: Path, warmup: int = 200) -> Profile:
    """Profile ``requests`` calls of ``method`` at c=1 on a server started with ``profile``."""
    tasks = method != "noop"
    for _ in range(2):  # two warm-up batches: imports, pools, first connections
        result = ep.load([ep.request(method)] * (warmup // 2), 1, keep_bodies=tasks)
        if tasks:
            wait_done(ep, method, task_ids(result))
    _quiet(ep)
    _get(ep, "/__bench/profile/reset")
    cpu = ep.server.cpu_seconds()
    result = ep.load([ep.request(method)] * requests, 1, keep_bodies=tasks)
    _quiet(ep)
    cpu = ep.server.cpu_seconds() - cpu
    summary = json.loads(_get(ep, "/__bench/profile/dump"))
    if result.errors:
        raise RuntimeError(f"{ep.label}: {result.errors} failed calls while profiling: "
                           f"{result.first_error[:300]!r}")
    if tasks:
        wait_done(ep, method, task_ids(result))
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    count = summary["requests"]
    own = {key: value[2] / count * 1e6 for key, value in stats.items()}
    cumulative = {key: value[3] / count * 1e6 for key, value in stats.items()}
    return Profile(ep.label, count, summary["groups"], own, cumulative, cpu / requests * 1e6)


def name_of(key: tuple) -> str:
    """``file:line(function)`` with the file shortened to its package path."""
    filename, line, function = key
    if filename == "~":
        return function.replace("<built-in method ", "<").replace("<method ", "<")
    parts = Path(filename).parts
    for anchor in ("site-packages", "ladon_tasks", "benchmarks", "python3.11"):
        if anchor in parts:
            index = parts.index(anchor)
            parts = parts[index + 1:] if anchor in ("site-packages", "python3.11") else parts[index:]
            break
    return f"{'/'.join(parts[-3:])}:{line}({function})"


def profile_tables(plain: Profile, starts: list[Profile], top: int = PROFILE_TOP) -> str:
    """Thread groups, what a start adds by own time, and our code by cumulative time."""
    groups = sorted({group for p in [plain, *starts] for group in p.groups})
    rows = [[group, *[f"{p.groups.get(group, 0.0) / p.requests * 1e6:,.0f}" for p in [plain, *starts]]]
            for group in groups]
    rows.append(["all profiled threads", *[f"{p.total_us:,.0f}" for p in [plain, *starts]]])
    rows.append(["unprofiled run (whole process)",
                 *[f"{p.unprofiled_cpu_us:,.0f}" for p in [plain, *starts]]])
    out = [report.table(
        "C5p. Where a request's CPU goes under gunicorn gthread: CPU us per request by thread",
        ["thread group", f"noop, {plain.label}", *[f"start, {p.label}" for p in starts]], rows,
        ["cProfile on each thread's CPU clock (time.thread_time), every thread started after "
         "the application was built: gunicorn's request threads (ThreadPoolExecutor), task "
         "threads, executor threads. gunicorn's main thread (accept, keep-alive polling) is not "
         "profiled.",
         f"c=1, {plain.requests:,} requests per server after a warm-up; the server then idles until "
         "its CPU is quiet, so the tiny tasks' work in the server process counts.",
         "Profiling inflates every figure (a clock read per call and return); the last line is "
         "the same run's CPU per request of the whole worker process, profiled, for scale."])]
    for start in starts:
        keys = set(start.own) | set(plain.own)
        extra = sorted(keys, key=lambda k: start.own.get(k, 0.0) - plain.own.get(k, 0.0), reverse=True)
        rows = [[name_of(key), f"{plain.own.get(key, 0.0):,.1f}", f"{start.own.get(key, 0.0):,.1f}",
                 f"{start.own.get(key, 0.0) - plain.own.get(key, 0.0):+,.1f}",
                 f"{start.cumulative.get(key, 0.0):,.1f}"] for key in extra[:top]]
        added = start.total_us - plain.total_us
        shown = sum(start.own.get(k, 0.0) - plain.own.get(k, 0.0) for k in extra[:top])
        out.append(report.table(
            f"C5p. What a start adds to a plain call, {start.label}: top {top} by own CPU added",
            ["function", "plain us/req", "start us/req", "added", "start cum us/req"], rows,
            [f"A start costs {start.total_us:,.0f} us of profiled CPU per request against "
             f"{plain.total_us:,.0f} us for a plain call: {added:+,.0f} us; these {top} "
             f"functions account for {shown:+,.0f} us of it."]))
        ours = sorted((k for k in start.cumulative if "ladon_tasks" in k[0]),
                      key=lambda k: start.cumulative[k], reverse=True)
        rows = [[name_of(key), f"{start.cumulative[key]:,.1f}", f"{start.own.get(key, 0.0):,.1f}"]
                for key in ours[:top]]
        out.append(report.table(
            f"C5p. ladon_tasks code in a start, {start.label}: top {top} by cumulative CPU",
            ["function", "cum us/req", "own us/req"], rows))
    return "\n".join(out)
