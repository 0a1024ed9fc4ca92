"""The Celery application of the engine-level comparison: the same tiny task as ladon_tasks'.

Broker and result backend come from ``BENCH_CELERY_URL`` (one Redis database for both),
so the ``celery worker`` the benchmark starts and the client in the benchmark process
agree. JSON serialisation, as ladon_tasks uses; everything else is Celery's default.
"""

from __future__ import annotations

import os

from celery import Celery

QUEUE = "ladon-tasks-bench"
_URL = os.environ.get("BENCH_CELERY_URL", "redis://127.0.0.1:6379/1")

app = Celery("ladon_tasks_bench", broker=_URL, backend=_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.tiny")
def tiny() -> int:
    """The tiny task: returns 1."""
    return 1
