"""A cProfile of every thread of a server process, on each thread's own CPU clock.

``ThreadProfiler.install()`` makes every thread started afterwards (gunicorn's request
threads, task threads, executor threads) run under its own ``cProfile.Profile`` timed
with ``time.thread_time``: a thread blocked on a lock or a socket costs nothing, so the
numbers say where CPU goes, not where threads wait. Threads already running (the main
thread: gunicorn's accept and keep-alive loop) are not profiled.

``reset()`` drops what was collected so far (after the warm-up), ``dump(path)`` writes
the merged statistics (``pstats``) and a JSON side file with the CPU per thread group.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import re
import threading
import time
from typing import Any

_DIGITS = re.compile(r"[-_]?\d+(_\d+)?$")


def thread_group(name: str) -> str:
    """``ThreadPoolExecutor-0_12`` -> ``ThreadPoolExecutor``, ``ladon-task-3`` -> ``ladon-task``."""
    return _DIGITS.sub("", name) or name


class ThreadProfiler:
    """One profile per thread, merged on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: list[tuple[str, cProfile.Profile]] = []
        self._local = threading.local()
        self.requests = 0

    def install(self) -> None:
        original = threading.Thread.run
        profiler = self

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile(time.thread_time)
            profiler._local.profile = profile
            with profiler._lock:
                profiler._profiles.append((thread_group(thread.name), profile))
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()

        threading.Thread.run = run  # type: ignore[method-assign]

    def count_request(self) -> None:
        """One more request served (the per-request figures divide by this)."""
        with self._lock:
            self.requests += 1

    def reset(self) -> None:
        """Forget everything collected so far (the profiles keep running)."""
        with self._lock:
            for _, profile in self._profiles:
                profile.clear()
            self.requests = 0

    def dump(self, path: str) -> dict[str, Any]:
        """Write the merged pstats to ``path`` and ``path + '.json'``; return the JSON.

        The calling thread's own profile is paused meanwhile: the dump is not measured.
        """
        mine = getattr(self._local, "profile", None)
        if mine is not None:
            mine.disable()
        try:
            return self._dump(path)
        finally:
            if mine is not None:
                mine.enable()

    def _dump(self, path: str) -> dict[str, Any]:
        with self._lock:
            profiles = list(self._profiles)
            requests = self.requests
        merged: pstats.Stats | None = None
        groups: dict[str, float] = {}
        for group, profile in profiles:
            snapshot = _Snapshot(profile)
            if not snapshot.stats:
                continue
            stats = pstats.Stats(snapshot)
            groups[group] = groups.get(group, 0.0) + stats.total_tt  # type: ignore[attr-defined]
            if merged is None:
                merged = stats
            else:
                merged.add(stats)
        if merged is not None:
            merged.dump_stats(path)
        summary = {"requests": requests, "groups": groups, "stats": path if merged else None}
        with open(path + ".json", "w", encoding="utf-8") as out:
            json.dump(summary, out)
        return summary


class _Snapshot:
    """What ``pstats.Stats`` reads from a profile, taken without disabling it.

    ``Profile.create_stats`` would disable the profile, and from another thread that
    would turn off the calling thread's own profile instead (3.11 profiles per thread).
    """

    def __init__(self, profile: cProfile.Profile) -> None:
        profile.snapshot_stats()
        self.stats = profile.stats  # type: ignore[attr-defined]

    def create_stats(self) -> None:
        pass
