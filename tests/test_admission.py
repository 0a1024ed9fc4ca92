"""Admission control: past ``max_queued`` tasks waiting for a slot, a start is refused
at once with the client fault QueueFull, and nothing is recorded for it.

Real parts: a TaskWSGIApplication on a live HTTP server, in thread mode and in process
mode (a forkserver worker and the session's redis-server), called over JSON-WSP, SOAP 1.1
(zeep) and JSON-RPC 1.0. Tasks that hold a slot wait for a gate file.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
import zeep
from conftest import Collect, make_app
from helpers import jsonwsp, jsonwsp_result, wait_until

from ladon_tasks import QueueFull, StoreUnavailable, TaskConfig, TaskEngine, TaskState
from ladon_tasks.options import TaskPolicy

SERVICE = "FaultService"
MAX_QUEUED = 5
TASK_KEYS = "ladon_tasks:task:*"
#: Seconds a held task waits for its gate before it gives up (a failing test ends anyway).
HOLD_FOR = 60.0


def refusal(waiting: int = MAX_QUEUED) -> str:
    """The start of the QueueFull message for ``waiting`` tasks queued."""
    return f"already holds {waiting} tasks waiting for a slot (max_queued={MAX_QUEUED})"


# -- a live server in each mode ---------------------------------------------------------


@dataclass
class Server:
    """One live application, its number of slots and how many task records it holds."""

    app: Any
    url: str
    slots: int
    recorded: Callable[[], int]


@pytest.fixture(params=["thread", "process"])
def server(request: pytest.FixtureRequest, live_server: Callable) -> Iterator[Server]:
    if request.param == "thread":
        app = make_app(["fault_service"], threads=2, max_queued=MAX_QUEUED, progress_interval=0.05)
        live = live_server(app)
        yield Server(app, live.url, 2, lambda: len(app.engine.store()))
    else:
        redis_url = request.getfixturevalue("redis_url")
        app = make_app(["fault_service"], mode="process", redis_url=redis_url, processes=1,
                       max_queued=MAX_QUEUED, heartbeat_interval=0.2, lost_after=1.0,
                       progress_interval=0.05)
        live = live_server(app)
        client = redis.Redis.from_url(redis_url)
        yield Server(app, live.url, 1, lambda: len(list(client.scan_iter(match=TASK_KEYS))))
        client.close()
    app.close(grace_period=1)


class Flood:
    """Tasks that hold their slot (or their place in the queue) until the gate opens."""

    def __init__(self, server: Server, folder: Path) -> None:
        folder.mkdir()
        self.server = server
        self.folder = folder
        self.gate = folder / "gate"
        self.task_ids: list[str] = []

    def args(self) -> dict[str, Any]:
        pid_path = self.folder / f"task-{len(self.task_ids)}.pid"
        return {"pid_path": str(pid_path), "gate_path": str(self.gate), "timeout": HOLD_FOR}

    def start(self) -> str:
        task_id = jsonwsp_result(self.server.url, SERVICE, "holdUntil", **self.args())["task_id"]
        self.task_ids.append(task_id)
        return task_id

    def fill_slots(self) -> None:
        """Start one task per slot and wait until each runs."""
        for _ in range(self.server.slots):
            self.start()
        wait_until(lambda: len(list(self.folder.glob("*.pid"))) == self.server.slots,
                   message="every slot to run a held task")

    def fill(self) -> None:
        """Every slot busy and exactly ``max_queued`` tasks waiting."""
        self.fill_slots()
        for _ in range(MAX_QUEUED):
            self.start()

    def open_and_drain(self) -> None:
        """Open the gate and wait until every task of the flood has succeeded."""
        self.gate.touch()
        for task_id in self.task_ids:
            wait_done(self.server.url, task_id)


def wait_done(url: str, task_id: str) -> None:
    def ended() -> dict | None:
        progress = jsonwsp_result(url, SERVICE, "holdUntil_progress", task_id=task_id)
        return progress if progress["done"] else None

    progress = wait_until(ended, timeout=30, message=f"task {task_id} to end")
    assert progress["state"] == "succeeded", progress


def check_refusal(string: str, detail: str, waiting: int = MAX_QUEUED) -> None:
    assert detail == "QueueFull", (string, detail)
    assert refusal(waiting) in string, string
    assert "try again later" in string, string


# -- refusals over each protocol --------------------------------------------------------


def jsonwsp_refusal(flood: Flood) -> tuple[str, str]:
    answer = jsonwsp(flood.server.url, SERVICE, "holdUntil", **flood.args())
    assert answer.get("type") == "jsonwsp/fault", answer
    fault = answer["fault"]
    assert fault["code"] == "client", fault
    return fault["string"], _text(fault["detail"])


def soap_refusal(flood: Flood) -> tuple[str, str]:
    client = zeep.Client(f"{flood.server.url}/{SERVICE}/soap11/description")
    args = flood.args()
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.holdUntil(args["pid_path"], args["gate_path"], args["timeout"])
    fault = caught.value
    assert "client" in (fault.code or "").lower(), fault.code
    return fault.message, "".join(fault.detail.itertext()).strip()


def jsonrpc_refusal(flood: Flood) -> tuple[str, str]:
    body = json.dumps({"method": "holdUntil", "params": list(flood.args().values()), "id": 1})
    request = urllib.request.Request(f"{flood.server.url}/{SERVICE}/jsonrpc10", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert answer.get("error") and answer.get("result") is None, answer
    return answer["error"]["string"], _text(answer["error"]["detail"])


def _text(detail: str | list[str]) -> str:
    return "".join(detail) if isinstance(detail, list) else detail


@pytest.fixture
def logs(collect_logs: Callable[[str], Collect]) -> Collect:
    """Every record the root logger passes on."""
    return collect_logs("")


def test_a_full_queue_refuses_starts_over_every_protocol(server: Server, tmp_path: Path,
                                                         logs: Collect) -> None:
    flood = Flood(server, tmp_path / "first")
    flood.fill()
    recorded = server.recorded()
    assert recorded == server.slots + MAX_QUEUED

    for refuse in (jsonwsp_refusal, soap_refusal, jsonrpc_refusal):
        check_refusal(*refuse(flood))
    assert server.recorded() == recorded, "a refused start left a record"

    refused = [r for r in logs.records if "QueueFull" in r.getMessage() or refusal() in r.getMessage()]
    assert len(refused) == 3, [r.getMessage() for r in logs.records]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in refused)
    assert not [r for r in logs.records if r.levelno >= logging.ERROR], \
        [r.getMessage() for r in logs.records]

    # Drained, the server takes starts again, up to the same limit: no reservation leaked.
    flood.open_and_drain()
    again = Flood(server, tmp_path / "again")
    again.fill()
    check_refusal(*jsonwsp_refusal(again))
    assert server.recorded() == recorded + server.slots + MAX_QUEUED
    again.open_and_drain()


def test_concurrent_starts_over_http_admit_exactly_max_queued(server: Server, tmp_path: Path) -> None:
    flood = Flood(server, tmp_path / "flood")
    flood.fill_slots()
    tries = 4 * MAX_QUEUED
    barrier = threading.Barrier(tries)

    def start(_: int) -> dict:
        args = flood.args() | {"pid_path": str(flood.folder / f"late-{threading.get_ident()}.pid")}
        barrier.wait(timeout=30)
        return jsonwsp(server.url, SERVICE, "holdUntil", **args)

    with ThreadPoolExecutor(tries) as pool:
        answers = list(pool.map(start, range(tries)))
    accepted = [a["result"]["task_id"] for a in answers if a.get("type") == "jsonwsp/response"]
    faults = [a["fault"] for a in answers if a.get("type") == "jsonwsp/fault"]
    assert len(accepted) == MAX_QUEUED, answers
    assert len(faults) == tries - MAX_QUEUED, answers
    for fault in faults:
        check_refusal(fault["string"], _text(fault["detail"]))
    assert server.recorded() == server.slots + MAX_QUEUED

    flood.task_ids += accepted
    flood.open_and_drain()


# -- the engine on its own (thread mode) --------------------------------------------------


class Gate:
    """A thread-mode job that returns once the test opens it; counts the ones running."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.running = 0
        self._lock = threading.Lock()

    def __call__(self, update_progress: Callable[[float], None]) -> str:
        with self._lock:
            self.running += 1
        if not self.opened.wait(HOLD_FOR):
            raise TimeoutError("the gate never opened")
        return "done"


