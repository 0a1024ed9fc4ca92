"""When a task will end and when to ask again: ``eta``, ``expected_duration``, ``poll_after``.

Two witnesses, blended by how far the task has come:

* **its own pace**: a task that reported progress ``p`` after ``t`` seconds needed about
  ``t * (1 - p) / p`` more then, if it goes on at that pace. ``t`` is counted to the
  report (``touched``), not to the poll: in process mode a report reaches Redis up to
  ``progress_interval`` later, and a poll may read a copy up to 50 ms old. The time since
  the report counts that down for up to :data:`FRESH_REPORT` seconds; a longer silence
  counts as time the task ran without progress (so its ETA grows). Exact for a task of
  steady speed that reports at least every :data:`FRESH_REPORT` seconds, useless near the
  start (a ``p`` of 0.001 says little);
* **its method's history**: the *typical duration* ``D`` of the method, the median of its
  last :data:`HISTORY` successful runs (the median, so that one run stuck behind a slow
  disk does not move it), kept in the store so that every server process agrees. A task
  that has run ``t`` seconds then needs about ``D - t`` more, until it outlives ``D``:
  from then on its history has been shown wrong for this run, and only its pace counts.

The ETA is ``p * pace + (1 - p) * history``: at the start the history speaks, at the end
the task's own pace. With neither (no progress reported yet, no history, or a run past
its typical duration that reports none) the ETA is unknown: ``-1``. A queued task's ETA
is its typical duration (the wait for a worker is not counted), an ended one's 0.

``poll_after`` tells a client when to ask again: half the ETA, so that it asks about
twice before the end, bounded to [:data:`MIN_POLL`, :data:`MAX_POLL`] seconds; with the
ETA unknown, a tenth of the time run so far, within the same bounds.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

from ladon_tasks.task import TaskRecord, TaskState

#: Successful durations of a method kept for its typical duration.
HISTORY = 20
#: Bounds of ``poll_after``, seconds.
MIN_POLL = 0.2
MAX_POLL = 10.0
#: Progress below which a task's own pace is not trusted.
MIN_PROGRESS = 0.01
#: The ETA when it is unknown.
UNKNOWN = -1.0
#: Seconds after a progress report during which the time passing counts down the ETA;
#: beyond, silence counts as time run without progress.
FRESH_REPORT = 1.0


@dataclass(frozen=True)
class Estimate:
    """What the estimator says of one task now."""

    #: Seconds until the expected end; -1 unknown, 0 ended.
    eta: float
    #: The method's typical duration in seconds; 0 without history.
    expected_duration: float
    #: Seconds a client should wait before asking again; always > 0.
    poll_after: float


def typical_duration(durations: Sequence[float]) -> float:
    """The median of ``durations`` (a method's recent successful runs); 0.0 for none."""
    return float(statistics.median(durations)) if durations else 0.0


def _bounded(seconds: float) -> float:
    return min(MAX_POLL, max(MIN_POLL, seconds))


def estimate(record: TaskRecord, expected: float, now: float) -> Estimate:
    """The ETA and poll hint of ``record`` at ``now``, its method typically taking ``expected`` s."""
    if record.state.done:
        return Estimate(0.0, expected, MAX_POLL)
    if record.state is TaskState.QUEUED or not record.started:
        eta = expected if expected > 0 else UNKNOWN
        return Estimate(eta, expected, _bounded(eta / 2 if eta > 0 else 1.0))
    elapsed = max(0.0, now - record.started)
    progress = min(1.0, max(0.0, record.progress))
    pace = _pace(record, progress, now) if progress >= MIN_PROGRESS else None
    history = expected - elapsed if expected > elapsed else None
    if pace is not None and history is not None:
        eta = progress * pace + (1.0 - progress) * history
    elif pace is not None:
        eta = pace
    elif history is not None:
        eta = history
    else:
        return Estimate(UNKNOWN, expected, _bounded(elapsed / 10))
    return Estimate(eta, expected, _bounded(eta / 2))


def _pace(record: TaskRecord, progress: float, now: float) -> float:
    """Seconds left at the pace of the task's latest report (``progress`` at ``touched``)."""
    reported = record.touched if record.started < record.touched <= now else now
    silence = now - reported
    fresh = min(silence, FRESH_REPORT)
    worked = reported - record.started + (silence - fresh)
    return max(0.0, worked * (1.0 - progress) / progress - fresh)
