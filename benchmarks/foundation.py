"""Request rates of the three task endpoints against a plain call, servers interleaved.

For each phase (start, ``_progress``, ``_result``) and each concurrency, every server
is driven in turn, in a rotating order, for several rounds; a row reports the median
rate over the rounds and the latency percentiles over all its requests. The plain
reference is measured within the same phase, next to the task servers.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field
from typing import Callable

from calls import Endpoint, task_ids, wait_done
from load import LoadResult, percentile

PHASES = ("start", "progress", "result")
METHOD = "tiny"


@dataclass
class Cell:
    """Every run of one server in one phase at one concurrency."""

    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    connections: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    elapsed: float = 0.0
    errors: int = 0
    first_error: bytes = b""

    def add(self, result: LoadResult, server_cpu: float) -> None:
        self.rates.append(result.rate)
        self.latencies.extend(result.latencies)
        self.requests += result.requests
        self.connections += result.connections
        self.server_cpu += server_cpu
        self.client_cpu += result.client_cpu
        self.elapsed += result.elapsed
        self.errors += result.errors
        self.first_error = self.first_error or result.first_error

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def p(self, fraction: float) -> float:
        return percentile(self.latencies, fraction)

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per request (its whole process, all threads)."""
        return self.server_cpu / self.requests * 1e6 if self.requests else 0.0


Key = tuple[str, int, str]  # (phase, concurrency, endpoint label)


def measure(plain: Endpoint, tasks: list[Endpoint], counts: dict[int, int], rounds: int,
            say: Callable[[str], None] = print, phases: tuple[str, ...] = PHASES) -> dict[Key, Cell]:
    """Run every phase; ``counts[c]`` requests per run at concurrency ``c``."""
    cells: dict[Key, Cell] = {}
    pools: dict[str, list[str]] = {ep.label: [] for ep in tasks}
    endpoints = [plain, *tasks]
    noop = plain.request("noop")
    for phase in phases:
        for concurrency in counts:
            say(f"  {phase:<8} c={concurrency:<3} {rounds} round(s) x {len(endpoints)} servers "
                f"x up to {counts[concurrency]} requests")
            for turn in range(rounds):
                shift = turn % len(endpoints)
                for ep in endpoints[shift:] + endpoints[:shift]:
                    count = max(20, int(counts[concurrency] * ep.scale))
                    if ep is plain:
                        requests = [noop] * count
                    else:
                        requests = _requests(phase, ep, count, pools[ep.label])
                    cpu_before = ep.server.cpu_seconds()
                    result = ep.load(requests, concurrency, keep_bodies=phase == "start" and ep is not plain)
                    cell = cells.setdefault((phase, concurrency, ep.label), Cell())
                    cell.add(result, ep.server.cpu_seconds() - cpu_before)
                    if phase == "start" and ep is not plain:
                        ids = task_ids(result)
                        wait_done(ep, METHOD, ids)  # settle before the next server is measured
                        pools[ep.label].extend(ids)
    return cells


def _requests(phase: str, ep: Endpoint, count: int, pool: list[str]) -> list[bytes]:
    if phase == "start":
        return [ep.request(METHOD)] * count
    if phase == "progress":
        return [ep.request(f"{METHOD}_progress", task_id=task_id)
                for task_id in itertools.islice(itertools.cycle(pool), count)]
    # Each result is fetched once: Ladon 1.0.7 deletes a result when it is fetched.
    if len(pool) < count:
        raise RuntimeError(f"{ep.label}: {len(pool)} finished tasks left, {count} needed")
    ids, pool[:count] = pool[:count], []
    return [ep.request(f"{METHOD}_result", task_id=task_id) for task_id in ids]
