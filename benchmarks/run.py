"""ladon_tasks benchmarks: everything measured side by side in one run, printed as tables.

    /tmp/benchvenv/bin/python benchmarks/run.py [--quick] [--only SECTION,...] [--profile DIR] [--keep]

Run by hand, never in CI. Tables go to stdout, progress to stderr. See README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _path in (str(HERE), str(HERE / "services")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import celery_compare  # noqa: E402
import foundation  # noqa: E402
import keepalive  # noqa: E402
import lifecycle  # noqa: E402
import report  # noqa: E402
import rq_compare  # noqa: E402
import workloads  # noqa: E402
from calls import Endpoint  # noqa: E402
from procs import GunicornProcess, RedisProcess, ServerProcess, port_is_free  # noqa: E402

OURS_T, BASE_T = "ladon_tasks thread", "Ladon 1.0.7 thread"
OURS_P, BASE_P = "ladon_tasks process", "Ladon 1.0.7 redis"
PLAIN = "plain (Ladon 1.0.7)"
CHURN_TTL = 10.0
#: The issue 7 rows' values before the lifecycle work, for the summary table.
ISSUE7_BEFORE = {
    "C2 update_progress calls/s (cancel check in)": "4.18M thread, 4.44M process (no check)",
    "C3 process tiny tasks/s over HTTP vs Ladon 1.0.7 redis (B3)": "214 vs 44: 4.86x",
    "C4 engine tiny tasks/s vs Celery prefork -c 2": "1,312 vs 525: 2.50x",
    "C5 start / plain, gunicorn keep-alive, ladon_tasks thread, c=1": "0.40-0.78x; 0.72x",
    "C5 start / plain, gunicorn keep-alive, ladon_tasks thread, c=32": "0.40-0.78x; 0.67x",
    "C5 start / plain, gunicorn keep-alive, ladon_tasks process, c=1": "0.19-0.43x; 0.27x",
    "C5 start / plain, gunicorn keep-alive, ladon_tasks process, c=32": "0.19-0.43x; 0.34x",
}


@dataclass(frozen=True)
class Plan:
    """How much of everything one run does."""

    counts: dict[int, int]
    rounds: int
    redis_scale: float
    loop_calls: int
    redis_loop_calls: int
    tiny_tasks: int
    tiny_rounds: int
    churn_first: int
    churn_total: int
    churn_batch: int
    rq_tasks: int
    rq_fork_tasks: int
    rq_progress_calls: int
    app_calls: int
    app_repeat: int
    cancel_samples: int
    celery_tasks: int
    celery_rounds: int
    keepalive_counts: dict[int, int]
    keepalive_rounds: int
    profile_requests: int


FULL = Plan(counts={1: 400, 32: 1500}, rounds=5, redis_scale=0.1, loop_calls=1_000_000,
            redis_loop_calls=2_000, tiny_tasks=600, tiny_rounds=2, churn_first=1_000,
            churn_total=50_000, churn_batch=500, rq_tasks=2_000, rq_fork_tasks=300,
            rq_progress_calls=5_000, app_calls=1_000, app_repeat=5, cancel_samples=30,
            celery_tasks=2_000, celery_rounds=3, keepalive_counts={1: 1000, 32: 3000},
            keepalive_rounds=5, profile_requests=2_000)
QUICK = Plan(counts={1: 100, 32: 300}, rounds=1, redis_scale=0.3, loop_calls=200_000,
             redis_loop_calls=300, tiny_tasks=100, tiny_rounds=1, churn_first=500,
             churn_total=2_000, churn_batch=500, rq_tasks=200, rq_fork_tasks=50,
             rq_progress_calls=1_000, app_calls=300, app_repeat=1, cancel_samples=5,
             celery_tasks=300, celery_rounds=1, keepalive_counts={1: 300, 32: 600},
             keepalive_rounds=1, profile_requests=300)
#: The sections of a run, in order; ``--only`` picks some.
SECTIONS = ("app", "http", "churn", "rq", "cancel", "celery", "keepalive")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run, for a smoke test")
    parser.add_argument("--profile", metavar="DIR", help="cProfile every server's requests into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    parser.add_argument("--only", metavar="SECTION,...",
                        help=f"run only these sections, of {', '.join(SECTIONS)} (default: all)")
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",")] if args.only else list(SECTIONS)
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}: choose from {', '.join(SECTIONS)}")
    signal.signal(signal.SIGTERM, _interrupted)  # clean up the servers on kill, too
    plan = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="ladon-tasks-bench-"))
    bench = Bench(plan, workdir, args.profile)
    say(f"work directory: {workdir}")
    try:
        print(bench.run(quick=args.quick, only=only))
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


class Bench:
    """Starts the processes, runs every section, and writes the report."""

    def __init__(self, plan: Plan, workdir: Path, profile: str | None) -> None:
        self.plan = plan
        self.workdir = workdir
        self.profile = Path(profile).resolve() if profile else None
        if self.profile:
            self.profile.mkdir(parents=True, exist_ok=True)
        self.stack = contextlib.ExitStack()
        self.notes: list[str] = []
        self.targets: list[list[object]] = []
        # Ladon 1.0.7 imports ``imp`` (gone in Python 3.12): the baseline needs 3.11 or older.
        self.baseline = importlib.util.find_spec("imp") is not None
        self.redis6379 = False
        #: Measured values of the issue 7 rows, by row name, for the summary.
        self.issue7: dict[str, str] = {}
        self.tiny_process: dict[str, list[float]] = {}

    def close(self) -> None:
        self.stack.close()

    def server(self, name: str, *args: str) -> ServerProcess:
        extra = ["--profile", str(self.profile / f"{name}.prof")] if self.profile else []
        server = ServerProcess(name, [*args, *extra], self.workdir)
        self.stack.callback(server.stop)
        return server

    def gunicorn(self, name: str, settings: dict) -> GunicornProcess:
        server = GunicornProcess(name, settings, self.workdir)
        self.stack.callback(server.stop)
        return server

    def redis(self, port: int | None = None) -> RedisProcess:
        server = RedisProcess(self.workdir, port)
        self.stack.callback(server.stop)
        return server

    # -- the run ----------------------------------------------------------------------

    def run(self, quick: bool, only: list[str]) -> str:
        began = time.time()
        load_before = os.getloadavg()
        redis = self.redis()
        if "http" in only:
            self.baseline_redis()
        if not self.baseline:
            self.notes.append("Python has no 'imp' module: Ladon 1.0.7 cannot run unpatched, "
                              "baseline rows are n/a. Run on Python 3.11.")
        runners = {"app": lambda: self.app_cost_section(redis.url),
                   "http": lambda: self.http_section(redis.url),
                   "churn": self.churn_section,
                   "rq": lambda: self.rq_section(redis.url),
                   "cancel": lambda: self.cancel_section(redis.url),
                   "celery": lambda: self.celery_section(redis.url),
                   "keepalive": lambda: self.keepalive_section(redis)}
        sections = [runners[name]() for name in SECTIONS if name in only]
        if len(only) < len(SECTIONS):
            self.notes.append(f"only these sections were run: {', '.join(only)}.")
        load_after = os.getloadavg()
        head = self.header(quick, began, load_before, load_after)
        summary = report.table(
            "Targets", ["target", "measured", "target", "met?"], self.targets) if self.targets else ""
        notes = "Notes\n=====\n" + "\n".join(f"- {note}" for note in self.notes) + "\n"
        return "\n".join([head, *sections, self.issue7_table(), summary, notes])

    def baseline_redis(self) -> None:
        """The redis-server on 6379 that Ladon 1.0.7's Redis mode needs, if the port is free."""
        if self.baseline and port_is_free(6379):
            self.redis(6379)
            self.redis6379 = True
            self.notes.append("Ladon 1.0.7's Redis mode hard-codes port 6379: a second private "
                              "redis-server was started on 6379 for it.")
        elif self.baseline:
            self.notes.append("port 6379 is taken: Ladon 1.0.7's Redis mode (hard-coded port) "
                              "was not measured.")

    def header(self, quick: bool, began: float, load_before: tuple, load_after: tuple) -> str:
        model = ""
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        versions = [f"{name} {_version(name)}" for name in ("ladon", "werkzeug", "redis", "rq", "celery",
                                                                   "gunicorn")]
        redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                       text=True).stdout.split(" v=")[-1].split()[0]
        return "\n".join([
            f"ladon_tasks benchmarks, {'QUICK (smoke test)' if quick else 'full'} run, "
            f"{datetime.datetime.fromtimestamp(began):%Y-%m-%d %H:%M}, took {time.time() - began:.0f} s",
            f"Python {platform.python_version()} ({platform.python_implementation()}) on "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
            f"{', ' + model if model else ''}",
            f"{', '.join(versions)}, redis-server {redis_version}",
            f"load average (1 min) {load_before[0]:.2f} at start, {load_after[0]:.2f} at end: the "
            "machine is shared, numbers are noisy; compare rows of one run, not runs.",
            "",
        ])

    # -- A0: the cost inside the application, no HTTP ---------------------------------

    def app_cost_section(self, redis_url: str) -> str:
        say("A0: CPU per call inside the WSGI application (no HTTP)")
        configs = [(PLAIN, ["ladon", "plain_service", "PlainService", "--noop-only"]),
                   (OURS_T, ["ladon_tasks", "bench_service", "BenchService", "--mode", "thread"])]
        if self.baseline:
            configs.append((BASE_T, ["ladon", "bench_service", "BenchService"]))
        configs.append((OURS_P, ["ladon_tasks", "bench_service", "BenchService", "--mode", "process",
                                 "--redis-url", redis_url]))
        costs: dict[str, dict[str, float]] = {}
        for label, args in configs:
            done = subprocess.run([sys.executable, str(HERE / "app_cost.py"), *args,
                                   "--calls", str(self.plan.app_calls), "--repeat",
                                   str(self.plan.app_repeat)],
                                  capture_output=True, text=True, cwd=str(HERE), timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"app_cost.py {label} failed:\n{done.stderr[-3000:]}")
            costs[label] = json.loads(done.stdout.strip().splitlines()[-1])
        noop = costs[PLAIN]["noop"]
        rows = []
        for method, name in (("noop", "noop"), ("tiny", "tiny (start)"), ("tiny_progress", "tiny_progress"),
                             ("tiny_result", "tiny_result")):
            row: list[object] = [name]
            for label, _ in configs:
                value = costs[label].get(method)
                row.append("-" if value is None else f"{value:,.0f} ({value / noop:.1f}x)")
            rows.append(row)
        return report.table(
            "A0. CPU microseconds per call inside the WSGI application, no HTTP (x plain noop)",
            ["call", *[label for label, _ in configs]], rows,
            [f"Least CPU per call over {self.plan.app_repeat} batch(es) of {self.plan.app_calls} calls "
             "(noise only adds); the application object is called directly in one thread; CPU of "
             "the whole process (the tiny tasks of a start run in thread mode count; worker "
             "processes and Redis do not).",
             "Over HTTP, werkzeug's development server adds its own cost to every request (a TCP "
             "connection and a thread each), the same for every server: compare with CPU us/req "
             "below."])

    # -- A1-A4, B1, B2, B3: the HTTP servers ------------------------------------------

    def http_section(self, redis_url: str) -> str:
        plan = self.plan
        say("starting servers")
        plain = Endpoint(PLAIN, self.server("plain", "ladon", "plain_service"), "PlainService")
        tasks = [Endpoint(OURS_T, self.server("ours-thread", "ladon_tasks", "bench_service",
                                              "--mode", "thread"), "BenchService")]
        if self.baseline:
            tasks.append(Endpoint(BASE_T, self.server("ladon-thread", "ladon", "bench_service"),
                                  "BenchService"))
        tasks.append(Endpoint(OURS_P, self.server("ours-process", "ladon_tasks", "bench_service",
                                                  "--mode", "process", "--redis-url", redis_url),
                              "BenchService"))
        if self.redis6379:
            tasks.append(Endpoint(BASE_P, self.server("ladon-redis", "ladon", "bench_redis_service"),
                                  "BenchRedisService", scale=plan.redis_scale))
        for ep in [plain, *tasks]:
            for _ in range(30):  # warm up: imports, first connections, worker pools
                ep.call("noop" if ep is plain else "tiny")
        by_label = {ep.label: ep for ep in tasks}

        say("A1-A3, B1: start, _progress and _result against a plain call")
        cells = foundation.measure(plain, tasks, plan.counts, plan.rounds, say)
        out = [self.endpoint_table(
            "A1-A3. Task endpoints vs a plain call, thread mode (JSON-WSP over HTTP)",
            cells, [OURS_T, BASE_T], {"start": 0.90, "progress": 0.95}, OURS_T, BASE_T)]
        out.append(self.endpoint_table(
            "B1. Task endpoints vs a plain call, multiprocessing mode (JSON-WSP over HTTP)",
            cells, [OURS_P, BASE_P], {"progress": 0.90}, OURS_P, BASE_P))

        say("A4, B2: update_progress in a tight loop")
        runs = [(by_label[OURS_T], plan.loop_calls), (by_label[OURS_P], plan.loop_calls)]
        if BASE_T in by_label:
            runs.insert(1, (by_label[BASE_T], plan.loop_calls))
        if BASE_P in by_label:
            runs.append((by_label[BASE_P], plan.redis_loop_calls))
        loops = workloads.progress_rates(runs, plan.rounds)
        out.append(self.loop_table(loops, dict((ep.label, calls) for ep, calls in runs)))

        say("B3: tiny-task throughput, multiprocessing mode")
        tiny_eps = [by_label[OURS_P]] + ([by_label[BASE_P]] if BASE_P in by_label else [])
        self.tiny_process = workloads.tiny_throughput(tiny_eps, plan.tiny_tasks, plan.tiny_rounds)
        for ep in [plain, *tasks]:
            ep.server.stop()
        return "\n".join(out)

    def endpoint_table(self, title: str, cells: dict, labels: list[str], targets: dict[str, float],
                       ours: str, base: str) -> str:
        rows = []
        for phase in foundation.PHASES:
            for concurrency in self.plan.counts:
                ref = cells[(phase, concurrency, PLAIN)]
                name = {"start": "tiny (start)", "progress": "tiny_progress",
                        "result": "tiny_result"}[phase]
                rows.append(self.endpoint_row("noop", PLAIN, concurrency, ref, None, None, None))
                for label in labels:
                    cell = cells.get((phase, concurrency, label))
                    if cell is None:
                        rows.append([name, label, concurrency] + ["n/a"] * 9)
                        continue
                    base_cell = cells.get((phase, concurrency, base))
                    vs_base = cell.rate / base_cell.rate if base_cell and label == ours else None
                    target = targets.get(phase) if label == ours else None
                    rows.append(self.endpoint_row(name, label, concurrency, cell, cell.rate / ref.rate,
                                                  vs_base, target))
                    if target is not None:
                        self.targets.append([
                            f"{title.split('.')[0]} {name} / plain, {label}, c={concurrency}",
                            report.ratio(cell.rate / ref.rate), f">={target:.2f}x",
                            report.met(cell.rate / ref.rate, target)])
        counts = ", ".join(f"c={c}: {n} requests" for c, n in self.plan.counts.items())
        generator = max(cell.client_cpu / cell.elapsed for cell in cells.values() if cell.elapsed)
        notes = [
            f"{self.plan.rounds} round(s) per row, servers interleaved in rotating order; req/s is the "
            f"median over rounds ({counts} per round), p50/p99 over all requests of the row.",
            "CPU us/req: the server process's CPU time per request (all threads; not Redis, not "
            "worker processes). Errors (err) are non-200 answers and JSON-WSP faults.",
            f"The load generator (one thread, selectors) used at most {generator:.0%} of a core in "
            "any row" + (", so it was not the bottleneck." if generator < 0.8 else
                         ": it may have limited the fastest rows."),
            "start = the task method call (returns a task_id; the tiny task runs in the background "
            "and is waited for before the next server is measured); tiny_progress polls finished "
            "tasks; tiny_result fetches each finished task's result once.",
        ]
        if base == BASE_P and self.redis6379:
            notes.append(f"Ladon 1.0.7 redis rows run {self.plan.redis_scale:.0%} of the requests "
                         "(it forks a process per task).")
        return report.table(title, ["call", "server", "c", "req/s", "p50 ms", "p99 ms", "CPU us/req",
                                    "x plain", "x 1.0.7", "target", "met?", "err"], rows, notes)

    @staticmethod
    def endpoint_row(name: str, label: str, concurrency: int, cell: foundation.Cell,
                     vs_plain: float | None, vs_base: float | None, target: float | None) -> list:
        return [name, label, concurrency, report.rate(cell.rate), report.ms(cell.p(0.50)),
                report.ms(cell.p(0.99)), f"{cell.cpu_us:,.0f}",
                report.ratio(vs_plain) if vs_plain is not None else "1.00x",
                report.ratio(vs_base), f">={target:.2f}x" if target is not None else "-",
                report.met(vs_plain, target), cell.errors]

    def loop_table(self, loops: dict[str, list[int]], calls: dict[str, int]) -> str:
        targets = {OURS_T: 1_000_000, OURS_P: 200_000}
        base_of = {OURS_T: BASE_T, OURS_P: BASE_P}
        rows = []
        for label, rates in loops.items():
            value = workloads.median(rates)
            base = workloads.median(loops.get(base_of.get(label, ""), []))
            target = targets.get(label)
            rows.append([label, f"{calls[label]:,}", report.rate(value),
                         report.ratio(value / base) if base and label in base_of else "-",
                         f">={target:,}" if target else "-", report.met(value, target)])
            if target:
                self.targets.append([f"A4/B2 update_progress calls/s, {label}", report.rate(value),
                                     f">={target:,}", report.met(value, target)])
                self.issue7[f"C2 update_progress calls/s (cancel check in), {label}"] = report.rate(value)
        return report.table(
            "A4, B2. update_progress calls per second in a tight loop inside a task",
            ["server", "calls", "calls/s", "x 1.0.7", "target", "met?"], rows,
            [f"Median of {self.plan.rounds} run(s); each task times its own loop of distinct float "
             "values and returns the rate.",
             "Ladon 1.0.7 thread: a global lock and two dict lookups per call; Ladon 1.0.7 redis: "
             "two Redis round trips (GET + SET of a pickle) per call, hence fewer calls.",
             "ladon_tasks process: the value is kept in memory and written to Redis every "
             "progress_interval (0.1 s) by a reporter thread."])

    # -- A5, A6: tiny-task throughput and memory under churn, thread mode --------------

    def churn_section(self) -> str:
        plan = self.plan
        say(f"A5, A6: {plan.churn_total:,} tiny tasks through fresh thread-mode servers "
            f"(ladon_tasks result_ttl={CHURN_TTL:g} s)")
        eps = [Endpoint(OURS_T, self.server("ours-churn", "ladon_tasks", "bench_service", "--mode",
                                            "thread", "--result-ttl", str(CHURN_TTL)), "BenchService")]
        if self.baseline:
            eps.append(Endpoint(BASE_T, self.server("ladon-churn", "ladon", "bench_service"),
                                "BenchService"))
        for ep in eps:
            for _ in range(30):
                ep.call("noop")
        runs = workloads.memory_growth(eps, plan.churn_first, plan.churn_total, plan.churn_batch,
                                       CHURN_TTL + 1.0, say)
        for ep in eps:
            ep.server.stop()
        ours, base = runs[OURS_T], runs.get(BASE_T)
        first, total = f"{plan.churn_first / 1000:g}k", f"{plan.churn_total / 1000:g}k"

        rows = []
        thread_ratio = ours.rate / base.rate if base else None
        rows.append(["thread", OURS_T, f"{ours.tasks:,}", report.rate(ours.rate),
                     report.ratio(thread_ratio), ">=2.00x", report.met(thread_ratio, 2.0)])
        if base:
            rows.append(["thread", BASE_T, f"{base.tasks:,}", report.rate(base.rate), "-", "-", "-"])
        self.targets.append([f"A5 tiny tasks/s vs Ladon 1.0.7, thread ({total} tasks)",
                             report.ratio(thread_ratio), ">=2.00x", report.met(thread_ratio, 2.0)])
        ours_p = workloads.median(self.tiny_process.get(OURS_P, []))  # from http_section
        base_p = workloads.median(self.tiny_process.get(BASE_P, []))
        process_ratio = ours_p / base_p if ours_p and base_p else None
        n = plan.tiny_tasks * plan.tiny_rounds
        rows.append(["process", OURS_P, f"{n:,}", report.rate(ours_p), report.ratio(process_ratio),
                     ">=10.00x", report.met(process_ratio, 10.0)])
        rows.append(["process", BASE_P, f"{n:,}" if base_p else "n/a", report.rate(base_p), "-", "-", "-"])
        self.targets.append(["B3 tiny tasks/s vs Ladon 1.0.7 redis", report.ratio(process_ratio),
                             ">=10.00x", report.met(process_ratio, 10.0)])
        if ours_p:
            self.issue7["C3 process tiny tasks/s over HTTP vs Ladon 1.0.7 redis (B3)"] = (
                f"{report.rate(ours_p)} vs {report.rate(base_p)}: {report.ratio(process_ratio)}")
        throughput = report.table(
            "A5, B3. Tiny-task throughput, end to end over HTTP",
            ["mode", "server", "tasks", "tasks/s", "x 1.0.7", "target", "met?"], rows,
            ["Start tasks with 32 concurrent clients, then poll <m>_progress (32 clients) until "
             "every one is done; tasks/s = tasks / (start time + wait time). Results are then "
             "fetched once each (not timed) so each task has its whole life.",
             f"thread rows: the {total} tasks of the memory run below, batches interleaved; "
             f"process rows: median of {plan.tiny_rounds} batch(es) of {plan.tiny_tasks}."])

        mem_rows = []
        for label, run in runs.items():
            growth_ok = "yes" if run.growth <= 10.0 else "NO"
            mem_rows.append([label, f"{run.rss_idle:.1f}", f"{run.rss_first:.1f}", f"{run.rss_last:.1f}",
                             f"{run.growth:+.1f}", "<=10 MB" if label == OURS_T else "-",
                             growth_ok if label == OURS_T else "-", run.errors])
        self.targets.append([f"A6 RSS growth {first}->{total} tasks, {OURS_T}", f"{ours.growth:+.1f} MB",
                             "<=10 MB", "yes" if ours.growth <= 10.0 else "NO"])
        memory = report.table(
            f"A6. Server RSS (MB) after {first} and after {total} finished tiny tasks, thread mode",
            ["server", "idle", f"after {first}", f"after {total}", f"growth {first}->{total}", "target",
             "met?", "err"], mem_rows,
            [f"ladon_tasks runs with result_ttl={CHURN_TTL:g} s; before each reading every server "
             f"idles {CHURN_TTL + 1:g} s and answers one <m>_progress call (expired records are "
             "dropped then). VmRSS of the server process.",
             "Ladon 1.0.7 never forgets a task: progress, start and stop times stay in a global "
             "dict and every task id in a global list (results go when fetched)."])
        return throughput + "\n" + memory

    # -- B4: RQ ----------------------------------------------------------------------------

    def rq_section(self, redis_url: str) -> str:
        plan = self.plan
        missing = rq_compare.rq_available()
        if missing:
            self.notes.append(f"B4 skipped: {missing}.")
            return ""
        say("B4: RQ and the ladon_tasks engine, one worker each")
        sides = [
            rq_compare.run_engine(redis_url, plan.rq_tasks, plan.loop_calls),
            rq_compare.run_rq(redis_url, "rq.worker.SimpleWorker", plan.rq_tasks, plan.rq_progress_calls,
                              self.workdir),
            rq_compare.run_rq(redis_url, "rq.worker.Worker", plan.rq_fork_tasks, 0, self.workdir),
        ]
        ours = sides[0]
        rows = [[side.label, f"{side.tasks:,}", report.rate(side.tasks_per_s),
                 report.ratio(ours.tasks_per_s / side.tasks_per_s) if side is not ours else "-",
                 f"{side.progress_calls:,}" if side.progress_calls else "-",
                 report.rate(side.progress_per_s) if side.progress_per_s else "-",
                 report.ratio(ours.progress_per_s / side.progress_per_s)
                 if side is not ours and side.progress_per_s and ours.progress_per_s else "-"]
                for side in sides]
        return report.table(
            "B4. RQ side by side (same Redis, one worker each, no HTTP)",
            ["system", "tasks", "tasks/s", "ours x", "progress calls", "progress/s", "ours x"], rows,
            ["tasks/s: enqueue/start every tiny task from one client process, then wait in order "
             "until each is finished (client polls every 1 ms).",
             "ladon_tasks engine: TaskEngine(mode='process', processes=1), the pool and store that "
             "serve <m> over HTTP in multiprocessing mode, called directly.",
             "RQ SimpleWorker runs jobs in the worker process; RQ Worker (its default) forks a "
             "work horse per job.",
             "progress: RQ job.meta + save_meta() is one Redis write per call; ladon_tasks "
             "update_progress keeps the value and writes it every 0.1 s."])

    # -- C1: cancel latency ------------------------------------------------------------------

    def cancel_section(self, redis_url: str) -> str:
        plan = self.plan
        say(f"C1: <m>_cancel to cancelled, cancel_grace={lifecycle.CANCEL_GRACE:g} s")
        grace = ["--option", f"cancel_grace={lifecycle.CANCEL_GRACE:g}"]
        process = ["ladon_tasks", "lifecycle_service", "--mode", "process", "--redis-url", redis_url,
                   "--processes", "2", *grace]
        thread = Endpoint(OURS_T, self.server("cancel-thread", "ladon_tasks", "lifecycle_service",
                                              "--mode", "thread", *grace), "LifecycleService")
        proc = Endpoint(OURS_P, self.server("cancel-process", *process), "LifecycleService")
        other = Endpoint(OURS_P, self.server("cancel-process-2", *process), "LifecycleService")
        via = f"{OURS_P}, via 2nd server"
        rows = [("cooperative", OURS_T, thread, None), ("cooperative", OURS_P, proc, None),
                ("cooperative", via, proc, other),
                ("killed", OURS_T, thread, None), ("killed", OURS_P, proc, None)]
        eps = [thread, proc, other]
        cells = lifecycle.measure(rows, plan.cancel_samples, say)
        for ep in eps:
            ep.server.stop()
        for cell in cells:
            self.issue7[f"C1 cancel -> cancelled, {cell.kind}, {cell.label} (p50 / p99 ms)"] = (
                f"{report.ms(cell.p(0.50))} / {report.ms(cell.p(0.99))}")
            if cell.errors:
                self.notes.append(f"C1 {cell.kind} {cell.label}: {cell.errors[0]}")
        return lifecycle.table(cells, plan.cancel_samples)

    # -- C4: Celery ------------------------------------------------------------------------------

    def celery_section(self, redis_url: str) -> str:
        plan = self.plan
        missing = celery_compare.celery_available()
        if missing:
            self.notes.append(f"C4 skipped: {missing}.")
            return ""
        say("C4: the ladon_tasks engine and Celery prefork, 2 processes each")
        ours, theirs = celery_compare.compare(redis_url, plan.celery_tasks, plan.celery_rounds,
                                              self.workdir, say)
        ratio = ours.rate / theirs.rate if theirs.rate else None
        self.targets.append(["C4 engine tiny tasks/s vs Celery prefork -c 2", report.ratio(ratio),
                             ">1.00x (ahead)", "yes" if ratio and ratio > 1.0 else "NO"])
        self.issue7["C4 engine tiny tasks/s vs Celery prefork -c 2"] = (
            f"{report.rate(ours.rate)} vs {report.rate(theirs.rate)}: {report.ratio(ratio)}")
        rows = [[side.label, f"{side.tasks:,}", report.rate(side.rate), report.rate(side.submit_rate),
                 ", ".join(report.rate(rate) for rate in side.rates),
                 report.ratio(ratio) if side is ours else "-"] for side in (ours, theirs)]
        return report.table(
            "C4. Celery side by side (engine level, no HTTP, 2 worker processes each, one Redis)",
            ["system", "tasks", "tasks/s", "submits/s", "batches tasks/s", "ours x"], rows,
            [f"{plan.celery_rounds} batch(es) of {plan.celery_tasks:,} per system, interleaved; tasks/s "
             "= tasks / (submit + wait), median over batches; submits/s: the submit phase alone.",
             "ladon_tasks: TaskEngine(mode='process', processes=2), engine.start() per task, then "
             "each task's state read until done (1 ms between reads of an unfinished task).",
             "Celery: celery worker --pool prefork -c 2, broker and result backend on the same "
             "private redis-server (db 1; ladon_tasks db 0), JSON serialiser, otherwise defaults; "
             "task.delay() per task, then ResultSet.join_native().",
             "The same trivial body (return 1) on both. The client runs in this process on both "
             "sides (ladon_tasks' supervisor threads included)."])

    # -- C5: gunicorn gthread, keep-alive ----------------------------------------------------------

    def keepalive_section(self, redis: RedisProcess) -> str:
        plan = self.plan
        redis_url, redis_pid = redis.url, redis.process.pid
        say("C5: start vs plain under gunicorn gthread (1 worker, 32 threads, keep-alive)")
        labels = [keepalive.OURS_T, keepalive.OURS_P]
        eps = {}
        for label in [keepalive.PLAIN, *labels]:
            settings, service = keepalive.settings(label, redis_url)
            server = self.gunicorn(f"gunicorn-{keepalive.short(label)}", settings)
            eps[label] = Endpoint(label, server, service)
        cells = keepalive.measure(eps[keepalive.PLAIN], [eps[label] for label in labels],
                                  plan.keepalive_counts, plan.keepalive_rounds, say)
        top = max(plan.keepalive_counts)
        splits = [keepalive.cpu_split(ep, "noop" if label == keepalive.PLAIN else "tiny",
                                      plan.keepalive_counts[top], top, redis_pid)
                  for label, ep in eps.items()]
        for ep in eps.values():
            ep.server.stop()
        text, targets = keepalive.table(cells, plan.keepalive_counts, plan.keepalive_rounds, labels)
        text += "\n" + keepalive.cpu_table(splits, top)
        self.targets.extend(targets)
        for row in targets:
            self.issue7[row[0]] = row[1]
        say(f"C5p: profiles of the start path, {plan.profile_requests} requests at c=1")
        where = self.profile or self.workdir
        profiles = []
        for label, method in ((keepalive.PLAIN, "noop"), (keepalive.OURS_T, "tiny"),
                              (keepalive.OURS_P, "tiny")):
            settings, service = keepalive.settings(label, redis_url)
            path = where / f"gunicorn-{keepalive.short(label)}-{method}.prof"
            settings["profile"] = str(path)
            server = self.gunicorn(f"profile-{keepalive.short(label)}", settings)
            profiles.append(keepalive.profile_one(Endpoint(label, server, service), method,
                                                  plan.profile_requests, path))
            server.stop()
        if self.profile:
            self.notes.append(f"C5p profiles (pstats) are in {where}.")
        return text + "\n" + keepalive.profile_tables(profiles[0], profiles[1:])

    def issue7_table(self) -> str:
        if not self.issue7:
            return ""
        rows = [[name, value, ISSUE7_BEFORE.get(name.split(",")[0] if name.startswith("C2") else name, "-")]
                for name, value in sorted(self.issue7.items(), key=lambda item: item[0][:2])]
        return report.table("Issue 7 rows (item 11), this run", ["row", "measured", "before issue 7"], rows,
                            ["before issue 7: C2, C3 from the last full run before the lifecycle work "
                             "(README); C5: the ratios the issue gives, then this harness on commit "
                             "08ce993 (before the lifecycle core), like C4 (README, 'Before issue "
                             "7'). C1 is new."])


def _interrupted(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