@pytest.fixture
def engine() -> Iterator[TaskEngine]:
    engine = TaskEngine(TaskConfig(threads=2, max_queued=MAX_QUEUED, progress_interval=0.05))
    yield engine
    engine.shutdown(grace_period=5)


class HeldCreates:
    """Stands for ``store.create``: holds every record until each of ``tries`` starts was
    admitted (it waits here) or refused, so that all their reservations overlap."""

    def __init__(self, create: Callable[[Any], None], tries: int) -> None:
        self.create = create
        self.unsettled = tries
        self.settled = threading.Condition()

    def settle(self) -> None:
        with self.settled:
            self.unsettled -= 1
            self.settled.notify_all()

    def __call__(self, record: Any, job: Any = None, unique: str | None = None) -> str:
        self.settle()
        with self.settled:
            assert self.settled.wait_for(lambda: self.unsettled == 0, timeout=30)
        return self.create(record, job, unique)


def start_at_once(engine: TaskEngine, job: Callable, tries: int,
                  monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[QueueFull]]:
    """``tries`` threads call ``engine.start`` together, every admitted one still holding
    its reservation when the last is admitted or refused: the ids started, the refusals."""
    store = engine.store()
    held = HeldCreates(store.create, tries)
    monkeypatch.setattr(store, "create", held)
    barrier = threading.Barrier(tries)

    def start(_: int) -> str | QueueFull:
        barrier.wait(timeout=30)
        try:
            return engine.start("gate", job)
        except QueueFull as error:
            held.settle()
            return error

    with ThreadPoolExecutor(tries) as pool:
        outcomes = list(pool.map(start, range(tries)))
    monkeypatch.undo()
    return ([o for o in outcomes if isinstance(o, str)], [o for o in outcomes if isinstance(o, QueueFull)])


