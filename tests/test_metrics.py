"""The Prometheus metrics at /_tasks/metrics: the exact exposition of given counts, then a
known workload over real HTTP in thread, process and celery mode, counted exactly, and two
process-mode servers on one Redis that report the same numbers."""

from __future__ import annotations

import hmac
import json
import urllib.error
import urllib.request
from typing import Any, Callable

import pytest
from conftest import ServeProcess, make_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_caller_binding import PREFIX, AsUser
from test_lifecycle import marked_pid
from test_protocols import RawJsonWsp, wait_done
from werkzeug.test import Client

from ladon_tasks.console.app import Console
from ladon_tasks.console.metrics import COUNTERS, GAUGES, TaskCollector, metrics_answer
from ladon_tasks.exceptions import StoreUnavailable
from ladon_tasks.metrics import DURATION_BUCKETS, EVENTS, MethodMetrics

ADMIN = "root"
MODULE = "metrics_service"
SERVICE = "MetricsService"
HOLD, ECHO, FAIL, FAIL_ONCE = (f"{SERVICE}.{name}" for name in ("hold", "echo", "fail", "failOnce"))


#: The scraper's bearer token, as docs/operations.rst checks it.
SCRAPER = b"Bearer s3cret-scrape-token"


def is_root(environ: dict) -> bool:
    return environ.get("REMOTE_USER") == ADMIN


def root_or_scraper(environ: dict) -> bool:
    """The ``admin`` of docs/operations.rst: the administrators, and a scraper with its
    token, admitted to the metrics alone."""
    if is_root(environ):
        return True
    given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1")
    return environ.get("PATH_INFO") == "/_tasks/metrics" and hmac.compare_digest(given, SCRAPER)


# -- the exposition of given counts -------------------------------------------------------


class Given:
    """Stands in for an Administration: its metrics are the counts it was given."""

    def __init__(self, snapshot: dict[str, MethodMetrics] | Exception) -> None:
        self.snapshot = snapshot
        self.asked = 0

    def metrics(self) -> dict[str, MethodMetrics]:
        self.asked += 1
        if isinstance(self.snapshot, Exception):
            raise self.snapshot
        return self.snapshot


def method_metrics(method: str, *, queued: int = 0, running: int = 0, buckets: dict[int, int] | None = None,
                   duration_sum: float = 0.0, **events: int) -> MethodMetrics:
    counts = MethodMetrics(method, queued=queued, running=running, duration_sum=duration_sum)
    counts.events.update(events)
    for index, runs in (buckets or {}).items():
        counts.buckets[index] = runs
    return counts


EXPOSED = """\
# HELP ladon_tasks_started_total Runs of a task method started, each attempt of a task once.
# TYPE ladon_tasks_started_total counter
ladon_tasks_started_total{method="Instances.clone"} 12.0
# HELP ladon_tasks_succeeded_total Tasks that ended with a result.
# TYPE ladon_tasks_succeeded_total counter
ladon_tasks_succeeded_total{method="Instances.clone"} 7.0
# HELP ladon_tasks_failed_total Tasks that ended with an error, once no retry was left.
# TYPE ladon_tasks_failed_total counter
ladon_tasks_failed_total{method="Instances.clone"} 2.0
# HELP ladon_tasks_cancelled_total Tasks that ended cancelled, while queued or while running.
# TYPE ladon_tasks_cancelled_total counter
ladon_tasks_cancelled_total{method="Instances.clone"} 1.0
# HELP ladon_tasks_lost_total Tasks that ended lost: the process running them died or fell silent.
# TYPE ladon_tasks_lost_total counter
ladon_tasks_lost_total{method="Instances.clone"} 1.0
# HELP ladon_tasks_retried_total Times a task was queued again for another attempt, \
automatically or by an administrator.
# TYPE ladon_tasks_retried_total counter
ladon_tasks_retried_total{method="Instances.clone"} 3.0
# HELP ladon_tasks_duration_seconds How long runs took, from their start to their end, in seconds.
# TYPE ladon_tasks_duration_seconds histogram
ladon_tasks_duration_seconds_bucket{le="0.1",method="Instances.clone"} 1.0
ladon_tasks_duration_seconds_bucket{le="0.5",method="Instances.clone"} 1.0
ladon_tasks_duration_seconds_bucket{le="1.0",method="Instances.clone"} 3.0
ladon_tasks_duration_seconds_bucket{le="5.0",method="Instances.clone"} 3.0
ladon_tasks_duration_seconds_bucket{le="15.0",method="Instances.clone"} 3.0
ladon_tasks_duration_seconds_bucket{le="60.0",method="Instances.clone"} 8.0
ladon_tasks_duration_seconds_bucket{le="300.0",method="Instances.clone"} 8.0
ladon_tasks_duration_seconds_bucket{le="1800.0",method="Instances.clone"} 8.0
ladon_tasks_duration_seconds_bucket{le="3600.0",method="Instances.clone"} 8.0
ladon_tasks_duration_seconds_bucket{le="+Inf",method="Instances.clone"} 10.0
ladon_tasks_duration_seconds_count{method="Instances.clone"} 10.0
ladon_tasks_duration_seconds_sum{method="Instances.clone"} 16000.25
# HELP ladon_tasks_queued Tasks waiting to run, now.
# TYPE ladon_tasks_queued gauge
ladon_tasks_queued{method="Instances.clone"} 4.0
# HELP ladon_tasks_running Tasks running, now.
# TYPE ladon_tasks_running gauge
ladon_tasks_running{method="Instances.clone"} 1.0
"""


