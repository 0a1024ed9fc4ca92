"""The soak's report: its header, the summary, the answers that were not results, RSS per
process and the Redis restart, as tables of report.py."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path

import report
from soak_client import OK
from soak_common import PROCESSES, REPO, THREADS
from soak_figures import error_class, measures, split
from soak_tally import Settings, Tally


def _cell(name: str, value: float | None) -> str:
    """The figure ``name`` as printed: ms with one decimal, MB and tasks/s too, counts with none."""
    if value is None:
        return "-"
    if " ms" in name:
        return f"{value * 1e3:,.1f}"
    if "MB" in name:
        return f"{value:,.1f}"
    if name == "tasks/s":
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def summary_table(baseline: Tally | None, restart: Tally, slack: float) -> str:
    """Every figure of both runs side by side, with ratios and the zero targets."""
    ours = measures(restart, slack)
    base = measures(baseline, slack) if baseline else {}
    zero = {"lost results", "wrong results", "failed or cancelled", "never ended", "defects (target 0)",
            "server faults outside the outage", "HTTP 5xxs outside the outage",
            "connection errors outside the outage", "other errors outside the outage"}
    rows = []
    for name, value in ours.items():
        other = base.get(name)
        scaled = (" ms" in name or "MB" in name or name == "tasks/s")
        ratio = report.ratio(value / other) if scaled and value is not None and other else "-"
        target = "0" if name in zero else "-"
        met = ("yes" if value == 0 else "NO") if name in zero else "-"
        rows.append([name.lstrip("_"), _cell(name, other) if baseline else "n/a", _cell(name, value), ratio,
                     target, met])
    notes = [
        "baseline: the same soak without the Redis restart, on its own fresh Apache and redis-server.",
        f"outage window: from the SIGTERM to redis-server until {slack:g} s after it answered PING again; a "
        "request overlapping it counts 'during'. StoreUnavailable faults then are expected, not defects.",
        "defects: lost + wrong + failed/cancelled + never ended + abandoned starts + server faults, "
        "HTTP 5xx, connection errors and other errors outside the outage. TaskLost/TaskFailed faults "
        "of _result are counted as lost/failed tasks, not as faults.",
        "stale keep-alive: Apache closed a kept connection just as a request went out on it (a race of "
        "HTTP keep-alive, not of ladon_tasks); the request was sent again on a new connection.",
        "latencies are per request, client side (one keep-alive connection per thread); "
        "RSS is VmRSS from /proc after a warm-up (before) and after the drain (after).",
    ]
    return report.table("Soak summary (restart/baseline ratios for latencies, tasks/s and RSS)",
                        ["measure", "baseline", "with restart", "ratio", "target", "met?"], rows, notes)


def faults_table(baseline: Tally | None, restart: Tally, slack: float) -> str:
    """Every answer that was not a result, by endpoint and kind, outside and during the outage."""
    outside, during = split(restart, slack)
    columns = [Counter((e[0], e[3]) for e in events if e[3] != OK)
               for events in ((baseline.events if baseline else []), outside, during)]
    keys = sorted(set().union(*columns))
    rows = [[endpoint, outcome, error_class(outcome) or "task outcome", *(f"{c[(endpoint, outcome)]:,}"
                                                                          for c in columns)]
            for endpoint, outcome in keys]
    if not rows:
        rows = [["-", "none", "-", "0", "0", "0"]]
    notes = []
    for tally in filter(None, (baseline, restart)):
        notes.append(f"task outcomes of the {tally.label} run: {dict(tally.outcomes)}")
        if tally.later:
            notes.append(f"the {tally.label} run's lost tasks, asked again after the drain: "
                         f"{dict(tally.later)}")
    return report.table("Answers that were not results, by kind",
                        ["endpoint", "answer", "class", "baseline", "restart: outside", "restart: during"],
                        rows, notes)


def rss_table(baseline: Tally | None, restart: Tally) -> str:
    """RSS of every process before and after each run; a * marks a process replaced meanwhile."""
    tallies = [t for t in (baseline, restart) if t]
    roles = sorted({role for t in tallies for role in (*t.rss_before, *t.rss_after)}, key=_role_order)
    rows = []
    for role in roles:
        row: list[object] = [role]
        for tally in tallies:
            before, after = tally.rss_before.get(role), tally.rss_after.get(role)
            mark = "*" if before and after and before[0] != after[0] else ""
            row += [f"{before[1]:.1f}" if before else "-", f"{after[1]:.1f}{mark}" if after else "-",
                    f"{after[1] - before[1]:+.1f}" if before and after else "-"]
        if baseline:
            base_after, our_after = baseline.rss_after.get(role), restart.rss_after.get(role)
            row.append(report.ratio(our_after[1] / base_after[1]) if base_after and our_after else "-")
        rows.append(row)
    headers = ["process"]
    for tally in tallies:
        headers += [f"{tally.label} before", f"{tally.label} after", "growth"]
    if baseline:
        headers.append("after: restart/baseline")
    served = ", ".join(f"{t.label}: " + " ".join(f"{n:,}" for _, n in sorted(t.daemons.items()))
                       for t in tallies)
    notes = ["VmRSS in MB. '*': another process (pid) held this role after the run: Apache's event "
             "MPM starts and stops its children as the load goes, redis-server was restarted; for a "
             "daemon or worker it means one was replaced.", f"requests served per daemon process: {served}"]
    return report.table("RSS (MB) of every process, before and after each run", headers, rows, notes)


def _role_order(role: str) -> tuple:
    """Apache first, then daemons and their helpers by number, redis-server last."""
    parts = role.split()
    numbers = tuple(int(p) for p in parts if p.isdigit())
    return (role.startswith("redis"), not role.startswith("apache"), numbers, role)


def outage_table(restart: Tally) -> str:
    """How long each step of the Redis restart took."""
    outage = restart.outage
    if outage is None:
        return "The Redis restart did not happen (the run ended before it was due).\n"
    rows = [["SIGTERM to exited (AOF flushed)", f"{outage.stopped - outage.sigterm:.2f}"],
            ["exited to started again", f"{outage.restarted - outage.stopped:.2f}"],
            ["started to answering PING (AOF loaded)", f"{outage.answering - outage.restarted:.2f}"],
            ["SIGTERM to answering", f"{outage.answering - outage.sigterm:.2f}"]]
    return report.table("The Redis restart (seconds)", ["step", "s"], rows)


def _output(command: list[str]) -> str:
    """What ``command`` printed (run in the checkout), or '?'."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=REPO)
        return (done.stdout or done.stderr).strip()
    return "?"


