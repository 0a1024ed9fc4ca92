"""``ladon-tasks call`` and ``watch`` as subprocesses against a live server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from typing import Callable, Iterator

import calc_service
import pytest
from conftest import free_port, make_app
from helpers import wait_until

from ladon_tasks.cli import LineProgress, build_parser, one_line, parse_call_arguments, progress_display
from ladon_tasks.client import TaskClient, TaskProgress

CLI = [sys.executable, "-m", "ladon_tasks.cli"]


@pytest.fixture
def calc_url(live_server: Callable) -> str:
    return live_server(make_app(["calc_service"])).url + "/CalcService"


@pytest.fixture
def gate() -> Iterator[str]:
    name = uuid.uuid4().hex
    yield name
    calc_service.GATES.setdefault(name, threading.Event()).set()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120)


def assert_one_line_error(process: subprocess.CompletedProcess, expected: str) -> None:
    assert process.returncode not in (0, None), process
    assert "Traceback" not in process.stderr + process.stdout
    error_lines = [line for line in process.stderr.splitlines() if line.startswith("ladon-tasks")]
    assert len(error_lines) == 1, process.stderr
    assert expected in error_lines[0]
    assert process.stdout == ""


def test_call_prints_the_result(calc_url: str) -> None:
    process = run_cli("call", calc_url, "assemble", "kit", "count=2")
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == {
        "label": "kit", "count": 2, "ok": True, "main": {"name": "main", "weight": 1.5},
        "parts": [{"name": "p0", "weight": 0.0}, {"name": "p1", "weight": 1.0}], "codes": [0, 1],
    }
    assert "started task" in process.stderr
    assert "100% succeeded" in process.stderr


def test_call_over_soap(calc_url: str) -> None:
    process = run_cli("call", calc_url, "steps", "3", "pause=0.01", "--protocol", "soap")
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == 3


def test_call_values_are_json_or_text(calc_url: str) -> None:
    process = run_cli("call", calc_url, "echoString", "not json", "--no-progress")
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == "not json"
    assert "%" not in process.stderr


def test_watch_follows_a_task(calc_url: str, gate: str) -> None:
    client = TaskClient(calc_url)
    task_id = client.start("gated", gate)
    calc_service.GATES.setdefault(gate, threading.Event()).set()
    process = run_cli("watch", calc_url, "gated", task_id)
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == gate


def test_failed_task(calc_url: str) -> None:
    process = run_cli("call", calc_url, "fail", "boom")
    assert_one_line_error(process, "failed: ValueError: boom")
    assert process.returncode == 1


def test_unknown_and_malformed_ids(calc_url: str) -> None:
    assert_one_line_error(run_cli("watch", calc_url, "steps", "A" * 22), "no task " + "A" * 22)
    assert_one_line_error(run_cli("watch", calc_url, "steps", "nope", "--protocol", "soap"),
                          "malformed task id")


@pytest.mark.parametrize("protocol", ["jsonwsp", "soap"])
def test_connection_refused(protocol: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/CalcService"
    assert_one_line_error(run_cli("call", url, "steps", "1", "0", "--protocol", protocol),
                          "Connection refused")


def test_server_fault(calc_url: str) -> None:
    # The server cannot read "lots" as an int: a fault with a multi-line message.
    assert_one_line_error(run_cli("call", calc_url, "steps", "lots", "0"), "Failed to convert")


def test_not_a_task_method(calc_url: str) -> None:
    assert_one_line_error(run_cli("call", calc_url, "add", "1", "2"), "not a task method")


def test_timeout_leaves_the_task_running(calc_url: str, gate: str) -> None:
    process = run_cli("call", calc_url, "gated", gate, "--timeout", "0.3")
    assert process.returncode == 124
    assert "keeps running on the server" in process.stderr
    assert "Traceback" not in process.stderr


def test_ctrl_c_leaves_the_task_running(calc_url: str, gate: str) -> None:
    client = TaskClient(calc_url)
    task_id = client.start("gated", gate)
    process = subprocess.Popen(CLI + ["watch", calc_url, "gated", task_id],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("25%" in line for line in lines), timeout=60, message="progress output")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert f"interrupted; task {task_id} keeps running on the server" in stderr
    assert "Traceback" not in stderr
    assert process.stdout.read() == ""
    process.stdout.close()
    assert client.progress("gated", task_id).state == "running"


def test_parse_call_arguments() -> None:
    arguments = ["1", "x", "[1, 2]", "name=vm 1", "n=2", "flag=true", "a-b=c"]
    positional, keywords = parse_call_arguments(arguments)
    assert positional == [1, "x", [1, 2], "a-b=c"]
    assert keywords == {"name": "vm 1", "n": 2, "flag": True}
    with pytest.raises(ValueError, match="twice"):
        parse_call_arguments(["n=1", "n=2"])


def test_task_ids_starting_with_a_dash() -> None:
    task_id = "-" + "a" * 21
    args = build_parser().parse_args(["watch", "http://h/S", "steps", task_id, "--protocol", "soap"])
    assert args.task_id == task_id and args.protocol == "soap"
    args = build_parser().parse_args(["call", "http://h/S", "echoString", task_id, "--no-progress"])
    assert args.args == [task_id] and args.no_progress


def test_usage_errors_exit_2(calc_url: str) -> None:
    assert run_cli("call", calc_url, "steps", "count=1", "count=2").returncode == 2
    assert run_cli("call").returncode == 2


def test_one_line() -> None:
    assert one_line(ValueError("\nfirst\n  second\n")) == "first second"


def test_progress_lines_without_a_terminal(capsys: pytest.CaptureFixture) -> None:
    progress = TaskProgress("t" * 22, "running", False, 0.5, 1.0, 1.0, 1.0, 0.0, "")
    with progress_display(True, "label", sys.stdout) as show:
        assert isinstance(show, LineProgress)
        show(progress)
        show(progress)
    assert capsys.readouterr().out == f"task {'t' * 22}:  50% running\n"


def test_progress_lines_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)
    assert type(progress_display(True, "label")) is LineProgress
