"""The Prometheus metrics at ``/_tasks/metrics``: what each task method did and what runs
now, read from the stores at every scrape (see :mod:`ladon_tasks.metrics`).

Nothing is counted in this process: a custom prometheus-client collector asks
:meth:`Administration.metrics` when it is collected, so every server process and host of
a Redis-backed service answers a scrape with the same numbers.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from ladon_tasks.administration import Administration
from ladon_tasks.metrics import DURATION_BUCKETS, EVENTS, MethodMetrics

#: The prefix of every metric's name.
PREFIX = "ladon_tasks_"
#: The one label: the task method, ``Service.method``.
LABELS = ("method",)

#: Each counter, one per event of :data:`~ladon_tasks.metrics.EVENTS` (its name without
#: the prefix and ``_total``) -> its HELP: what it counts.
COUNTERS = {
    "started": "Runs of a task method started, each attempt of a task once.",
    "succeeded": "Tasks that ended with a result.",
    "failed": "Tasks that ended with an error, once no retry was left.",
    "cancelled": "Tasks that ended cancelled, while queued or while running.",
    "lost": "Tasks that ended lost: the process running them died or fell silent.",
    "retried": "Times a task was queued again for another attempt, automatically or by an administrator.",
}

DURATION_HELP = "How long runs took, from their start to their end, in seconds."
#: Each gauge -> its HELP.
GAUGES = {
    "queued": "Tasks waiting to run, now.",
    "running": "Tasks running, now.",
}


def families(snapshot: dict[str, MethodMetrics]) -> list[Metric]:
    """The metric families of a snapshot of :meth:`Administration.metrics` (every family,
    without samples if the snapshot is empty)."""
    counters = {event: CounterMetricFamily(PREFIX + event, COUNTERS[event], labels=LABELS)
                for event in EVENTS}
    duration = HistogramMetricFamily(PREFIX + "duration_seconds", DURATION_HELP, labels=LABELS)
    gauges = {name: GaugeMetricFamily(PREFIX + name, help_text, labels=LABELS)
              for name, help_text in GAUGES.items()}
    for method, counts in sorted(snapshot.items()):
        for event, family in counters.items():
            family.add_metric([method], counts.events.get(event, 0))
        duration.add_metric([method], list(cumulative(counts.buckets)), counts.duration_sum)
        gauges["queued"].add_metric([method], counts.queued)
        gauges["running"].add_metric([method], counts.running)
    return [*counters.values(), duration, *gauges.values()]


def cumulative(buckets: list[int]) -> Iterator[tuple[str, float]]:
    """A histogram's buckets as Prometheus has them: ``(le, runs up to le)``, ``+Inf`` last."""
    bounds = [floatToGoString(bound) for bound in DURATION_BUCKETS] + ["+Inf"]
    total = 0
    for bound, count in zip(bounds, buckets, strict=True):
        total += count
        yield bound, total


class TaskCollector:
    """A prometheus-client collector of an application's task metrics, asked of its stores
    at each :meth:`collect`.

    :param administration: the tasks of every route the application serves.
    """

    def __init__(self, administration: Administration) -> None:
        self.administration = administration

    def describe(self) -> list[Metric]:
        """The families it yields, without samples (so registering it reads no store)."""
        return families({})

    def collect(self) -> list[Metric]:
        """Every family, with the counts of every store as they are now."""
        return families(self.administration.metrics())


def metrics_answer(administration: Administration, environ: dict,
                   start_response: Callable) -> Iterable[bytes]:
    """The metrics in the Prometheus text format, never cached (the body is made whole
    first: a store that fails makes an error answer, not half a scrape)."""
    registry = CollectorRegistry()
    registry.register(TaskCollector(administration))
    body = generate_latest(registry)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body))),
                              ("Cache-Control", "no-store")])
    return [body]
