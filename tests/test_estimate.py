"""The estimator behind eta, expected_duration and poll_after, on synthetic histories."""

from __future__ import annotations

import pytest

from ladon_tasks.estimate import HISTORY, MAX_POLL, MIN_POLL, UNKNOWN, estimate, typical_duration
from ladon_tasks.task import TaskRecord, TaskState

NOW = 1_000_000.0


def running(elapsed: float, progress: float) -> TaskRecord:
    return TaskRecord(task_id="t", method="S.m", state=TaskState.RUNNING, progress=progress,
                      created=NOW - elapsed - 1, started=NOW - elapsed)


def test_the_typical_duration_is_the_median_so_one_slow_run_does_not_move_it():
    assert typical_duration([]) == 0.0
    assert typical_duration([10.0, 11.0, 9.0]) == 10.0
    assert typical_duration([10.0, 11.0, 9.0, 10.0, 600.0]) == 10.0
    assert HISTORY >= 10


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
@pytest.mark.parametrize("history", [0.0, 40.0, 20.0, 80.0])
def test_a_task_of_steady_speed_gets_a_close_eta_whatever_its_history(fraction, history):
    # 40 s at a steady pace; the method's history says 0 (none), 40 (right), 20 or 80 (wrong).
    total = 40.0
    eta = estimate(running(total * fraction, fraction), history, NOW).eta
    remaining = total * (1 - fraction)
    if history in (0.0, total):
        assert eta == pytest.approx(remaining)
    else:
        # A wrong history pulls the early estimates, less and less as the task goes on.
        assert abs(eta - remaining) <= (1 - fraction) * abs(history - total) + 1e-9


def test_before_any_progress_the_history_speaks_and_without_it_the_eta_is_unknown():
    assert estimate(running(3.0, 0.0), 10.0, NOW).eta == pytest.approx(7.0)
    unknown = estimate(running(3.0, 0.0), 0.0, NOW)
    assert unknown.eta == UNKNOWN and MIN_POLL <= unknown.poll_after <= MAX_POLL


def test_a_run_past_its_typical_duration_trusts_its_own_pace_only():
    assert estimate(running(30.0, 0.75), 10.0, NOW).eta == pytest.approx(10.0)
    assert estimate(running(30.0, 0.0), 10.0, NOW).eta == UNKNOWN


def test_queued_and_ended_tasks():
    queued = TaskRecord(task_id="t", method="S.m", created=NOW)
    assert estimate(queued, 12.0, NOW).eta == 12.0 and estimate(queued, 0.0, NOW).eta == UNKNOWN
    ended = TaskRecord(task_id="t", method="S.m", state=TaskState.FAILED, progress=1.0,
                       started=NOW - 5, finished=NOW)
    answer = estimate(ended, 12.0, NOW)
    assert (answer.eta, answer.expected_duration, answer.poll_after) == (0.0, 12.0, MAX_POLL)


@pytest.mark.parametrize("elapsed, progress, history", [
    (0.1, 0.999, 0.0), (1.0, 0.5, 0.0), (100.0, 0.1, 0.0), (5000.0, 0.01, 0.0), (2.0, 0.0, 0.0),
    (0.0, 0.0, 3600.0),
])
def test_poll_after_is_half_the_eta_within_its_bounds(elapsed, progress, history):
    answer = estimate(running(elapsed, progress), history, NOW)
    assert MIN_POLL <= answer.poll_after <= MAX_POLL
    if answer.eta >= 0:
        assert answer.poll_after == pytest.approx(min(MAX_POLL, max(MIN_POLL, answer.eta / 2)))
