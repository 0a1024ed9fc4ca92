"""Process-mode job entries for the engine-level comparison with RQ (no HTTP, no Ladon).

A ladon_tasks worker imports ``engine_jobs:tiny`` and calls it with the job payload; it
returns ``(call, encode)`` where ``call(update_progress)`` is the task.
"""

from __future__ import annotations

from typing import Any, Callable

from bench_common import progress_loop


def _as_is(value: Any) -> Any:
    return value


def tiny(payload: dict) -> tuple[Callable, Callable]:
    """The tiny task: returns 1."""
    return (lambda update_progress: 1), _as_is


def progress(payload: dict) -> tuple[Callable, Callable]:
    """``payload['calls']`` update_progress calls; returns calls per second."""
    calls = int(payload["calls"])
    return (lambda update_progress: progress_loop(update_progress, calls)), _as_is
