"""``ladon-tasks tasks URL`` against ``ladon-tasks serve --admin``, both real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from conftest import SERVICES_DIR, ServeProcess, free_port
from test_cli import FreePortServe, assert_one_line_error

from ladon_tasks.client import TaskClient

SERVICE = "LifecycleService"


def tasks_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ServeProcess.LADON_TASKS), "tasks", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[FreePortServe]:
    server = FreePortServe("lifecycle_service", SERVICES_DIR, tmp_path / "serve.log", "--admin")
    yield server
    assert server.stop() == 0, server.log()


def test_tasks_prints_the_table_of_the_servers_tasks(admin_server, tmp_path):
    client = TaskClient(f"{admin_server.url}/{SERVICE}")
    done = [client.start("quick", text=str(number)) for number in range(3)]
    for task_id in done:
        client.join("quick", task_id)
    running = client.start("spin", marker=str(tmp_path / "spin"), seconds=60.0)
    try:
        listed = tasks_cli(admin_server.url)
        assert listed.returncode == 0, listed
        lines = listed.stdout.splitlines()
        assert lines[0].split()[:3] == ["task", "id", "method"]
        shown = [line.split()[0] for line in lines[1:-1]]
        assert shown == [running, *done[::-1]]  # newest first
        assert f"{SERVICE}.quick" in lines[2] and "succeeded" in lines[2] and "100%" in lines[2]
        assert lines[-1] == "4 tasks, newest first"

        only = tasks_cli(admin_server.url, "--method", f"{SERVICE}.quick", "--limit", "2")
        assert [line.split()[0] for line in only.stdout.splitlines()[1:-1]] == done[:0:-1]
        assert "more: use --all" in only.stdout.splitlines()[-1]

        rows = [json.loads(line) for line in tasks_cli(admin_server.url, "--json", "--all",
                                                       "--state", "succeeded").stdout.splitlines()]
        assert [row["task_id"] for row in rows] == done[::-1]
        assert {row["owner"] for row in rows} == {None}
    finally:
        client.cancel("spin", running)


def test_tasks_refused_or_unreachable_is_one_line(tmp_path):
    closed = FreePortServe("lifecycle_service", SERVICES_DIR, tmp_path / "closed.log")  # no --admin
    try:
        assert_one_line_error(tasks_cli(closed.url), "403 Forbidden")
        assert_one_line_error(tasks_cli(closed.url, "--header", "nonsense"), "NAME:VALUE")
    finally:
        assert closed.stop() == 0
    assert_one_line_error(tasks_cli(f"http://127.0.0.1:{free_port()}"), "cannot reach the console")


def test_a_bad_filter_is_the_servers_one_line_error(admin_server):
    assert_one_line_error(tasks_cli(admin_server.url, "--state", "sleeping"), "InvalidQuery")
