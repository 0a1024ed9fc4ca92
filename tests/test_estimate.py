"""The estimator behind eta, expected_duration and poll_after, on synthetic histories."""

from __future__ import annotations

import pytest

from ladon_tasks.estimate import (
    FRESH_REPORT,
    HISTORY,
    MAX_POLL,
    MIN_POLL,
    UNKNOWN,
    estimate,
    typical_duration,
)
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


def reported(started_ago: float, progress: float, report_age: float) -> TaskRecord:
    """A running task that reported ``progress`` ``report_age`` seconds before NOW."""
    record = running(started_ago, progress)
    record.touched = NOW - report_age
    return record


@pytest.mark.parametrize("history", [0.0, 40.0])
@pytest.mark.parametrize("report_age", [0.0, 0.15, 0.5, FRESH_REPORT])
def test_the_pace_is_reckoned_to_the_report_not_to_the_poll(history, report_age):
    # 40 s at a steady pace: 25% reported at 10 s, read report_age later (process mode
    # writes a report up to progress_interval after the call, and a copy may be 50 ms old).
    record = reported(10.0 + report_age, 0.25, report_age)
    assert estimate(record, history, NOW).eta == pytest.approx(30.0 - report_age)


def test_a_silence_beyond_a_fresh_report_counts_as_time_without_progress():
    at_the_edge = estimate(reported(10.0 + FRESH_REPORT, 0.25, FRESH_REPORT), 0.0, NOW).eta
    just_past = estimate(reported(10.0 + FRESH_REPORT + 1e-6, 0.25, FRESH_REPORT + 1e-6), 0.0, NOW).eta
    assert just_past == pytest.approx(at_the_edge, abs=1e-4)  # no jump
    etas = [estimate(reported(10.0 + age, 0.25, age), 0.0, NOW).eta for age in (2.0, 5.0, 20.0)]
    assert etas == sorted(etas) and etas[0] > at_the_edge  # the longer it says nothing, the later
    # 20 s of silence: 10 s of reported work plus 19 s without progress, at the reported pace.
    assert etas[-1] == pytest.approx((10.0 + 19.0) * 3 - FRESH_REPORT)


@pytest.mark.parametrize("touched", [NOW + 5.0, NOW - 60.0, 0.0])
def test_a_report_time_that_cannot_be_is_not_believed(touched):
    # A report after the poll (another host's clock) or before the start: reckoned to now.
    record = running(10.0, 0.25)
    record.touched = touched
    assert estimate(record, 0.0, NOW).eta == pytest.approx(30.0)