def test_given_counts_are_exposed_exactly_with_cumulative_buckets():
    counts = method_metrics("Instances.clone", queued=4, running=1, duration_sum=16000.25,
                            buckets={0: 1, 2: 2, 5: 5, len(DURATION_BUCKETS): 2},
                            started=12, succeeded=7, failed=2, cancelled=1, lost=1, retried=3)
    given = Given({"Instances.clone": counts})
    answered: list[tuple[str, list]] = []
    body = b"".join(metrics_answer(given, {}, lambda status, headers: answered.append((status, headers))))
    assert body.decode() == EXPOSED
    assert answered == [("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body))),
                                    ("Cache-Control", "no-store")])]
    assert given.asked == 1  # one snapshot per scrape: the families agree with each other


def test_every_method_has_its_own_samples_in_method_order():
    given = Given({"B.second": method_metrics("B.second", running=2, started=2),
                   "A.first": method_metrics("A.first", buckets={9: 1}, duration_sum=4000.0, started=1,
                                             lost=1)})
    scraped = Scrape(b"".join(metrics_answer(given, {}, lambda *_: None)).decode())
    assert [sample.labels["method"] for sample in scraped.families["ladon_tasks_started"].samples] == [
        "A.first", "B.second"]
    assert scraped.counters("A.first") == dict.fromkeys(EVENTS, 0) | {"started": 1, "lost": 1}
    assert scraped.counters("B.second") == dict.fromkeys(EVENTS, 0) | {"started": 2}
    assert scraped.gauges("B.second") == {"queued": 0, "running": 2}
    assert scraped.buckets("A.first") == [0] * len(DURATION_BUCKETS) + [1]  # beyond an hour: +Inf only
    assert scraped.runs("A.first") == (1, 4000.0) and scraped.runs("B.second") == (0, 0.0)


def test_before_any_task_every_family_is_there_without_samples():
    scraped = Scrape(b"".join(metrics_answer(Given({}), {}, lambda *_: None)).decode())
    names = [*(f"ladon_tasks_{event}" for event in EVENTS), "ladon_tasks_duration_seconds",
             "ladon_tasks_queued", "ladon_tasks_running"]
    assert list(scraped.families) == names
    assert all(family.documentation and not family.samples for family in scraped.families.values())
    assert tuple(COUNTERS) == EVENTS and set(GAUGES) == {"queued", "running"}


def test_registering_the_collector_reads_no_store_and_each_scrape_reads_anew():
    given = Given({})
    registry = CollectorRegistry()
    registry.register(TaskCollector(given))
    assert given.asked == 0
    given.snapshot = {"A.first": method_metrics("A.first", succeeded=1)}
    assert b'ladon_tasks_succeeded_total{method="A.first"} 1.0' in generate_latest(registry)
    given.snapshot = {"A.first": method_metrics("A.first", succeeded=2)}
    assert b'ladon_tasks_succeeded_total{method="A.first"} 2.0' in generate_latest(registry)
    assert given.asked == 2


def test_the_console_answers_a_head_refuses_a_post_and_says_when_redis_does_not_answer():
    given = Given({"A.first": method_metrics("A.first", started=1)})
    client = Client(Console(given, admin=lambda environ: True))
    got = client.get("/_tasks/metrics")
    head = client.head("/_tasks/metrics")
    assert got.status_code == head.status_code == 200
    assert head.data == b"" and head.headers["Content-Length"] == str(len(got.data))
    assert got.headers["Content-Type"] == CONTENT_TYPE_LATEST and got.headers["Cache-Control"] == "no-store"
    posted = client.post("/_tasks/metrics")
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET"
    given.snapshot = StoreUnavailable("Redis at redis://127.0.0.1:1/0 does not answer")
    failed = client.get("/_tasks/metrics")
    assert failed.status_code == 503 and failed.json["error"]["code"] == "StoreUnavailable"
    assert failed.headers["Retry-After"]


