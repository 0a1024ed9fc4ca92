"""Issue 12: what retry, pause, unique tasks and metrics cost a task, and how soon a
resumed task starts.

    .venv-test-3.11/bin/python benchmarks/operations.py            # about a minute
    .venv-test-3.11/bin/python benchmarks/operations.py --baseline cca5946

O1. A task's store writes (create, mark running, finish: the three every task makes),
    CPU-and-wait microseconds per task, least of 5 rounds in each of 3 runs, in this code
    and in the baseline commit side by side (run from a git worktree of it, in its own
    process, on the same redis-server; the runs of the two alternate). Now every write
    also counts the metrics; a process-mode task also keeps its job for a retry (~300
    bytes here); a unique task claims its key.
O2. From ``resume`` to the start of tasks held by a pause, in thread and process mode:
    20 tasks queued while paused, then resumed; p50 and the last of their start delays.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import report  # noqa: E402
from procs import RedisProcess  # noqa: E402
from worktrees import baseline_tree  # noqa: E402

#: A job as process mode stores it now: the call as data (entry, service, arguments).
JOB = {"entry": "operations:prepare",
       "payload": {"module": "images", "service": "Images", "method": "crop",
                   "args": ["s3://bucket/photos/2026/12/03/holiday-0042.jpg", 640, 480, "jpeg"],
                   "keywords": {"LADON_METHOD_NAME": "crop"},
                   "environ": {"REMOTE_USER": "alice", "CONTENT_LENGTH": "231"}}}

#: Runs in a fresh interpreter with ``sys.path[0]`` the code under test: one line of JSON,
#: microseconds per task for each variant it has.
_WRITES = r"""
import json, sys, time
from ladon_tasks.ids import new_task_id
from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.stores.memory import MemoryStore
from ladon_tasks.task import TaskRecord, TaskState
url, tasks, job = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
new = "unique" in RedisStore.create.__code__.co_varnames
redis_store = RedisStore(url, result_ttl=60)
redis_store.register_owner("bench:1", 3600)
stores = {"redis": redis_store, "memory": MemoryStore(result_ttl=60)}

def one_round(store, with_job, unique):
    began = time.perf_counter()
    for number in range(tasks):
        record = TaskRecord(task_id=new_task_id(), method="Images.crop", created=time.time(),
                            owner="bench:1")
        if unique:
            store.create(record, with_job, unique=f"{record.task_id}")
        else:
            store.create(record, with_job)
        store.mark_running(record.task_id, time.time(), "bench:1")
        store.finish(record.task_id, TaskState.SUCCEEDED, time.time(), result=number)
    return (time.perf_counter() - began) / tasks * 1e6

variants = [("redis, no job", "redis", None, False), ("redis, process job", "redis", job, False),
            ("memory", "memory", None, False)]
if new:
    variants.append(("redis, unique", "redis", job, True))
found = {}
for name, kind, with_job, unique in variants:
    if kind == "redis" and not new and with_job is not None:
        found[name] = found["redis, no job"]  # the baseline kept no job in process mode
        continue
    found[name] = min(one_round(stores[kind], with_job, unique) for _ in range(5))
print(json.dumps(found))
"""


def store_writes(root: Path, redis_url: str, tasks: int) -> dict[str, float]:
    """O1 for the code at ``root``."""
    done = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(root)!r})\n" + _WRITES,
                           redis_url, str(tasks), json.dumps(JOB)],
                          capture_output=True, text=True, check=True, cwd=str(root))
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- O2: resume to start ------------------------------------------------------------------------


def prepare(payload: dict) -> tuple[Callable, Callable]:
    """The worker's entry for O2's jobs: a call that returns at once."""
    return (lambda update_progress: 1), (lambda value: value)


def resume_delays(mode: str, redis_url: str, tasks: int) -> list[float]:
    """Seconds from ``resume`` to each held task's start."""
    from ladon_tasks import TaskConfig, TaskEngine
    from ladon_tasks.task import ALL_METHODS, TaskState

    engine = TaskEngine(TaskConfig(mode=mode, redis_url=redis_url if mode != "thread" else None,
                                   threads=4, processes=2, key_prefix=f"bench-{time.time_ns()}"))
    try:
        store = engine.store()
        store.pause(ALL_METHODS, time.time())
        job: Any = JOB if mode != "thread" else (lambda update_progress: 1)
        ids = [engine.start("Images.crop", job) for _ in range(tasks)]
        time.sleep(1.5)  # every task has met the pause (and is held) by now
        assert all(engine.status(task_id).state is TaskState.QUEUED for task_id in ids)
        resumed = time.time()
        store.resume(None)
        deadline = time.monotonic() + 60
        while not all(engine.status(task_id).state.done for task_id in ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{mode}: the held tasks did not end after resume")
            time.sleep(0.01)
        return sorted(engine.status(task_id).started - resumed for task_id in ids)
    finally:
        engine.shutdown(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="cca5946", help="the commit to compare with")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per round of O1")
    parser.add_argument("--runs", type=int, default=3, help="alternated runs of each side in O1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        workdir = Path(name)
        redis_process = RedisProcess(workdir)
        try:
            before: dict[str, float] = {}
            now: dict[str, float] = {}
            with baseline_tree(args.baseline, workdir) as tree:
                for _ in range(args.runs):  # alternated, so that a noisy minute hits both sides
                    for found, root in ((before, tree), (now, ROOT)):
                        for variant, value in store_writes(root, redis_process.url, args.tasks).items():
                            found[variant] = min(value, found.get(variant, value))
            rows = []
            for variant, value in now.items():
                was = before.get(variant)
                rows.append([variant, "-" if was is None else f"{was:.1f}", f"{value:.1f}",
                             "-" if was is None else report.ratio(value / was)])
            print(report.table(f"O1. A task's three store writes, us per task ({args.tasks:,} tasks, "
                               "least of 3 x 5 rounds)", ["variant", f"baseline {args.baseline}", "now",
                                                      "now / baseline"], rows,
                               ["baseline 'process job': it kept no job in process mode (no retry)",
                                "unique: the key claimed at create, deleted at the end"]))
            rows = []
            for mode in ("thread", "process"):
                os.environ.setdefault("PYTHONPATH", str(HERE))
                delays = resume_delays(mode, redis_process.url, 20)
                rows.append([mode, report.ms(statistics.median(delays)), report.ms(delays[-1])])
            print(report.table("O2. From resume to the start of 20 held tasks (ms)",
                               ["mode", "p50", "last"], rows,
                               ["a pool holding tasks looks at the pauses on its supervisor turns, at "
                                "most 0.5 s (HELD_CHECK) apart; then the held tasks queue for 4 "
                                "threads or 2 worker processes"]))
        finally:
            redis_process.stop()


if __name__ == "__main__":
    main()