def code_served(digest: str) -> list[str]:
    """Which code the runs serve: the commit and the digest of the copy, read when the copy
    is made (the checkout may change while the runs go on)."""
    commit = _output(["git", "log", "-1", "--format=%h %s"])
    commit = commit if len(commit) <= 80 else commit[:77] + "..."
    dirty = _output(["git", "diff", "--shortstat", "HEAD", "--", "ladon_tasks"])
    untracked = _output(["git", "ls-files", "--others", "--exclude-standard", "--", "ladon_tasks"])
    return [f"git {commit}",
            f"ladon_tasks served: sha256 {digest} of its .py files"
            + (f"; uncommitted: {dirty}" if dirty else "")
            + (f", {len(untracked.split())} new file(s)" if untracked else "")]


def header(settings: Settings, venv: Path, code: list[str], began: float, load: tuple[float, float]) -> str:
    """The report's first lines: when, which code, which versions, the machine and the settings."""
    versions = _output([str(venv / "bin" / "python"), "-c",
                        "import sys, importlib.metadata as m; print(sys.version.split()[0], "
                        "*(n + ' ' + m.version(n) for n in ('mod_wsgi', 'ladon', 'redis')))"])
    apache = _output(["/usr/sbin/apache2", "-v"]).splitlines()[0].split(":", 1)[-1].strip()
    redis_version = _output(["redis-server", "--version"]).split(" v=")[-1].split()[0]
    low, high = settings.task_ms
    return "\n".join([
        f"ladon_tasks soak (issue 8), {datetime.datetime.fromtimestamp(began):%Y-%m-%d %H:%M}, "
        f"took {time.time() - began:.0f} s",
        *code,
        f"Apache {apache}, mod_wsgi-express {PROCESSES} processes x {THREADS} threads, "
        f"{settings.workers} task workers per daemon; Apache's Python {versions}; redis-server "
        f"{redis_version} (appendonly, appendfsync always)",
        f"{os.cpu_count()} cores, load average (1 min) {load[0]:.2f} at start, {load[1]:.2f} at end; "
        f"client Python {platform.python_version()}",
        f"{settings.tasks:,} tasks per run (each sleeps {low}-{high} ms in 4 progress steps), "
        f"{settings.starters} starter threads, at most {settings.window} tasks open, {settings.pollers} "
        f"poller threads (each task polled at most every {settings.poll_interval * 1e3:.0f} ms); "
        f"restart run: redis-server down {settings.outage:g} s once {settings.restart_at:.0%} were started",
        "",
    ])
