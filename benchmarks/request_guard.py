"""Issue 9: what the request guard costs a plain call, and what malformed requests cost a server.

    /tmp/benchvenv/bin/python benchmarks/request_guard.py            # about 6 minutes
    /tmp/benchvenv/bin/python benchmarks/request_guard.py --quick    # about 2 minutes

G1. A plain no-op call over JSON-WSP, JSON-RPC and SOAP 1.1 under gunicorn gthread (1 worker,
    32 threads, keep-alive), c=1 and c=32: TaskWSGIApplication with the guard on (the
    WSGI guard and ladon_tasks' dispatcher, as shipped), the same with both off (Ladon's
    own dispatcher, ``serve.without_guard``), and Ladon 1.0.7 alone for reference.
    Servers interleaved in rotating order; a row is the median of the rounds.
G2. The same pair under werkzeug's threaded server (a connection per request), c=1.
G3. One gunicorn server, guard on: its RSS after a warm-up of malformed requests, then after
    10,000 more cycling over every interface and kind of malformation; how every answer
    was given (a protocol fault, or plain HTTP from the guard) and what the log grew by.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import report
from calls import HOST
from load import LoadResult, post_request, run_load
from procs import GunicornProcess, ServerProcess, precise_cpu_seconds

ON, OFF, LADON = "guard on", "guard off", "Ladon 1.0.7"
SERVICE, PLAIN_SERVICE = "BenchService", "PlainService"
TARGET = 0.95
RSS_TARGET_MB = 5.0
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
#: Concurrent clients of the malformed batch (and of its warm-up, so that every thread the
#: server uses has met the largest bodies before RSS is read).
CLIENTS = 8


# -- requests ------------------------------------------------------------------------------


def envelope(service: str, operation: str, inner: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="{SOAP_ENV}" '
            f'xmlns:ns="urn:{service}"><e:Body><ns:{operation}>{inner}</ns:{operation}></e:Body>'
            f"</e:Envelope>").encode()


def noop_call(protocol: str, port: int, service: str) -> bytes:
    """The HTTP request of a plain no-op call in ``protocol``."""
    if protocol == "jsonwsp":
        body, kind = json.dumps({"methodname": "noop", "args": {}}).encode(), "application/json"
    elif protocol == "jsonrpc10":
        body, kind = json.dumps({"method": "noop", "params": [], "id": 1}).encode(), "application/json"
    else:
        body, kind = envelope(service, "noop"), "text/xml; charset=UTF-8"
    return post_request(HOST, port, f"/{service}/{protocol}", body, kind)


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                  + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
                  + f']><e:Envelope xmlns:e="{SOAP_ENV}"><e:Body>&i;</e:Body></e:Envelope>').encode()
XXE = (f'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><ns:noop xmlns:ns="urn:{SERVICE}">&x;</ns:noop>'
       f"</e:Body></e:Envelope>").encode()
UNKNOWN_ID = "A" * 22


def malformed_bodies() -> list[tuple[str, str, bytes]]:
    """``(kind, interface, body)`` of every malformation G3 cycles over."""
    huge = "m" * 1_000_000
    json_kinds = {
        "garbage bytes": b"\x00\xff\xfe garbage \x80",
        "truncated JSON": b'{"methodname": "noop", "args": {',
        "a JSON array": b"[1, 2, 3]",
        "empty body": b"",
    }
    rows = [(kind, interface, body)
            for interface in ("jsonwsp", "jsonrpc10") for kind, body in json_kinds.items()]
    rows += [
        ("no methodname", "jsonwsp", b'{"args": {}}'),
        ("unknown method", "jsonwsp", json.dumps({"methodname": "nope", "args": {}}).encode()),
        ("wrong argument type", "jsonwsp", json.dumps({"methodname": "progressLoop",
                                                       "args": {"calls": "many"}}).encode()),
        ("missing argument", "jsonwsp", json.dumps({"methodname": "progressLoop", "args": {}}).encode()),
        ("1 MB method name", "jsonwsp", json.dumps({"methodname": huge, "args": {}}).encode()),
        ("unknown task id", "jsonwsp", json.dumps({"methodname": "tiny_progress",
                                                   "args": {"task_id": UNKNOWN_ID}}).encode()),
        ("no method", "jsonrpc10", b'{"params": [], "id": 1}'),
        ("unknown method", "jsonrpc10", json.dumps({"method": "nope", "params": [], "id": 1}).encode()),
        ("wrong argument type", "jsonrpc10", json.dumps({"method": "progressLoop", "params": ["x"],
                                                         "id": 1}).encode()),
        ("missing argument", "jsonrpc10", json.dumps({"method": "progressLoop", "params": [],
                                                      "id": 1}).encode()),
        ("unknown task id", "jsonrpc10", json.dumps({"method": "tiny_result", "params": [UNKNOWN_ID],
                                                     "id": 1}).encode()),
    ]
    for interface in ("soap11", "soap"):
        rows += [
            ("malformed XML", interface, b"<e:Envelope><e:Body>"),
            ("billion laughs", interface, BILLION_LAUGHS),
            ("XXE", interface, XXE),
            ("garbage bytes", interface, b"\x00\xff\xfe garbage \x80"),
            ("empty body", interface, b""),
            ("unknown method", interface, envelope(SERVICE, "nope")),
            ("wrong argument type", interface, envelope(SERVICE, "progressLoop", "<calls>many</calls>")),
            ("1 MB method name", interface, envelope(SERVICE, "m" * 1_000_000)),
            ("unknown task id", interface, envelope(SERVICE, "tiny_progress",
                                                    f"<task_id>{UNKNOWN_ID}</task_id>")),
        ]
    return rows


def answer_kind(body: bytes) -> str:
    """How a malformed request was answered, from its body."""
    if b'"jsonwsp/fault"' in body and b'"code": "client"' in body:
        return "protocol fault (client)"
    if body.startswith(b"{") and b'"error": {' in body and b'"faultcode": "client"' in body:
        return "protocol fault (client)"
    if b":Fault>" in body and b"SOAP-ENV:Client" in body:
        return "protocol fault (client)"
    if b"Traceback" in body:
        return "TRACEBACK"
    if body.startswith(b"<?xml") or body.startswith(b"{"):
        return "other protocol answer"
    return "plain HTTP"


# -- the run -------------------------------------------------------------------------------


class Bench:
    def __init__(self, workdir: Path, quick: bool) -> None:
        self.workdir, self.quick = workdir, quick
        self.stack = contextlib.ExitStack()
        self.rounds = 2 if quick else 7
        self.counts = {1: 300, 32: 600} if quick else {1: 1500, 32: 4000}
        self.malformed = 2_000 if quick else 10_000
        self.warm_up = 1_000 if quick else 2_000

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def gunicorn(self, name: str, settings: dict) -> GunicornProcess:
        server = GunicornProcess(name, settings, self.workdir)
        self.stack.callback(server.stop)
        return server

    def werkzeug(self, name: str, *args: str) -> ServerProcess:
        server = ServerProcess(name, list(args), self.workdir)
        self.stack.callback(server.stop)
        return server

    def rates(self, servers: dict[str, tuple[object, str]], protocols: list[str],
              counts: dict[int, int]) -> dict[tuple[str, int, str], list[tuple[LoadResult, float]]]:
        """Interleaved rounds: ``{(protocol, c, label): [(LoadResult, server CPU s) per round]}``."""
        cells: dict[tuple[str, int, str], list[tuple[LoadResult, float]]] = {}
        labels = list(servers)
        for protocol in protocols:
            for server, service in servers.values():  # warm up every server
                run_load(HOST, server.port, [noop_call(protocol, server.port, service)] * 50, 4)
            for concurrency, count in counts.items():
                self.say(f"  {protocol:<9} c={concurrency:<3} {self.rounds} rounds x {len(labels)} servers "
                         f"x {count} calls")
                for turn in range(self.rounds):
                    shift = turn % len(labels)
                    for label in labels[shift:] + labels[:shift]:
                        server, service = servers[label]
                        request = noop_call(protocol, server.port, service)
                        cpu_before = precise_cpu_seconds(server.pid)
                        result = run_load(HOST, server.port, [request] * count, concurrency)
                        cpu = precise_cpu_seconds(server.pid) - cpu_before
                        if result.errors:
                            raise RuntimeError(f"{label} {protocol}: {result.errors} errors: "
                                               f"{result.first_error[:300]!r}")
                        cells.setdefault((protocol, concurrency, label), []).append((result, cpu))
        return cells

    def cost_table(self, title: str, cells: dict, protocols: list[str], counts: dict[int, int],
                   labels: list[str], notes: list[str]) -> str:
        rows = []
        for protocol, concurrency in itertools.product(protocols, counts):
            runs = {label: cells[(protocol, concurrency, label)] for label in labels}
            rate = {label: statistics.median([result.rate for result, _cpu in runs[label]])
                    for label in labels}
            cpu_us = {label: sum(cpu for _r, cpu in runs[label]) * 1e6
                      / sum(result.requests for result, _cpu in runs[label]) for label in labels}
            ratio = rate[ON] / rate[OFF]
            cost = cpu_us[ON] / cpu_us[OFF] - 1.0
            row = [protocol, concurrency, *[report.rate(rate[label]) for label in labels],
                   report.ratio(ratio)]
            if LADON in rate:
                row.append(report.ratio(rate[ON] / rate[LADON]))
            row += [f"{cpu_us[ON]:,.0f}", f"{cpu_us[OFF]:,.0f}", f"{cost:+.1%}"]
            rows.append([*row, f"<=+{1 - TARGET:.0%}", "yes" if cost <= 1 - TARGET else "NO"])
        headers = ["protocol", "c", *[f"req/s {label}" for label in labels], "rate on/off"]
        if LADON in labels:
            headers.append(f"rate on/{LADON}")
        headers += ["CPU us on", "CPU us off", "guard cost"]
        return report.table(title, [*headers, "target", "met?"], rows, [*notes, COST_NOTE])

    def g1(self) -> str:
        self.say("G1: plain call, gunicorn gthread keep-alive, guard on / off / Ladon 1.0.7")
        tasks = {"kind": "ladon_tasks", "module": "bench_service", "options": {"mode": "thread"}}
        servers = {
            ON: (self.gunicorn("gunicorn-guard-on", tasks), SERVICE),
            OFF: (self.gunicorn("gunicorn-guard-off", dict(tasks, guard=False)), SERVICE),
            LADON: (self.gunicorn("gunicorn-ladon", {"kind": "ladon", "module": "plain_service"}),
                    PLAIN_SERVICE),
        }
        protocols = ["jsonwsp", "jsonrpc10", "soap11"]
        cells = self.rates(servers, protocols, self.counts)
        return self.cost_table(
            "G1. The request guard's cost on a plain call, gunicorn gthread keep-alive",
            cells, protocols, self.counts, [ON, OFF, LADON],
            ["gunicorn --worker-class gthread --workers 1 --threads 32 --keep-alive 30; one "
             "HTTP/1.1 connection per client. guard on: TaskWSGIApplication as shipped (the WSGI "
             "guard, then ladon_tasks' dispatcher); guard off: the same application with both "
             "switched off (Ladon 1.0.7's dispatcher).",
             f"{self.rounds} rounds per row, servers in rotating order; req/s is the median over "
             "rounds. Ladon 1.0.7 serves the same no-op from plain_service.py."])

    def g2(self) -> str:
        self.say("G2: plain call, werkzeug, guard on / off")
        servers = {
            ON: (self.werkzeug("werkzeug-guard-on", "ladon_tasks", "bench_service", "--mode", "thread"),
                 SERVICE),
            OFF: (self.werkzeug("werkzeug-guard-off", "ladon_tasks", "bench_service", "--mode", "thread",
                                "--guard-off"), SERVICE),
        }
        counts = {1: self.counts[1] // 2}
        cells = self.rates(servers, ["jsonwsp", "soap11"], counts)
        return self.cost_table(
            "G2. The same under werkzeug's threaded server (a TCP connection per request)",
            cells, ["jsonwsp", "soap11"], counts, [ON, OFF],
            ["werkzeug answers Connection: close, so every call pays a connect and a new thread; "
             "the guard's share of a call is smaller here than under gunicorn."])

    def g3(self) -> str:
        self.say(f"G3: {self.malformed:,} malformed requests against one gunicorn server (twice)")
        runs = {"every kind": self.malformed_run("all", {}),
                "no 1 MB bodies": self.malformed_run("small", {}, small_only=True)}
        names = list(runs)
        keys = list(runs[names[0]])
        rows = []
        for key in keys:
            values = [runs[name][key] for name in names]
            target, met = "-", "-"
            if key == "RSS growth over the batch (MB)":
                target = f"<={RSS_TARGET_MB:g}"
                met = "/".join("yes" if float(v) <= RSS_TARGET_MB else "NO" for v in values)
            elif key == "answered: TRACEBACK":
                target, met = "0", "/".join("yes" if v == "0" else "NO" for v in values)
            rows.append([key, *values, target, met])
        return report.table(
            "G3. Malformed requests: server memory, answers and log", ["", *names, "target", "met?"], rows,
            ["gunicorn gthread (32 threads), guard on, thread mode, log level warning, as a production "
             f"server runs. {CLIENTS} clients cycle over the {len(malformed_bodies())} kinds x "
             "interfaces of malformed_bodies() (JSON-WSP, JSON-RPC, soap11, soap), 1 MB bodies among "
             "them. RSS from /proc; growth is from after the warm-up (every server thread has met the "
             "largest bodies) to after the batch.",
             "The second column leaves out the four 1 MB bodies (1 MB method names): what memory "
             "the server keeps after them is glibc's per-thread arenas holding on to freed 1 MB "
             "buffers (the Python heap does not grow: tracemalloc over the same requests "
             "in-process stays flat), not requests kept."])

    def malformed_run(self, name: str, env: dict[str, str], small_only: bool = False) -> dict[str, str]:
        tasks = {"kind": "ladon_tasks", "module": "bench_service", "options": {"mode": "thread"}}
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            server = self.gunicorn(f"gunicorn-malformed-{name}", tasks)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        bodies = [row for row in malformed_bodies() if not (small_only and len(row[2]) > 100_000)]
        requests = [post_request(HOST, server.port, f"/{SERVICE}/{interface}", body,
                                 "text/xml; charset=UTF-8" if "soap" in interface else "application/json")
                    for _kind, interface, body in bodies]
        run_load(HOST, server.port, [noop_call("jsonwsp", server.port, SERVICE)] * 20, 1)
        rss_fresh = server.rss_mb()
        warm = [requests[i % len(requests)] for i in range(self.warm_up)]
        run_load(HOST, server.port, warm, CLIENTS, keep_bodies=True)
        time.sleep(1.0)
        rss_before, log_before = server.rss_mb(), server.log_path.stat().st_size
        began = time.perf_counter()
        batch = [requests[i % len(requests)] for i in range(self.malformed)]
        result = run_load(HOST, server.port, batch, CLIENTS, keep_bodies=True)
        elapsed = time.perf_counter() - began
        time.sleep(1.0)
        rss_after, log_after = server.rss_mb(), server.log_path.stat().st_size
        answers: dict[str, int] = {}
        for body in result.bodies:
            kind = answer_kind(body)
            answers[kind] = answers.get(kind, 0) + 1
        alive = run_load(HOST, server.port, [noop_call("jsonwsp", server.port, SERVICE)], 1)
        server.stop()
        faults, tracebacks = answers.get("protocol fault (client)", 0), answers.get("TRACEBACK", 0)
        return {
            "malformed requests in the batch": f"{len(batch):,}",
            "RSS after 20 plain calls (MB)": f"{rss_fresh:.1f}",
            f"RSS after a warm-up of {self.warm_up:,} malformed (MB)": f"{rss_before:.1f}",
            "RSS after the batch (MB)": f"{rss_after:.1f}",
            "RSS growth over the batch (MB)": f"{rss_after - rss_before:+.1f}",
            "requests/s": f"{len(batch) / elapsed:,.0f}",
            "log growth (bytes per 1,000 requests)": f"{(log_after - log_before) * 1000 / len(batch):,.0f}",
            "answered: protocol fault (client)": f"{faults:,}",
            "answered: plain HTTP or other": f"{len(batch) - faults - tracebacks:,}",
            "answered: TRACEBACK": f"{tracebacks:,}",
            "a plain call afterwards": "answered" if not alive.errors else "FAILED",
        }


COST_NOTE = ("guard cost: server CPU per call with the guard on over off, minus 1 (CPU of the "
             "server process over all rounds, from /proc/PID/schedstat: steadier on this noisy "
             "2-core machine than the rates, which wobble by +-10% between identical servers). "
             "met? judges the cost; rate on/off is shown beside it.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and requests")
    parser.add_argument("--only", default="g1,g2,g3", help="sections to run (g1,g2,g3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="guard-bench-") as workdir:
        bench = Bench(Path(workdir), args.quick)
        sections: dict[str, Callable[[], str]] = {"g1": bench.g1, "g2": bench.g2, "g3": bench.g3}
        with bench.stack:
            tables = [sections[name.strip()]() for name in args.only.split(",")]
    print("\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
