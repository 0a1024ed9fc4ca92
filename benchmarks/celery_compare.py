"""C4: Celery prefork side by side with the ladon_tasks engine: 2 processes each, one Redis, no HTTP.

The same trivial task body (returns 1) runs N times on each: submit every task from
this process, then await them all, in batches interleaved between the two systems;
tasks/s = N / (submit time + wait time), median over the batches.

- ladon_tasks: ``TaskEngine(mode="process", processes=2)`` on a private redis-server (the
  engine, store and process executor that serve process mode over HTTP), job
  ``engine_jobs:tiny``; awaited by reading each task's state until it is done, in order
  (1 ms between two reads of an unfinished task).
- Celery: ``celery worker --pool prefork -c 2`` (``celery_jobs``), broker and result
  backend on the same private redis-server (database 1 for both; ladon_tasks uses 0),
  ``task.delay()`` per task, awaited with ``ResultSet.join_native`` (the Redis
  backend's native join; one pub/sub subscription per task, as ``delay()`` makes).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
OURS = "ladon_tasks engine, process mode (2 processes)"
CELERY = "Celery {version} prefork (-c 2)"
TIMEOUT = 300.0


@dataclass
class Side:
    """Batches of one system: tasks/s, and how a batch splits into submit and wait."""

    label: str
    tasks: int
    rates: list[float] = field(default_factory=list)
    submit_seconds: list[float] = field(default_factory=list)
    wait_seconds: list[float] = field(default_factory=list)

    def add(self, submit: float, wait: float) -> None:
        self.rates.append(self.tasks / (submit + wait))
        self.submit_seconds.append(submit)
        self.wait_seconds.append(wait)

    @property
    def rate(self) -> float:
        return _median(self.rates)

    @property
    def submit_rate(self) -> float:
        """Tasks submitted per second (submit phase only)."""
        return self.tasks / _median(self.submit_seconds)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def celery_available() -> str | None:
    """None if Celery can be used, else why not."""
    try:
        import celery  # noqa: F401
    except ImportError:
        return "celery is not installed (pip install celery, or pip install -e '.[bench]')"
    return None


def celery_url(redis_url: str) -> str:
    """Database 1 of the redis-server of ``redis_url``."""
    return redis_url.rsplit("/", 1)[0] + "/1"


class CeleryWorker:
    """``celery -A celery_jobs worker --pool prefork -c 2`` in a subprocess."""

    def __init__(self, redis_url: str, workdir: Path, processes: int = 2) -> None:
        self.url = celery_url(redis_url)
        # celery_jobs reads its broker from the environment when first imported.
        os.environ["BENCH_CELERY_URL"] = self.url
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE / "services")]))
        self.log = open(workdir / "celery-worker.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_jobs", "worker", "--pool", "prefork",
             "-c", str(processes), "--loglevel", "WARNING", "-Q", "ladon-tasks-bench",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"bench{os.getpid()}@%h"],
            cwd=str(HERE), env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        if str(HERE) not in sys.path:
            sys.path.insert(0, str(HERE))
        import celery_jobs

        self.jobs = celery_jobs
        if celery_jobs.app.conf.broker_url != self.url:
            raise RuntimeError("celery_jobs was imported earlier with another broker URL")
        celery_jobs.app.control.purge()
        self.jobs.tiny.delay().get(timeout=120)  # the worker is up and warm

    def batch(self, tasks: int) -> tuple[float, float]:
        """Submit ``tasks`` tiny tasks, then await them all: ``(submit s, wait s)``."""
        from celery.result import ResultSet

        if self.process.poll() is not None:
            raise RuntimeError("the celery worker exited; see celery-worker.log in the work directory")
        started = time.perf_counter()
        results = [self.jobs.tiny.delay() for _ in range(tasks)]
        submitted = time.perf_counter()
        values = ResultSet(results).join_native(timeout=TIMEOUT)
        done = time.perf_counter()
        if values != [1] * tasks:
            raise RuntimeError(f"Celery tiny tasks answered {set(map(repr, values))}")
        for result in results:
            result.forget()
        return submitted - started, done - submitted

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()


class EngineSide:
    """A process-mode ``TaskEngine`` with ``processes`` workers, in this process."""

    def __init__(self, redis_url: str, processes: int = 2) -> None:
        from ladon_tasks.config import TaskConfig
        from ladon_tasks.engine import TaskEngine

        self.engine = TaskEngine(TaskConfig(mode="process", redis_url=redis_url, processes=processes,
                                            key_prefix="ladon-tasks-bench-celery"))
        self.job = {"entry": "engine_jobs:tiny", "payload": {}}
        self.wait(self._start_many(processes * 2))  # the pool is up and warm

    def _start_many(self, tasks: int) -> list[str]:
        start: Callable[..., str] = self.engine.start
        return [start("bench.tiny", self.job) for _ in range(tasks)]

    def batch(self, tasks: int) -> tuple[float, float]:
        started = time.perf_counter()
        ids = self._start_many(tasks)
        submitted = time.perf_counter()
        self.wait(ids)
        return submitted - started, time.perf_counter() - submitted

    def wait(self, ids: list[str]) -> None:
        from ladon_tasks.task import TaskState

        deadline = time.monotonic() + TIMEOUT
        status = self.engine.status
        for task_id in ids:
            while True:
                record: Any = status(task_id)
                if record.state is TaskState.SUCCEEDED:
                    break
                if record.state.done:
                    raise RuntimeError(f"task {task_id} ended {record.state.value}: {record.error}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"task {task_id} not done after {TIMEOUT:.0f} s")
                time.sleep(0.001)

    def stop(self) -> None:
        self.engine.shutdown(grace_period=5)


def celery_version() -> str:
    import celery

    return getattr(celery, "__version__", "?")


def compare(redis_url: str, tasks: int, rounds: int, workdir: Path,
            say: Callable[[str], None] = print) -> list[Side]:
    """``rounds`` interleaved batches of ``tasks`` on each system; ours first."""
    ours, theirs = Side(OURS, tasks), Side(CELERY.format(version=celery_version()), tasks)
    engine = EngineSide(redis_url)
    try:
        worker = CeleryWorker(redis_url, workdir)
        try:
            for turn in range(rounds):
                order = [(ours, engine), (theirs, worker)]
                for side, runner in (order if turn % 2 == 0 else order[::-1]):
                    side.add(*runner.batch(tasks))
                    say(f"  {side.label}: {side.rates[-1]:,.0f} tasks/s")
        finally:
            worker.stop()
    finally:
        engine.stop()
    return [ours, theirs]
