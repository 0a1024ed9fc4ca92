"""RQ side by side with the ladon_tasks engine: one worker each, one Redis, no HTTP.

The same tiny task runs N times on each: enqueue (start) every job from this process,
then wait, in order, until each is finished. One worker each: an ``rq worker``
subprocess (``SimpleWorker`` runs jobs in the worker process; RQ's default ``Worker``
forks a work horse per job) and a ladon_tasks ``TaskEngine`` in process mode with
``processes=1``. Progress is RQ's documented way (``job.meta`` + ``save_meta()``, one
Redis write per call) against ladon_tasks' ``update_progress`` (coalesced writes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUEUE = "ladon-tasks-bench"


@dataclass
class Side:
    """What one system did: tiny tasks/s and progress updates/s."""

    label: str
    tasks: int
    tasks_per_s: float
    progress_calls: int = 0
    progress_per_s: float | None = None


def rq_available() -> str | None:
    """None if RQ can be used, else why not."""
    try:
        import rq  # noqa: F401
    except ImportError:
        return "rq is not installed (pip install rq)"
    return None


def run_rq(redis_url: str, worker_class: str, tasks: int, progress_calls: int, workdir: Path) -> Side:
    """Tiny tasks and a progress loop on one ``rq worker`` of ``worker_class``."""
    import redis
    from rq import Queue

    connection = redis.Redis.from_url(redis_url)
    queue = Queue(QUEUE, connection=connection)
    queue.empty()
    name = worker_class.rsplit(".", 1)[-1]
    log = open(workdir / f"rq-{name}.log", "wb")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE / "services")]))
    worker = subprocess.Popen(
        [sys.executable, "-c", "import sys; from rq.cli import main; sys.exit(main())", "worker",
         "--url", redis_url, "--worker-class", worker_class, "--logging_level", "WARNING",
         "--disable-job-desc-logging", "--name", f"bench-{name}-{os.getpid()}", QUEUE],
        stdout=log, stderr=log, env=env, cwd=str(HERE))
    try:
        import rq_jobs

        _wait_rq([queue.enqueue(rq_jobs.tiny)], worker)  # the worker is up and warm
        started = time.perf_counter()
        jobs = [queue.enqueue(rq_jobs.tiny) for _ in range(tasks)]
        _wait_rq(jobs, worker)
        elapsed = time.perf_counter() - started
        side = Side(f"RQ {rq_version()} {name}", tasks, tasks / elapsed)
        if progress_calls:
            job = queue.enqueue(rq_jobs.progress, progress_calls)
            _wait_rq([job], worker)
            side.progress_calls = progress_calls
            side.progress_per_s = float(job.return_value())
        return side
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        connection.close()


def _wait_rq(jobs: list, worker: subprocess.Popen, timeout: float = 600.0) -> None:
    from rq.job import JobStatus

    deadline = time.monotonic() + timeout
    for job in jobs:
        while True:
            status = job.get_status(refresh=True)
            if status == JobStatus.FINISHED:
                break
            if status == JobStatus.FAILED:
                raise RuntimeError(f"RQ job {job.id} failed: {job.latest_result()}")
            if worker.poll() is not None:
                raise RuntimeError("the rq worker exited; see its log in the work directory")
            if time.monotonic() > deadline:
                raise RuntimeError(f"RQ job {job.id} not finished after {timeout:.0f} s")
            time.sleep(0.001)


def rq_version() -> str:
    import rq

    return getattr(rq, "__version__", "?")


def run_engine(redis_url: str, tasks: int, progress_calls: int) -> Side:
    """Tiny tasks and a progress loop on a process-mode TaskEngine with one worker process."""
    from ladon_tasks.config import TaskConfig
    from ladon_tasks.engine import TaskEngine

    engine = TaskEngine(TaskConfig(mode="process", redis_url=redis_url, processes=1,
                                   key_prefix="ladon-tasks-bench-engine"))
    tiny = {"entry": "engine_jobs:tiny", "payload": {}}
    try:
        _wait_engine(engine, [engine.start("bench.tiny", tiny)])  # the pool is up and warm
        started = time.perf_counter()
        ids = [engine.start("bench.tiny", tiny) for _ in range(tasks)]
        _wait_engine(engine, ids)
        elapsed = time.perf_counter() - started
        side = Side("ladon_tasks engine, process mode", tasks, tasks / elapsed)
        if progress_calls:
            job = {"entry": "engine_jobs:progress", "payload": {"calls": progress_calls}}
            task_id = engine.start("bench.progress", job)
            _wait_engine(engine, [task_id])
            side.progress_calls = progress_calls
            side.progress_per_s = float(engine.result(task_id))
        return side
    finally:
        engine.shutdown(grace_period=5)


def _wait_engine(engine, ids: list[str], timeout: float = 600.0) -> None:
    from ladon_tasks.task import TaskState

    deadline = time.monotonic() + timeout
    for task_id in ids:
        while True:
            record = engine.status(task_id)
            if record.state is TaskState.SUCCEEDED:
                break
            if record.state.done:
                raise RuntimeError(f"task {task_id} ended {record.state.value}: {record.error}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"task {task_id} not done after {timeout:.0f} s")
            time.sleep(0.001)
