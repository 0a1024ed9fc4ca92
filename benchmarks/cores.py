"""Keep a measured server and its load generator off each other's cores.

On a machine of few cores the load generator, Redis and the server take turns on the
same cores, and a request's CPU time then swings by a fifth from batch to batch
(caches and the scheduler's migrations, not the work). Giving the servers a core of
their own, as a load generator on another host would, leaves them only their own work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class CoreSplit:
    """The cores the servers get and the cores everything else (this process) gets."""

    servers: frozenset[int]
    others: frozenset[int]

    def describe(self) -> str:
        return (f"servers on core(s) {sorted(self.servers)}, load generator and Redis on "
                f"{sorted(self.others)}")


def split_cores() -> CoreSplit | None:
    """The last usable core for the servers, the rest for the others; None below 2 cores."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return CoreSplit(frozenset(cores[-1:]), frozenset(cores[:-1]))


def pin(pid: int, cores: frozenset[int]) -> None:
    """Move every thread of ``pid`` to ``cores``. Threads it starts later inherit the
    cores of the thread that starts them."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except (ProcessLookupError, PermissionError):
            continue  # a thread that ended meanwhile


def pin_self(cores: frozenset[int]) -> None:
    """Move this process's calling thread (the load generator's) to ``cores``."""
    os.sched_setaffinity(0, cores)