# -- scrapes over real HTTP ---------------------------------------------------------------


class Scrape:
    """One scrape, parsed by prometheus-client's own parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        #: ``(sample name, method, le)`` -> value (``le`` None but for buckets).
        self.values = {(sample.name, sample.labels["method"], sample.labels.get("le")): sample.value
                       for family in self.families.values() for sample in family.samples}

    def methods(self) -> set[str]:
        return {method for _, method, _ in self.values}

    def counters(self, method: str) -> dict[str, float]:
        return {event: self.values[(f"ladon_tasks_{event}_total", method, None)] for event in EVENTS}

    def gauges(self, method: str) -> dict[str, float]:
        return {name: self.values[(f"ladon_tasks_{name}", method, None)] for name in ("queued", "running")}

    def buckets(self, method: str) -> list[float]:
        """The histogram's buckets, cumulative as exposed, +Inf last."""
        bounds = [str(bound) for bound in DURATION_BUCKETS] + ["+Inf"]
        return [self.values[("ladon_tasks_duration_seconds_bucket", method, bound)] for bound in bounds]

    def runs(self, method: str) -> tuple[float, float]:
        """The histogram's count and sum."""
        return (self.values[("ladon_tasks_duration_seconds_count", method, None)],
                self.values[("ladon_tasks_duration_seconds_sum", method, None)])


