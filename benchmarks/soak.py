"""Soak (issue 8, item 6): N tasks through Apache mod_wsgi, process mode, one Redis restart.

    python benchmarks/soak.py [--tasks 10000] [--pollers 64] [--outage 5] [--keep] ...

One invocation runs the same soak twice, each on a fresh Apache and a fresh redis-server:
first without a Redis restart (the baseline), then with one after 40 % of the tasks were
started, and prints both side by side. Run by hand, never in CI; see README.md ("Soak").

Apache is ``mod_wsgi-express start-server`` (3 daemon processes x 5 threads) serving
``services/soak_service.py`` through ``apache/ladon_tasks.wsgi``, in a virtual environment
of Debian's ``/usr/bin/python3`` made the way ``tests/test_apache.py`` makes it (the same
directory and key, so the tests and the soak share it). Started as root, the daemons run as
www-data. redis-server keeps an append-only file (``appendfsync always``): a restart keeps
every acknowledged write.

The parts, one module each: soak_venv (the mod_wsgi environment), soak_apache (Apache),
soak_procs (its processes and their RSS), soak_redis (redis-server and its restart),
soak_client (the JSON-WSP client), soak_tally (settings and what a run saw), soak_load
(starters, pollers, counting), soak_run (one run), soak_figures and soak_report (the report).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from soak_apache import snapshot_library  # noqa: E402
from soak_common import say  # noqa: E402
from soak_report import code_served, faults_table, header, outage_table, rss_table, summary_table  # noqa: E402
from soak_run import run_one  # noqa: E402
from soak_tally import Settings  # noqa: E402
from soak_venv import apache_venv  # noqa: E402


def parse_args() -> tuple[Settings, argparse.Namespace]:
    """The settings of the command line, and its other options (--no-baseline, --keep)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--tasks", type=int, default=10_000, help="tasks per run (default 10000)")
    add("--pollers", type=int, default=64, help="poller threads (default 64)")
    add("--starters", type=int, default=4, help="starter threads (default 4)")
    add("--window", type=int, default=128, help="most tasks started and not yet ended (default 128)")
    add("--outage", type=float, default=5.0, help="seconds Redis stays down (default 5)")
    add("--restart-at", type=float, default=0.4, help="restart once this share was started (0.4)")
    add("--poll-interval", type=float, default=0.1, help="least seconds between two polls of a task")
    add("--task-ms", default="20-200", help="range of task durations in ms (default 20-200)")
    add("--drain-timeout", type=float, default=120.0, help="seconds after the last start to wait")
    add("--workers", type=int, default=2, help="LADON_TASKS_PROCESSES per daemon process (default 2)")
    add("--slack", type=float, default=1.0, help="seconds after Redis answers still counted as outage")
    add("--settle", type=float, default=3.0, help="idle seconds before the 'after' RSS reading")
    add("--no-baseline", action="store_true", help="only the run with the restart")
    add("--keep", action="store_true", help="keep the work directory (Apache and redis logs)")
    args = parser.parse_args()
    low, _, high = args.task_ms.partition("-")
    settings = Settings(
        tasks=args.tasks, pollers=args.pollers, starters=args.starters, window=args.window,
        outage=args.outage, restart_at=args.restart_at, poll_interval=args.poll_interval,
        task_ms=(int(low), int(high or low)), drain_timeout=args.drain_timeout, workers=args.workers,
        slack=args.slack, settle=args.settle)
    return settings, args


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM: stop as Ctrl-C does (everything started is stopped)."""
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    """The baseline run (unless --no-baseline), the restart run, then the report on stdout."""
    settings, args = parse_args()
    signal.signal(signal.SIGTERM, _interrupted)  # clean up on kill, too
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    began, load = time.time(), os.getloadavg()[0]
    venv = apache_venv()
    workdir = Path(tempfile.mkdtemp(prefix="ladon-tasks-soak-"))
    workdir.chmod(0o755)  # www-data reads the application under it
    say(f"work directory: {workdir}")
    try:
        source, digest = snapshot_library(workdir)
        code = code_served(digest)
        baseline = None if args.no_baseline else run_one(settings, venv, workdir, source, restart=False)
        restart = run_one(settings, venv, workdir, source, restart=True)
        print("\n".join([header(settings, venv, code, began, (load, os.getloadavg()[0])),
                         summary_table(baseline, restart, settings.slack),
                         faults_table(baseline, restart, settings.slack), rss_table(baseline, restart),
                         outage_table(restart)]))
        for tally in filter(None, (baseline, restart)):
            for line in tally.wrong[:10]:
                print(f"[{tally.label}] wrong result: {line}")
            for line in tally.stuck_notes:
                print(f"[{tally.label}] never ended: {line}")
    except KeyboardInterrupt:
        say("interrupted: everything started was stopped")
        return 130
    finally:
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
