"""``ladon-tasks call`` and ``watch`` as subprocesses against a live server, and the
first-run frictions of ``ladon-tasks serve``."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Callable, Iterator

import calc_service
import pytest
from conftest import SERVICES_DIR, ServeProcess, free_port, make_app
from helpers import wait_until

from ladon_tasks.cli import (
    LineProgress,
    build_parser,
    one_line,
    parse_call_arguments,
    progress_display,
    serve_config,
)
from ladon_tasks.client import TaskClient, TaskProgress

CLI = [sys.executable, "-m", "ladon_tasks.cli"]
REPO = Path(__file__).resolve().parents[1]


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


def test_a_wrong_argument_is_told_in_one_line(calc_url: str) -> None:
    # The server cannot read "lots" as an int: the fault names the argument and its type.
    assert_one_line_error(run_cli("call", calc_url, "steps", "lots", "0"),
                          'argument "count" of steps must be an integer; got "lots"')


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
    args = build_parser().parse_args(["cancel", "http://h/S", "steps", task_id, "--timeout", "0"])
    assert args.task_id == task_id and args.timeout == 0.0


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


# -- ladon-tasks serve: first-run frictions ------------------------------------------------


class FreePortServe:
    """``ladon-tasks serve MODULE --path DIR --port 0``: the port is the one it announces."""

    ANNOUNCED = re.compile(r"serving \S+ on http://127\.0\.0\.1:(\d+)/ in thread mode")

    def __init__(self, module: str, path: str, log_path: Path, *more: str) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(ServeProcess.LADON_TASKS), "serve", module, "--path", path, "--port", "0", *more],
                stdout=log, stderr=subprocess.STDOUT)
        match = wait_until(self._announced, timeout=60, interval=0.05, message="the serving line")
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def _announced(self) -> re.Match | None:
        assert self.process.poll() is None, f"the server exited:\n{self.log()}"
        return self.ANNOUNCED.search(self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.read().decode("utf-8")

    def stop(self) -> int:
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the server did not stop on SIGTERM:\n{self.log()}")


def test_serve_unknown_module_is_one_line() -> None:
    for extra in ([], ["--path", SERVICES_DIR]):
        process = subprocess.run(
            [str(ServeProcess.LADON_TASKS), "serve", "no_such_module", "--port", str(free_port()), *extra],
            capture_output=True, text=True, timeout=120)
        assert process.returncode == 2, process
        assert "Traceback" not in process.stderr
        assert process.stderr.strip().splitlines() == [process.stderr.strip()]
        assert "no module named 'no_such_module'" in process.stderr and "--path" in process.stderr


def test_serve_port_0_announces_the_bound_port(tmp_path: Path) -> None:
    server = FreePortServe("calc_service", SERVICES_DIR, tmp_path / "serve.log")
    try:
        assert int(server.url.rsplit(":", 1)[1]) > 0
        assert '"CalcService"' in server.get("/CalcService/jsonwsp/description")
        client = TaskClient(server.url + "/CalcService")
        assert client.join("echoInt", client.start("echoInt", 5)) == 5
    finally:
        status = server.stop()
    assert status == 0, server.log()
    assert "Traceback" not in server.log()


def test_serve_lifecycle_flags_reach_the_config() -> None:
    args = build_parser().parse_args([
        "serve", "calc_service", "--time-limit", "none", "--max-silence", "30", "--retries", "2",
        "--retry-backoff", "0.5", "--cancel-grace", "2", "--tombstone-ttl", "60"])
    config = serve_config(args)
    assert (config.time_limit, config.max_silence, config.retries) == (None, 30.0, 2)
    assert (config.retry_backoff, config.cancel_grace, config.tombstone_ttl) == (0.5, 2.0, 60.0)
    defaults = serve_config(build_parser().parse_args(["serve", "calc_service"]))
    assert (defaults.time_limit, defaults.max_silence, defaults.retries) == (None, None, 0)


@pytest.mark.parametrize("flag, value, named", [
    ("--retries", "-1", "retries"), ("--time-limit", "soon", "time_limit"),
    ("--cancel-grace", "0", "cancel_grace"), ("--max-silence", "-5", "max_silence"),
])
def test_serve_bad_lifecycle_flag_is_one_line(flag: str, value: str, named: str) -> None:
    process = subprocess.run(
        [str(ServeProcess.LADON_TASKS), "serve", "calc_service", "--path", SERVICES_DIR,
         "--port", str(free_port()), flag, value], capture_output=True, text=True, timeout=120)
    assert process.returncode == 2, process
    assert "Traceback" not in process.stderr
    assert process.stderr.strip().startswith("ladon-tasks: ") and named in process.stderr


def readme_sample() -> str:
    """The quickstart service of README.md."""
    text = (REPO / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)


def quickstart_sample() -> str:
    """The quickstart service of docs/quickstart.rst."""
    text = (REPO / "docs" / "quickstart.rst").read_text()
    block = re.search(r"``reports/report_service.py``::\n\n(.*?)\n(?=\S)", text, re.DOTALL)
    return textwrap.dedent(block.group(1))


def visible_text(html: str) -> str:
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.DOTALL)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("sample", [readme_sample, quickstart_sample], ids=["README", "quickstart"])
def test_quickstart_service_page_shows_its_docstrings(sample: Callable[[], str], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report_service.py").write_text(sample())
    server = FreePortServe("report_service", str(reports), tmp_path / "serve.log")
    try:
        page = visible_text(server.get("/ReportService/"))
    finally:
        server.stop()
    assert "Build a report of" in page and "the report's title" in page
    assert "None" not in page.split("buildReport_progress")[0]


def test_readme_says_to_activate_the_venv() -> None:
    text = (REPO / "README.md").read_text()
    quickstart = text[text.index("## Quickstart"):text.index("## Modes")]
    first_command = quickstart.index("$ ladon-tasks")
    assert ". .venv/bin/activate" in quickstart[:first_command]


@pytest.mark.parametrize("extra, words", [
    (["no_such_module", "--redis-url", "redis://127.0.0.1:1/0"],
     ["no module named 'no_such_module'", "--path"]),
    (["lifecycle_service", "--path", SERVICES_DIR],
     ["mode='celery' keeps task state in Redis", "--redis-url"]),
    (["lifecycle_service", "--path", SERVICES_DIR, "--redis-url", "redis://127.0.0.1:1/0", "--lost-after",
      "soon"], ["lost_after='soon' is not a valid float"]),
])
def test_worker_usage_errors_are_one_line_and_exit_2(extra: list[str], words: list[str]) -> None:
    process = subprocess.run([str(ServeProcess.LADON_TASKS), "worker", *extra],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2, process
    assert "Traceback" not in process.stderr
    assert len(process.stderr.strip().splitlines()) == 1, process.stderr
    for word in words:
        assert word in process.stderr


def test_worker_flags_reach_the_config_and_celery() -> None:
    from ladon_tasks.cli.worker import celery_argv, worker_config

    args = build_parser().parse_args([
        "worker", "calc_service", "--redis-url", "redis://r:6379/3", "--broker-url", "amqp://mq//",
        "--queue", "reports", "--concurrency", "3", "--result-ttl", "60", "--lost-after", "4"])
    config = worker_config(args)
    assert (config.mode, config.redis_url, config.broker_url, config.celery_queue) == (
        "celery", "redis://r:6379/3", "amqp://mq//", "reports")
    assert (config.processes, config.result_ttl, config.lost_after) == (3, 60.0, 4.0)
    argv = celery_argv(config, "info")
    assert argv[:7] == ["worker", "--pool", "prefork", "--concurrency", "3", "--queues", "reports"]
    assert "--without-mingle" in argv and "INFO" in argv
