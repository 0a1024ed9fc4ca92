"""One soak run on a fresh redis-server and a fresh Apache: warm-up, RSS before and after,
the load, and a second look at the tasks that were lost or never ended."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from pathlib import Path

from soak_apache import Apache
from soak_client import OK, JsonWsp
from soak_common import PROCESSES, THREADS, say, wait_for
from soak_load import Soak
from soak_procs import rss_of
from soak_redis import AofRedis
from soak_tally import Settings, Tally


def _all_workers_ran(apache: Apache, workers: int, ran: set[int]) -> bool:
    """Every daemon process has ``workers`` task workers, and each of them ran a task."""
    roles = apache.processes()
    daemons = [role for role in roles if role.startswith("daemon ") and role.count(" ") == 1]
    pids = {daemon: [pid for role, pid in roles.items() if role.startswith(f"{daemon} worker ")]
            for daemon in daemons}
    return len(daemons) == PROCESSES and all(len(each) >= workers and set(each) <= ran
                                              for each in pids.values())


def warm_up(apache: Apache, workers: int, timeout: float = 90.0) -> bool:
    """Run short tasks from 2 x 5 x 3 threads until every task worker of every daemon
    process ran one (so that the 'before' RSS is of processes that imported everything)."""
    stop = threading.Event()
    ran: set[int] = set()

    def loop() -> None:
        """Start a 50 ms task, wait for it, note the pid of the worker that ran it; again."""
        connection = JsonWsp(apache.port)
        while not stop.is_set():
            outcome, value = connection.call("start", "soak", n=1, nonce="warm-up", ms=50)
            if outcome != OK:
                time.sleep(0.1)
                continue
            for _ in range(200):
                outcome, progress = connection.call("progress", "soak_progress", task_id=value["task_id"])
                if stop.is_set() or (outcome == OK and progress["done"]):
                    break
                time.sleep(0.02)
            outcome, answer = connection.call("result", "soak_result", task_id=value["task_id"])
            if outcome == OK:
                ran.add(answer["worker_pid"])
        connection.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(2 * PROCESSES * THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: _all_workers_ran(apache, workers, ran), timeout, "every task worker", 0.2)
        return True
    except RuntimeError:
        return False
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


def recheck(port: int, redis_url: str, log_path: Path, tally: Tally) -> None:
    """Ask once more for every task seen lost: what does it say now the soak is over? And
    for every task that never ended: its last answer, its answer now, its record in Redis."""
    import redis

    connection = JsonWsp(port)
    for task_id in tally.lost_ids:
        outcome, value = connection.call("recheck", "soak_progress", task_id=task_id)
        tally.later[value.get("state", "?") if outcome == OK and isinstance(value, dict) else outcome] += 1
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for task in tally.stuck[:20]:
        outcome, value = connection.call("recheck", "soak_progress", task_id=task.task_id)
        keys = sorted(client.scan_iter(match=f"*{task.task_id}*"))
        records = {key: (client.hgetall(key) if client.type(key) == "hash" else client.type(key))
                   for key in keys}
        logged = [line.strip()[:300] for line in log_path.read_text(errors="replace").splitlines()
                  if task.task_id in line]
        tally.stuck_notes.append(f"task {task.task_id} (n={task.n}, {task.ms} ms): last state seen "
                                 f"{task.state or '-'}; now {outcome} {value!r}; in Redis: {records!r}; "
                                 f"Apache's log: {logged or 'nothing'}")
    client.close()
    connection.close()


def run_one(settings: Settings, venv: Path, workdir: Path, source: Path, restart: bool) -> Tally:
    """One soak on a fresh redis-server and a fresh Apache, stopped whatever happens."""
    tally = Tally("restart" if restart else "baseline", restart)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{tally.label}-", dir=workdir))
    (run_dir / "redis").mkdir()
    with contextlib.ExitStack() as stack:
        redis_server = AofRedis(run_dir / "redis")
        stack.callback(redis_server.stop)
        redis_server.start()
        apache = Apache(run_dir, venv, source, redis_server.url, settings.workers,
                        clients=settings.pollers + settings.starters + 32)
        stack.callback(apache.stop)
        say(f"[{tally.label}] starting Apache on port {apache.port}, redis-server on {redis_server.port}")
        apache.start()
        if not warm_up(apache, settings.workers):
            say(f"[{tally.label}] warning: not every task worker ran a task in the warm-up: "
                f"{sorted(apache.processes())}")
        tally.rss_before = rss_of({**apache.processes(), "redis-server": redis_server.pid})
        restart_note = f", Redis down {settings.outage:g} s after {settings.restart_at:.0%} started"
        say(f"[{tally.label}] soak: {settings.tasks} tasks, {settings.pollers} pollers"
            + (restart_note if restart else ""))
        Soak(settings, apache.port, redis_server, tally).run()
        time.sleep(settings.settle)
        tally.rss_after = rss_of({**apache.processes(), "redis-server": redis_server.pid})
        recheck(apache.port, redis_server.url, apache.log_path, tally)
        say(f"[{tally.label}] done in {tally.seconds:.0f} s: {dict(tally.outcomes)}")
    return tally
