"""The console's summary: pauses, and per method its counts and recent durations."""

from __future__ import annotations

from typing import Any, Sequence

from ladon_tasks.administration import Administration
from ladon_tasks.metrics import EVENTS, MethodMetrics
from ladon_tasks.task import ALL_METHODS

#: The counts of a method's summary, and of the totals.
_COUNTS = ("queued", "running", *EVENTS)


def paused_of(pauses: dict[str, float]) -> dict[str, Any]:
    """The pauses as JSON: ``{"all": bool, "methods": [...]}``."""
    return {"all": ALL_METHODS in pauses,
            "methods": sorted(method for method in pauses if method != ALL_METHODS)}


def percentile(durations: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile of ``durations`` (nearest rank); None for none."""
    if not durations:
        return None
    ordered = sorted(durations)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil, at least the first
    return round(ordered[int(rank) - 1], 3)


def _counts(metrics: MethodMetrics) -> dict[str, int]:
    return {"queued": metrics.queued, "running": metrics.running, **metrics.events}


def summary_of(admin: Administration) -> dict[str, Any]:
    """``{"paused", "methods": [...], "totals"}``: every served method, and every method
    the stores counted (one no longer served, too)."""
    counted = admin.metrics()
    names = sorted(set(counted) | set(admin.methods))
    methods = []
    totals = dict.fromkeys(_COUNTS, 0)
    for name in names:
        counts = _counts(counted.get(name) or MethodMetrics(name))
        durations = admin.durations(name)
        methods.append({"method": name, **counts, "p50": percentile(durations, 0.5),
                        "p90": percentile(durations, 0.9)})
        for key in _COUNTS:
            totals[key] += counts[key]
    return {"paused": paused_of(admin.paused()), "methods": methods, "totals": totals}
