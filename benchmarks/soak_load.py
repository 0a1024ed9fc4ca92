"""The soak's load against one Apache: starter threads, poller threads, the count of every
task's outcome, and (in the restart run) the Redis restart."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from typing import Any, Callable

from soak_client import OK, JsonWsp
from soak_common import say
from soak_redis import AofRedis, restart_redis
from soak_tally import Settings, Tally, Task

#: Outcomes of the result fetch that end a task, by the fetch's outcome.
FINAL_FAULTS = {"server fault TaskFailed": "failed", "client fault TaskCancelled": "cancelled"}
#: Faults of a poll or fetch saying the task is gone: its result is lost.
GONE = ("client fault TaskNotFound", "client fault TaskExpired", "client fault TaskDismissed")


def _right(task: Task, value: Any) -> bool:
    """True if ``value`` is the answer of ``task`` (its n, n*n and nonce)."""
    return (isinstance(value, dict) and value.get("n") == task.n and value.get("square") == task.n * task.n
            and value.get("nonce") == task.nonce)


class Soak:
    """Starter threads, poller threads and (maybe) the Redis restart, against one Apache."""

    def __init__(self, settings: Settings, port: int, redis_server: AofRedis, tally: Tally) -> None:
        self.s = settings
        self.port = port
        self.redis = redis_server
        self.tally = tally
        self.ready = threading.Condition()
        self.queue: deque[Task] = deque()
        self.open: dict[str, Task] = {}
        self.window = threading.Semaphore(settings.window)
        self.next_n = 0
        self.ended = 0
        self.stop = threading.Event()
        self.connections: list[JsonWsp] = []
        self.errors: list[str] = []

    def run(self) -> None:
        """Run the soak to its end, every thread joined and every request added to the tally."""
        began = time.monotonic()
        starters = [self._thread(self._starter, f"starter-{i}") for i in range(self.s.starters)]
        pollers = [self._thread(self._poller, f"poller-{i}") for i in range(self.s.pollers)]
        restarter = self._thread(self._restarter, "restarter") if self.tally.restart else None
        try:
            self._watch(starters, restarter, began)
        finally:
            self.stop.set()
            with self.ready:
                self.ready.notify_all()
            for thread in [*starters, *pollers, *([restarter] if restarter else [])]:
                thread.join(timeout=120)
            for connection in self.connections:
                connection.close()
                self.tally.events += connection.events
                self.tally.daemons.update(connection.daemons)
        self.tally.seconds = time.monotonic() - began
        self.tally.outcomes["never ended"] += self.tally.started - self.ended
        self.tally.stuck = list(self.open.values())
        if self.errors:
            raise RuntimeError(f"a soak thread failed:\n{self.errors[0]}")

    def _thread(self, target: Callable[[JsonWsp], None], name: str) -> threading.Thread:
        """A started thread running ``target`` on a connection of its own; a failure stops the soak."""
        connection = JsonWsp(self.port)
        self.connections.append(connection)

        def body() -> None:
            try:
                target(connection)
            except BaseException:  # noqa: B036 (reported by run(), which stops the soak)
                import traceback

                self.errors.append(f"{name}: {traceback.format_exc()}")
                self.stop.set()

        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
        return thread

    def _watch(self, starters: list[threading.Thread], restarter: threading.Thread | None,
               began: float) -> None:
        """Report every 5 s; return once every task ended (or the drain time ran out)."""
        said, drain_until = began, None
        while not self.errors:
            time.sleep(0.2)
            now = time.monotonic()
            if now - said >= 5:
                said = now
                say(self._status(now - began))
            if any(thread.is_alive() for thread in starters):
                continue
            drain_until = drain_until or now + self.s.drain_timeout
            with self.ready:
                open_tasks = self.tally.started - self.ended
            if open_tasks == 0 and not (restarter and restarter.is_alive()):
                return
            if now > drain_until:
                say(f"  {open_tasks} task(s) still not ended {self.s.drain_timeout:.0f} s after the "
                    "last start")
                return

    def _status(self, elapsed: float) -> str:
        """One progress line: started, ended, open, requests, outcomes so far."""
        requests = sum(len(connection.events) for connection in self.connections)
        with self.ready:
            started, ended, outcomes = self.tally.started, self.ended, dict(self.tally.outcomes)
        return (f"  [{self.tally.label}] {elapsed:5.0f} s: {started} started, {ended} ended, "
                f"{started - ended} open, {requests} requests, {outcomes}")

    def _starter(self, connection: JsonWsp) -> None:
        """Take the next task number and start it, whenever the window has room."""
        rng = random.Random()
        while not self.stop.is_set():
            with self.ready:
                if self.next_n >= self.s.tasks:
                    return
                n, self.next_n = self.next_n, self.next_n + 1
            while not self.window.acquire(timeout=0.2):
                if self.stop.is_set():
                    return
            task = self._start(connection, n, rng)
            with self.ready:
                if task is None:
                    self.tally.outcomes["start abandoned"] += 1
                    self.window.release()
                    continue
                self.tally.started += 1
                self.open[task.task_id] = task
                self.queue.append(task)
                self.ready.notify()

    def _start(self, connection: JsonWsp, n: int, rng: random.Random) -> Task | None:
        """Start task ``n``, again (with a new nonce) after each refusal, for up to 120 s."""
        low, high = self.s.task_ms
        give_up = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < give_up:
            task = Task(n, uuid.uuid4().hex[:16], rng.randint(low, high))
            outcome, value = connection.call("start", "soak", n=task.n, nonce=task.nonce, ms=task.ms)
            if outcome == OK and isinstance(value, dict) and value.get("task_id"):
                task.task_id = value["task_id"]
                return task
            time.sleep(0.05)
        return None

    def _poller(self, connection: JsonWsp) -> None:
        """Poll open tasks round-robin, each at most every ``poll_interval`` s, until stopped."""
        while True:
            with self.ready:
                while not self.queue and not self.stop.is_set():
                    self.ready.wait(0.5)
                if self.stop.is_set():
                    return
                task = self.queue.popleft()
            delay = task.last_poll + self.s.poll_interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            task.last_poll = time.monotonic()
            outcome = self._check(connection, task)
            with self.ready:
                if outcome is None:
                    self.queue.append(task)
                    self.ready.notify()
                else:
                    self._end(task, outcome)

    def _check(self, connection: JsonWsp, task: Task) -> str | None:
        """Poll ``task`` once (and fetch its result once it ended): its outcome, or None."""
        outcome, value = connection.call("progress", "soak_progress", task_id=task.task_id)
        if outcome in GONE:
            return f"lost ({outcome.split()[-1]} on _progress)"
        if outcome != OK or not isinstance(value, dict):
            return None
        task.state = str(value.get("state"))
        if not value.get("done"):
            return None
        outcome, value = connection.call("result", "soak_result", task_id=task.task_id)
        if outcome == OK:
            if _right(task, value):
                return "succeeded"
            self.tally.wrong.append(f"{task.task_id} n={task.n} nonce={task.nonce}: {value!r}"[:300])
            return "wrong result"
        if outcome in GONE:
            return f"lost ({outcome.split()[-1]} on _result)"
        if outcome == "server fault TaskLost":
            return "lost (state lost)" if task.state == "lost" else f"lost (TaskLost, state {task.state})"
        return FINAL_FAULTS.get(outcome)

    def _end(self, task: Task, outcome: str) -> None:
        """Count ``task`` ended (the caller holds ``ready``) and free its place in the window."""
        self.tally.outcomes[outcome] += 1
        self.ended += 1
        self.open.pop(task.task_id, None)
        if outcome.startswith("lost"):
            self.tally.lost_ids.append(task.task_id)
        self.window.release()

    def _restarter(self, connection: JsonWsp) -> None:
        """Once ``restart_at`` of the tasks were started, restart Redis for ``outage`` s."""
        at = max(1, int(self.s.tasks * self.s.restart_at))
        while self.tally.started < at:
            if self.stop.wait(0.05):
                return
        say(f"  [{self.tally.label}] {at} tasks started: SIGTERM to redis-server, down {self.s.outage:g} s")
        self.tally.outage = restart_redis(self.redis, self.s.outage)
        outage = self.tally.outage
        say(f"  [{self.tally.label}] redis-server answering again ({outage.answering - outage.sigterm:.1f} s "
            "after the SIGTERM)")
