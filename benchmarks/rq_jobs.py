"""RQ job functions, importable by the ``rq worker`` the benchmark starts."""

from __future__ import annotations

import time

from rq import get_current_job


def tiny() -> int:
    """The tiny task: returns 1."""
    return 1


def progress(calls: int) -> int:
    """``calls`` progress updates the RQ way (``job.meta`` + ``save_meta()``); calls per second."""
    job = get_current_job()
    step = 1.0 / calls
    started = time.perf_counter()
    for i in range(calls):
        job.meta["progress"] = i * step
        job.save_meta()
    return max(1, int(calls / (time.perf_counter() - started)))