def get_metrics(url: str, method: str = "GET", path: str = "metrics",
                **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"{url}/_tasks/{path}", method=method, headers=headers,
                                     data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def scrape(url: str) -> Scrape:
    """A scrape of the application at ``url`` (its root, as an administrator)."""
    status, headers, body = get_metrics(url)
    assert status == 200, (status, body)
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST and headers["Cache-Control"] == "no-store"
    return Scrape(body.decode())


def expected(**events: int) -> dict[str, float]:
    return dict.fromkeys(EVENTS, 0) | events


@pytest.fixture
def metered(mode: str, request: pytest.FixtureRequest, live_server: Callable) -> Callable[..., str]:
    """``metered(size=1)`` -> the root URL of the metrics service on a live server in this
    test's mode, with ``size`` threads, processes or pool processes; its administrator is
    root (``/as/root/``) or as ``admin`` says."""

    def start(size: int = 1, admin: Callable[[dict], bool] = is_root) -> str:
        options: dict[str, Any] = {"threads": size}
        worker = None
        if mode != "thread":
            redis_url = request.getfixturevalue("redis_url")
            options = {"mode": mode, "redis_url": redis_url}
            if mode == "process":
                options["processes"] = size
            else:
                workers = request.getfixturevalue("celery_workers")
                worker = workers(redis_url, modules=[MODULE], concurrency=size)
        app = make_app([MODULE], admin=admin, progress_interval=0.05, **options)
        url = live_server(AsUser(app)).url
        if worker is not None:
            worker.wait_ready()
        return url

    return start


def run_to_end(client: RawJsonWsp, method: str, **args: Any) -> tuple[str, str]:
    """Start a task and wait for its end: its id and final state."""
    task_id = client.start(SERVICE, method, **args)
    return task_id, wait_done(client, SERVICE, method, task_id)["state"]


def test_a_scrape_counts_exactly_what_the_tasks_did(metered, tmp_path):
    root = metered(size=1)
    url = f"{root}{PREFIX}{ADMIN}"
    client = RawJsonWsp(url)

    # The only worker runs one task; a second waits for it.
    gate = tmp_path / "gate"
    hold = {"gate": str(gate), "seconds": 60.0}
    first = client.start(SERVICE, "hold", marker=str(tmp_path / "first"), **hold)
    marked_pid(tmp_path / "first")
    second = client.start(SERVICE, "hold", marker=str(tmp_path / "second"), **hold)
    assert scrape(url).gauges(HOLD) == {"queued": 1, "running": 1}

    client.call(SERVICE, "hold_cancel", task_id=first)
    assert wait_done(client, SERVICE, "hold", first)["state"] == "cancelled"
    marked_pid(tmp_path / "second")
    assert scrape(url).gauges(HOLD) == {"queued": 0, "running": 1}
    gate.touch()
    assert wait_done(client, SERVICE, "hold", second)["state"] == "succeeded"

    ends = [run_to_end(client, "echo", text=str(number))[1] for number in range(3)]
    failed = [run_to_end(client, "fail", message=f"failure {number}") for number in range(2)]
    ends += [state for _, state in failed]
    ends += [run_to_end(client, "failOnce", counter=str(tmp_path / "attempts"))[1]]
    assert ends == ["succeeded"] * 3 + ["failed"] * 2 + ["succeeded"]
    # An administrator runs a failed task again: it fails again.
    status, _, body = get_metrics(url, "POST", f"api/tasks/{failed[0][0]}/retry")
    assert status == 200 and json.loads(body)["attempt"] == 2, body
    assert wait_done(client, SERVICE, "fail", failed[0][0])["state"] == "failed"

    scraped = scrape(url)
    assert scraped.methods() == {HOLD, ECHO, FAIL, FAIL_ONCE}
    assert {method: scraped.counters(method) for method in scraped.methods()} == {
        HOLD: expected(started=2, succeeded=1, cancelled=1),
        ECHO: expected(started=3, succeeded=3),
        FAIL: expected(started=3, failed=3, retried=1),
        FAIL_ONCE: expected(started=2, succeeded=1, retried=1),
    }
    # Every run that started has ended, whichever way (failOnce's first attempt too, queued
    # again after it failed): each is timed, as ladon_tasks.metrics says.
    for method, runs in {HOLD: 2, ECHO: 3, FAIL: 3, FAIL_ONCE: 2}.items():
        count, seconds = scraped.runs(method)
        buckets = scraped.buckets(method)
        assert count == runs and seconds > 0, method
        assert buckets == sorted(buckets) and buckets[-1] == count, method
        assert scraped.gauges(method) == {"queued": 0, "running": 0}, method
    assert scraped.runs(ECHO)[1] >= 3 * 0.02  # each echo sleeps 20 ms


@pytest.mark.parametrize("mode", ["thread"])  # the console's answer, not the modes
def test_only_administrators_and_the_scraper_with_its_token_may_scrape(metered):
    root = metered(admin=root_or_scraper)
    refusals = set()
    for base, headers in ((f"{root}{PREFIX}alice", {}), (root, {}), (root, {"Authorization": "Bearer nope"}),
                          (root, {"Authorization": "Bearer s3cret-scrape-token\u00e9"})):
        for method in ("GET", "HEAD", "POST"):
            status, _, body = get_metrics(base, method, **headers)
            assert status == 403, (base, method, headers, body)
            if method != "HEAD":
                refusals.add(body)
    assert len(refusals) == 1  # the console's one refusal, whoever asks and however
    assert json.loads(refusals.pop())["error"]["code"] == "Forbidden"

    token = {"Authorization": SCRAPER.decode()}
    status, headers, body = get_metrics(root, "HEAD", **token)
    whole = get_metrics(root, **token)[2]
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(whole)
    assert Scrape(whole.decode()).methods() == set()  # no task yet: every family, no samples
    # The token opens the metrics, not the tasks.
    assert get_metrics(root, "GET", "api/tasks", **token)[0] == 403
    assert get_metrics(f"{root}{PREFIX}{ADMIN}", "GET", "api/tasks")[0] == 200


@pytest.mark.parametrize("mode", ["process"])  # two servers, one Redis
def test_two_servers_on_one_redis_report_the_same_counts(metered, redis_url, tmp_path):
    first_root = metered(size=1)
    first = f"{first_root}{PREFIX}{ADMIN}"
    run_to_end(RawJsonWsp(first), "echo", text="before the second server")
    run_to_end(RawJsonWsp(first), "fail", message="before the second server")

    # A server started later counts from the store's first use, not from its own start.
    second = ServeProcess([MODULE], tmp_path / "second.log", "--mode", "process", "--redis-url", redis_url,
                          "--processes", "1", "--admin")
    try:
        second.wait_answering()
        assert scrape(second.url).text == scrape(first).text
        assert scrape(second.url).counters(ECHO) == expected(started=1, succeeded=1)

        client = RawJsonWsp(second.url)
        run_to_end(client, "echo", text="on the second server")
        run_to_end(client, "failOnce", counter=str(tmp_path / "attempts"))
        held = client.start(SERVICE, "hold", marker=str(tmp_path / "held"), gate=str(tmp_path / "gate"),
                            seconds=60.0)
        marked_pid(tmp_path / "held")
        assert scrape(first).gauges(HOLD) == {"queued": 0, "running": 1}  # it runs on the other server
        assert scrape(first).text == scrape(second.url).text
        (tmp_path / "gate").touch()
        wait_done(client, SERVICE, "hold", held)

        scraped = scrape(first)
        assert scraped.text == scrape(second.url).text
        assert {method: scraped.counters(method) for method in scraped.methods()} == {
            HOLD: expected(started=1, succeeded=1),
            ECHO: expected(started=2, succeeded=2),
            FAIL: expected(started=1, failed=1),
            FAIL_ONCE: expected(started=2, succeeded=1, retried=1),
        }
        assert scraped.gauges(HOLD) == {"queued": 0, "running": 0}
    finally:
        second.kill()

