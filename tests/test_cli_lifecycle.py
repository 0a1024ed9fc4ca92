"""``ladon-tasks cancel``, ``call --cancel-on-interrupt`` and the lifecycle flags of
``ladon-tasks serve``, as subprocesses against live servers in both modes."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Callable, Iterator

import lifecycle_client_service
import pytest
from conftest import ServeProcess, make_app
from helpers import wait_until

from ladon_tasks.client import TaskClient, TaskFailedFault, TaskProgress
from ladon_tasks.task import TaskState

CLI = [sys.executable, "-m", "ladon_tasks.cli"]
SERVICE = "LifecycleClientService"
UNKNOWN_ID = "A" * 22


@pytest.fixture
def service_url(live_server: Callable) -> Callable[..., str]:
    """``service_url(**options)``: LifecycleClientService on a live thread-mode server."""

    def serve(**options: object) -> str:
        return live_server(make_app(["lifecycle_client_service"], **options)).url + "/" + SERVICE

    return serve


@pytest.fixture
def gate() -> Iterator[str]:
    name = uuid.uuid4().hex
    yield name
    lifecycle_client_service.gate(name).set()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120)


def started_running(client: TaskClient, method: str, *args: object) -> str:
    """Start a task and wait until it has reported progress; return its id."""
    task_id = client.start(method, *args)
    wait_until(lambda: client.progress(method, task_id).progress > 0, timeout=60,
               message=f"{method} to report progress")
    return task_id


def state_line(process: subprocess.CompletedProcess, task_id: str) -> str:
    """The one line ``cancel`` printed on stdout."""
    lines = process.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"task {task_id}: "), process
    return lines[0]


# -- ladon-tasks cancel ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["jsonwsp", "soap"])
def test_cancel_a_running_task(service_url: Callable[..., str], protocol: str) -> None:
    url = service_url()
    client = TaskClient(url)
    task_id = started_running(client, "spin", 60.0)
    process = run_cli("cancel", url, "spin", task_id, "--protocol", protocol)
    assert process.returncode == 0, process
    assert state_line(process, task_id).startswith(f"task {task_id}: cancelled (TaskCancelled: ")
    assert client.progress("spin", task_id).state == TaskState.CANCELLED


def test_cancel_a_queued_task(service_url: Callable[..., str]) -> None:
    url = service_url(threads=1)
    client = TaskClient(url)
    blocker = started_running(client, "spin", 60.0)
    queued = client.start("spin", 60.0)
    process = run_cli("cancel", url, "spin", queued, "--timeout", "0")
    assert process.returncode == 0, process
    assert state_line(process, queued) == (
        f"task {queued}: cancelled (TaskCancelled: cancelled before it started)")
    assert run_cli("cancel", url, "spin", blocker).returncode == 0


def test_cancel_an_ended_task_exits_0(service_url: Callable[..., str]) -> None:
    url = service_url()
    client = TaskClient(url)
    task_id = client.start("spin", 0.0)
    client.wait("spin", task_id, timeout=30)
    process = run_cli("cancel", url, "spin", task_id)
    assert process.returncode == 0, process
    assert state_line(process, task_id) == f"task {task_id}: succeeded"
    assert client.result("spin", task_id) == 1


def test_cancel_a_task_that_stops_late_exits_124(service_url: Callable[..., str], gate: str) -> None:
    url = service_url(cancel_grace=60.0)
    client = TaskClient(url)
    task_id = started_running(client, "stubborn", gate, 60.0)
    process = run_cli("cancel", url, "stubborn", task_id, "--timeout", "0.3")
    assert process.returncode == 124, process
    assert state_line(process, task_id) == f"task {task_id}:  10% running, cancel requested"
    assert "still stopping" in process.stderr and "Traceback" not in process.stderr
    lifecycle_client_service.gate(gate).set()
    assert client.wait("stubborn", task_id, timeout=30).state == TaskState.CANCELLED


def test_cancel_unknown_and_dismissed_ids_exit_1(service_url: Callable[..., str]) -> None:
    url = service_url()
    client = TaskClient(url)
    unknown = run_cli("cancel", url, "spin", UNKNOWN_ID)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("ladon-tasks: ") and "Traceback" not in unknown.stderr
    task_id = client.start("spin", 0.0)
    client.wait("spin", task_id, timeout=30)
    client.dismiss("spin", task_id)
    dismissed = run_cli("cancel", url, "spin", task_id)
    assert dismissed.returncode == 1 and dismissed.stdout == "", dismissed
    assert len(dismissed.stderr.splitlines()) == 1


# -- call / watch --cancel-on-interrupt ------------------------------------------------------


class Interruptible:
    """A client command in a subprocess whose stderr is read as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(CLI + list(args), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def wait_for(self, text: str) -> None:
        wait_until(lambda: any(text in line for line in self.lines), timeout=60, message=repr(text))

    def interrupt(self) -> tuple[int, str, str]:
        """SIGINT; the exit status, stderr and stdout."""
        try:
            self.process.send_signal(signal.SIGINT)
            status = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.reader.join(timeout=10)
        stdout = self.process.stdout.read()
        self.process.stdout.close()
        return status, "".join(self.lines), stdout


def test_call_cancel_on_interrupt(service_url: Callable[..., str]) -> None:
    url = service_url()
    command = Interruptible("call", url, "spin", "60", "--cancel-on-interrupt")
    command.wait_for("% running")
    task_id = next(line.split()[-1] for line in command.lines if line.startswith("started task"))
    status, stderr, stdout = command.interrupt()
    assert status == 130 and stdout == ""
    assert "Traceback" not in stderr
    assert (f"interrupted; cancelling task {task_id}" in stderr
            or f"interrupted; task {task_id} cancelled" in stderr), stderr
    client = TaskClient(url)
    assert client.wait("spin", task_id, timeout=30).state == TaskState.CANCELLED


def test_watch_cancel_on_interrupt_of_a_stubborn_task(service_url: Callable[..., str], gate: str) -> None:
    url = service_url(cancel_grace=60.0)
    client = TaskClient(url)
    task_id = started_running(client, "stubborn", gate, 60.0)
    command = Interruptible("watch", url, "stubborn", task_id, "--cancel-on-interrupt")
    command.wait_for("10% running")
    status, stderr, _ = command.interrupt()
    assert status == 130
    assert f"interrupted; cancelling task {task_id}: it stops at its next progress report" in stderr
    progress = client.progress("stubborn", task_id)
    assert progress.state == TaskState.RUNNING and progress.cancel_requested
    lifecycle_client_service.gate(gate).set()
    assert client.wait("stubborn", task_id, timeout=30).state == TaskState.CANCELLED


def test_interrupt_without_the_flag_leaves_the_task_running(service_url: Callable[..., str]) -> None:
    url = service_url()
    command = Interruptible("call", url, "spin", "60")
    command.wait_for("% running")
    task_id = next(line.split()[-1] for line in command.lines if line.startswith("started task"))
    status, stderr, _ = command.interrupt()
    assert status == 130 and f"task {task_id} keeps running on the server" in stderr
    client = TaskClient(url)
    assert client.progress("spin", task_id).state == TaskState.RUNNING
    client.cancel("spin", task_id)
    client.wait("spin", task_id, timeout=30)


def test_call_of_a_task_cancelled_elsewhere_exits_1(service_url: Callable[..., str]) -> None:
    url = service_url()
    client = TaskClient(url)
    command = Interruptible("call", url, "spin", "60")
    command.wait_for("% running")
    task_id = next(line.split()[-1] for line in command.lines if line.startswith("started task"))
    client.cancel("spin", task_id)
    assert command.process.wait(timeout=60) == 1
    command.reader.join(timeout=10)
    assert any(f"task {task_id} was cancelled" in line for line in command.lines), command.lines
    command.process.stdout.close()


# -- process mode: two servers on one Redis, and the serve flags ----------------------------------


def serve_process_mode(tmp_path: Path, name: str, redis_url: str, *options: str) -> ServeProcess:
    return ServeProcess(["lifecycle_client_service"], tmp_path / f"{name}.log", "--mode", "process",
                        "--redis-url", redis_url, "--processes", "2", *options)


def stop(server: ServeProcess) -> None:
    """SIGTERM, as a service manager stops a server; SIGKILL if it outlives a minute."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def two_servers(tmp_path: Path, redis_url: str) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    servers = [serve_process_mode(tmp_path, name, redis_url, "--cancel-grace", "1")
               for name in ("a", "b")]
    try:
        for server in servers:
            server.wait_answering()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            stop(server)


def test_process_mode_cancel_from_another_server(two_servers: tuple[ServeProcess, ServeProcess]) -> None:
    first, second = two_servers
    client = TaskClient(f"{first.url}/{SERVICE}")
    task_id = started_running(client, "spin", 60.0)
    process = run_cli("cancel", f"{second.url}/{SERVICE}", "spin", task_id)
    assert process.returncode == 0, process
    assert "cancelled" in state_line(process, task_id)
    assert client.progress("spin", task_id).state == TaskState.CANCELLED


def test_process_mode_cancel_kills_a_stubborn_worker(two_servers: tuple[ServeProcess, ServeProcess]) -> None:
    first, second = two_servers
    client = TaskClient(f"{first.url}/{SERVICE}")
    task_id = started_running(client, "stubborn", "no gate in a worker", 60.0)
    process = run_cli("cancel", f"{second.url}/{SERVICE}", "stubborn", task_id, "--timeout", "30")
    assert process.returncode == 0, process
    assert "cancelled" in state_line(process, task_id)
    # The pool took a new worker: the next task runs.
    assert client.join("spin", client.start("spin", 0.0), timeout=60) == 1


def test_serve_flags_reach_the_tasks(tmp_path: Path, redis_url: str) -> None:
    server = serve_process_mode(tmp_path, "flags", redis_url, "--time-limit", "0.5", "--retries", "1",
                                "--retry-backoff", "0", "--cancel-grace", "1")
    try:
        server.wait_answering()
        client = TaskClient(f"{server.url}/{SERVICE}")
        with pytest.raises(TaskFailedFault) as timed_out:
            client.join("spin", client.start("spin", 60.0), timeout=60)
        assert timed_out.value.error.startswith("TimeLimitExceeded:")
        failing = client.start("flaky", "again")
        with pytest.raises(TaskFailedFault) as failed:
            client.join("flaky", failing, timeout=60)
        assert failed.value.error.endswith("(after 2 attempts)")
        progress: TaskProgress = client.progress("flaky", failing)
        assert progress.attempt == 2
    finally:
        stop(server)
