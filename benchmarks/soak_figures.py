"""The figures of one soak run: its requests outside and during the outage, each answer's
class, latencies, outcome counts and RSS totals."""

from __future__ import annotations

from typing import Callable

from load import percentile
from soak_client import OK, Event
from soak_tally import Tally

#: Task outcomes answered as server faults: counted as lost or failed tasks, not as faults.
TASK_FAULTS = ("server fault TaskLost", "server fault TaskFailed")


def split(tally: Tally, slack: float) -> tuple[list[Event], list[Event]]:
    """The run's requests outside the outage window and those overlapping it."""
    if tally.outage is None:
        return tally.events, []
    begin, end = tally.outage.window(slack)
    outside, during = [], []
    for event in tally.events:
        (during if event[1] <= end and event[2] >= begin else outside).append(event)
    return outside, during


def error_class(outcome: str) -> str | None:
    """``server fault``, ``HTTP 5xx``, ``connection error``, ``client fault``, or None."""
    if outcome == OK or outcome in TASK_FAULTS:
        return None
    if outcome.startswith("server fault"):
        return "server fault"
    if outcome.startswith("HTTP 5"):
        return "HTTP 5xx"
    if outcome.startswith("connection"):
        return "connection error"
    if outcome.startswith("stale"):
        return "stale keep-alive"
    if outcome.startswith("client fault"):
        return "client fault"
    return "other error"


def _count(events: list[Event], kind: str) -> int:
    """How many of ``events`` were answers of class ``kind``."""
    return sum(error_class(event[3]) == kind for event in events)


def _latency(events: list[Event], endpoint: str, fraction: float | None) -> float | None:
    """A percentile (the maximum for None) of the latencies of ``endpoint``'s requests."""
    values = [event[2] - event[1] for event in events if event[0] == endpoint]
    if not values:
        return None
    return max(values) if fraction is None else percentile(values, fraction)


def _rss_total(rss: dict[str, tuple[int, float]], test: Callable[[str], bool]) -> float:
    """The RSS (MB) of the processes whose role passes ``test``."""
    return sum(mb for role, (_pid, mb) in rss.items() if test(role))


#: The kinds of processes whose RSS the summary adds up, by what their role says.
ROLES: dict[str, Callable[[str], bool]] = {
    "mod_wsgi daemons": lambda role: role.startswith("daemon ") and role.count(" ") == 1,
    "task workers": lambda role: " worker " in role,
    "Apache parent and children": lambda role: role.startswith("apache"),
}


def measures(tally: Tally, slack: float) -> dict[str, float | None]:
    """Every figure of the summary table for one run (None: does not apply)."""
    outside, during = split(tally, slack)
    kinds = ("server fault", "HTTP 5xx", "connection error", "other error")
    out = outcome_counts(tally)
    out["defects (target 0)"] = (sum(out.values()) - out["tasks started"] - out["succeeded, right result"]
                                 + sum(_count(outside, kind) for kind in kinds))
    for kind in kinds:
        out[f"{kind}s outside the outage"] = _count(outside, kind)
        out[f"{kind}s during the outage"] = _count(during, kind) if tally.outage else None
    out["client faults (any time)"] = _count(tally.events, "client fault")
    out["stale keep-alive connections, retried"] = _count(tally.events, "stale keep-alive")
    out["requests"] = len(tally.events)
    out["tasks/s"] = tally.started / tally.seconds if tally.seconds else None
    for endpoint, where, events in (("progress", "outside", outside), ("progress", "during", during),
                                    ("start", "outside", outside), ("result", "outside", outside)):
        for name, fraction in (("p50", 0.5), ("p99", 0.99), ("max", None)):
            value = _latency(events, endpoint, fraction) if where == "outside" or tally.outage else None
            out[f"_{endpoint} {name} ms, {where} the outage"] = value
    for label, test in ROLES.items():
        out[f"RSS {label} before, MB"] = _rss_total(tally.rss_before, test)
        out[f"RSS {label} after, MB"] = _rss_total(tally.rss_after, test)
    return out


def outcome_counts(tally: Tally) -> dict[str, float | None]:
    """The first rows of the summary: tasks started, and how they ended."""
    lost = sum(count for outcome, count in tally.outcomes.items() if outcome.startswith("lost"))
    return {"tasks started": tally.started, "succeeded, right result": tally.outcomes["succeeded"],
            "lost results": lost, "wrong results": tally.outcomes["wrong result"],
            "failed or cancelled": tally.outcomes["failed"] + tally.outcomes["cancelled"],
            "never ended": tally.outcomes["never ended"],
            "starts abandoned (refused for 120 s)": tally.outcomes["start abandoned"]}