def wait_all_succeeded(engine: TaskEngine, task_ids: list[str]) -> None:
    def all_succeeded() -> bool:
        return all(engine.status(task_id).state is TaskState.SUCCEEDED for task_id in task_ids)

    wait_until(all_succeeded, message="every task to succeed")


@pytest.mark.parametrize("slots_busy", [True, False], ids=["full-pool", "idle-pool"])
def test_concurrent_engine_starts_admit_exactly_max_queued(engine: TaskEngine, slots_busy: bool,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate()
    held = [engine.start("gate", gate) for _ in range(2 if slots_busy else 0)]
    wait_until(lambda: gate.running == len(held), message="the slots to be busy")

    started, refused = start_at_once(engine, gate, 50, monkeypatch)

    # An idle pool takes one task per free slot beyond the queue: none is refused early.
    assert len(started) == MAX_QUEUED + (0 if slots_busy else 2), len(started)
    assert len(refused) == 50 - len(started)
    assert all(refusal() in str(error) for error in refused), refused[:1]
    assert len(engine.store()) == 2 + MAX_QUEUED
    gate.opened.set()
    wait_all_succeeded(engine, held + started)


def test_a_start_that_cannot_be_recorded_gives_its_place_back(engine: TaskEngine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate()
    held = [engine.start("gate", gate) for _ in range(2)]
    wait_until(lambda: gate.running == 2, message="the slots to be busy")
    store = engine.store()

    def unavailable(record: Any, job: Any = None, unique: str | None = None) -> None:
        raise StoreUnavailable("the store is away (test)")

    monkeypatch.setattr(store, "create", unavailable)
    for _ in range(2 * MAX_QUEUED):
        with pytest.raises(StoreUnavailable):
            engine.start("gate", gate)
    monkeypatch.undo()

    queued = [engine.start("gate", gate) for _ in range(MAX_QUEUED)]
    with pytest.raises(QueueFull, match=re.escape(refusal())):
        engine.start("gate", gate)
    gate.opened.set()
    wait_all_succeeded(engine, held + queued)


def test_delayed_retries_do_not_count_and_are_never_refused(engine: TaskEngine) -> None:
    gate = Gate()
    attempts: list[int] = []

    def fails_once(update_progress: Callable[[float], None]) -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise ValueError("the first attempt fails on purpose")
        return gate(update_progress)

    flaky = engine.start("flaky", fails_once, policy=TaskPolicy(retries=1, retry_backoff=5.0))
    wait_until(lambda: engine.status(flaky).attempt == 2, message="the retry to be delayed")
    held = [engine.start("gate", gate) for _ in range(2)]
    wait_until(lambda: gate.running == 2, message="the slots to be busy")
    queued = [engine.start("gate", gate) for _ in range(MAX_QUEUED)]  # the delayed retry is not counted
    assert attempts == [1]
    with pytest.raises(QueueFull, match=re.escape(refusal())):
        engine.start("gate", gate)

    def refused_naming(waiting: int) -> bool:
        try:
            engine.start("gate", gate)
        except QueueFull as error:
            return refusal(waiting) in str(error)
        raise AssertionError("a start was accepted past max_queued")

    # Come due, the retry joins the queue (past max_queued) and counts against new starts.
    wait_until(lambda: refused_naming(MAX_QUEUED + 1), message="the retry to join the queue")
    gate.opened.set()
    wait_all_succeeded(engine, [flaky, *held, *queued])
    assert attempts == [1, 2]
