"""ladon_tasks benchmarks: everything measured side by side in one run, printed as tables.

    /tmp/v311/bin/python benchmarks/run.py [--quick] [--profile DIR] [--keep]

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

import foundation  # noqa: E402
import report  # noqa: E402
import rq_compare  # noqa: E402
import workloads  # noqa: E402
from calls import Endpoint  # noqa: E402
from procs import RedisProcess, ServerProcess, port_is_free  # noqa: E402

OURS_T, BASE_T = "ladon_tasks thread", "Ladon 1.0.7 thread"
OURS_P, BASE_P = "ladon_tasks process", "Ladon 1.0.7 redis"
PLAIN = "plain (Ladon 1.0.7)"
CHURN_TTL = 10.0


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


FULL = Plan(counts={1: 400, 32: 1500}, rounds=5, redis_scale=0.1, loop_calls=1_000_000,
            redis_loop_calls=2_000, tiny_tasks=600, tiny_rounds=2, churn_first=1_000,
            churn_total=50_000, churn_batch=500, rq_tasks=2_000, rq_fork_tasks=300,
            rq_progress_calls=5_000, app_calls=1_000, app_repeat=5)
QUICK = Plan(counts={1: 100, 32: 300}, rounds=1, redis_scale=0.3, loop_calls=200_000,
             redis_loop_calls=300, tiny_tasks=100, tiny_rounds=1, churn_first=500,
             churn_total=2_000, churn_batch=500, rq_tasks=200, rq_fork_tasks=50,
             rq_progress_calls=1_000, app_calls=300, app_repeat=1)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run, for a smoke test")
    parser.add_argument("--profile", metavar="DIR", help="cProfile every server's requests into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)  # clean up the servers on kill, too
    plan = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="ladon-tasks-bench-"))
    bench = Bench(plan, workdir, args.profile)
    say(f"work directory: {workdir}")
    try:
        print(bench.run(quick=args.quick))
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

    def close(self) -> None:
        self.stack.close()

    def server(self, name: str, *args: str) -> ServerProcess:
        extra = ["--profile", str(self.profile / f"{name}.prof")] if self.profile else []
        server = ServerProcess(name, [*args, *extra], self.workdir)
        self.stack.callback(server.stop)
        return server

    def redis(self, port: int | None = None) -> RedisProcess:
        server = RedisProcess(self.workdir, port)
        self.stack.callback(server.stop)
        return server

    # -- the run ----------------------------------------------------------------------

    def run(self, quick: bool) -> str:
        began = time.time()
        load_before = os.getloadavg()
        redis = self.redis()
        if self.baseline and port_is_free(6379):
            self.redis(6379)
            self.redis6379 = True
            self.notes.append("Ladon 1.0.7's Redis mode hard-codes port 6379: a second private "
                              "redis-server was started on 6379 for it.")
        elif self.baseline:
            self.notes.append("port 6379 is taken: Ladon 1.0.7's Redis mode (hard-coded port) "
                              "was not measured.")
        else:
            self.notes.append("Python has no 'imp' module: Ladon 1.0.7 cannot run unpatched, "
                              "baseline rows are n/a. Run on Python 3.11.")
        sections = [self.app_cost_section(redis.url), self.http_section(redis.url), self.churn_section(),
                    self.rq_section(redis.url)]
        load_after = os.getloadavg()
        head = self.header(quick, began, load_before, load_after)
        summary = report.table(
            "Targets", ["target", "measured", "target", "met?"], self.targets)
        notes = "Notes\n=====\n" + "\n".join(f"- {note}" for note in self.notes) + "\n"
        return "\n".join([head, *sections, summary, notes])

    def header(self, quick: bool, began: float, load_before: tuple, load_after: tuple) -> str:
        model = ""
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        versions = [f"{name} {_version(name)}" for name in ("ladon", "werkzeug", "redis", "rq")]
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
        ours_p = workloads.median(self.tiny_process.get(OURS_P, []))
        base_p = workloads.median(self.tiny_process.get(BASE_P, []))
        process_ratio = ours_p / base_p if ours_p and base_p else None
        n = plan.tiny_tasks * plan.tiny_rounds
        rows.append(["process", OURS_P, f"{n:,}", report.rate(ours_p), report.ratio(process_ratio),
                     ">=10.00x", report.met(process_ratio, 10.0)])
        rows.append(["process", BASE_P, f"{n:,}" if base_p else "n/a", report.rate(base_p), "-", "-", "-"])
        self.targets.append(["B3 tiny tasks/s vs Ladon 1.0.7 redis", report.ratio(process_ratio),
                             ">=10.00x", report.met(process_ratio, 10.0)])
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
