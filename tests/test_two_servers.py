"""Two ``ladon-tasks serve`` processes in process mode sharing one Redis: a task started on
one server is followed and fetched on the other, over JSON-WSP and SOAP."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from conftest import ServeProcess
from helpers import wait_until
from test_protocols import (
    RESULT_CASES,
    Protocol,
    RawJsonWsp,
    Soap11,
    as_zeep_gives,
    assert_no_traceback,
    check_ended,
    over,
    typed,
    wait_done,
)

#: Every rtype, falsy values and empty lists included.
CASES = RESULT_CASES


class Server(ServeProcess):
    """Server A or B: both modules, process mode, one worker, on the shared Redis."""

    def __init__(self, name: str, redis_url: str, log_dir: Path) -> None:
        self.name = name
        super().__init__(["calc_service", "proto_service"], log_dir / f"{name}.log",
                         "--mode", "process", "--redis-url", redis_url, "--processes", "1")


@pytest.fixture
def servers(redis_url: str, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Servers A and B, both answering, sharing one Redis database."""
    pair = (Server("A", redis_url, tmp_path), Server("B", redis_url, tmp_path))
    try:
        for server in pair:
            server.wait_answering()
        yield pair
    finally:
        for server in pair:
            server.kill()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _check_results_cross(starter: Protocol, reader: Protocol) -> None:
    started = [(case, starter.start("CalcService", case[0], **case[1])) for case in CASES]
    for (method, _args, _plain, expected), task_id in started:
        check_ended(wait_done(reader, "CalcService", method, task_id), task_id, "succeeded")
        value = reader.result("CalcService", method, task_id)
        want = as_zeep_gives(expected) if isinstance(reader, Soap11) else expected
        assert typed(value) == typed(want), (method, value)
        assert typed(starter.result("CalcService", method, task_id)) == typed(value)


def test_tasks_started_on_one_server_are_read_on_the_other(servers: tuple[Server, Server],
                                                           tmp_path: Path) -> None:
    a, b = servers
    for starter, reader in ((a, b), (b, a)):
        for kind in (RawJsonWsp, Soap11):
            read = kind(reader.url)
            with over(read):
                _check_results_cross(kind(starter.url), read)

    for starter, reader in ((a, b), (b, a)):
        for kind in (RawJsonWsp, Soap11):
            start, read = kind(starter.url), kind(reader.url)
            with over(read):
                # A running task, seen from the other server.
                gate = tmp_path / f"gate-{starter.name}-{kind.name}"
                task_id = start.start("ProtoService", "waitForFile", path=str(gate))

                def running(read: Protocol = read, task_id: str = task_id) -> bool:
                    progress = read.progress("ProtoService", "waitForFile", task_id)
                    return progress["state"] == "running" and progress["progress"] == 0.25

                wait_until(running, message=f"task started on {starter.name} to run")
                fault = read.fault("ProtoService", "waitForFile_result", task_id=task_id)
                assert (fault.code, fault.detail) == ("client", "ResultNotReady"), fault
                gate.touch()
                wait_done(read, "ProtoService", "waitForFile", task_id)
                assert read.result("ProtoService", "waitForFile", task_id) == str(gate)

                # A failed task, seen from the other server.
                task_id = start.start("CalcService", "fail", message="cross")
                progress = wait_done(read, "CalcService", "fail", task_id)
                check_ended(progress, task_id, "failed")
                assert progress["error"] == "ValueError: cross"
                fault = read.fault("CalcService", "fail_result", task_id=task_id)
                assert (fault.code, fault.detail) == ("server", "TaskFailed"), fault
                assert_no_traceback(fault)


def test_servers_stop_on_sigterm(servers: tuple[Server, Server]) -> None:
    workers = []
    for server in servers:
        proto = RawJsonWsp(server.url)
        task_id = proto.start("CalcService", "workerPid")
        wait_done(proto, "CalcService", "workerPid", task_id)
        workers.append(proto.result("CalcService", "workerPid", task_id))
    assert all(_alive(pid) for pid in workers)

    for server in servers:
        server.process.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            code = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server {server.name} did not stop within 30 s of SIGTERM:\n{server.log()}")
        assert code == 0, server.log()
    wait_until(lambda: not any(_alive(pid) for pid in workers), timeout=30,
               message="the worker processes to exit")
