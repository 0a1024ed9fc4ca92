"""The processes a benchmark run starts: private redis-servers and Ladon servers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True if nothing listens on ``port`` of 127.0.0.1."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of every live thread of ``pid``, by native thread id, to the nanosecond.

    From ``/proc/<pid>/task/<tid>/schedstat`` (time on CPU in ns): ``stat`` counts in
    10 ms ticks, which loses most of what each of 32 request threads uses in one batch.
    """
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as stat:
                out[int(tid)] = int(stat.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return out


def precise_cpu_seconds(pid: int) -> float:
    """CPU seconds of the live threads of ``pid`` (nanoseconds; threads that ended are not
    counted, unlike :func:`cpu_seconds`)."""
    return sum(thread_cpu_seconds(pid).values())


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children of all its threads, recursively)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", encoding="ascii") as children:
                    kids = [int(kid) for kid in children.read().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and of its live descendants (not those that already exited)."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            total += cpu_seconds(each)
        except OSError:
            pass
    return total


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class RedisProcess:
    """A private redis-server without persistence, stopped at the end of the run."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir),
             "--save", "", "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited at start")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        _wait_for(answers, 20, f"redis-server on port {self.port}")
        client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class ServerProcess:
    """``serve.py`` in a subprocess: one Ladon server on a free port."""

    def __init__(self, name: str, args: list[str], workdir: Path, python: str | None = None) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.out_path = workdir / f"{name}.out"
        with open(self.out_path, "wb") as out, open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [python or sys.executable, str(HERE / "serve.py"), *args],
                stdout=out, stderr=log, cwd=str(HERE), start_new_session=True)
        self.pid = self.process.pid
        self.port = 0

        def listening() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {name} exited at start; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-2000:])
            for line in self.out_path.read_text(errors="replace").splitlines():
                if line.startswith("LISTENING "):
                    self.port = int(line.split()[1])
                    return True
            return False

        _wait_for(listening, 60, f"server {name}")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to its process group if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()


class GunicornProcess:
    """gunicorn, gthread worker class, one worker, serving ``gunicorn_app:app``.

    ``settings`` is the ``BENCH_APP`` JSON of gunicorn_app (kind, module, options,
    profile); the pid file is added here. ``pid`` is the worker's pid (the master only
    supervises), so CPU and RSS are the worker's, like ServerProcess's.
    """

    def __init__(self, name: str, settings: dict, workdir: Path, threads: int = 32,
                 keep_alive: float = 30.0, python: str | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        pidfile = workdir / f"{name}.worker-pid"
        pidfile.unlink(missing_ok=True)
        env = dict(os.environ, BENCH_APP=json.dumps(dict(settings, pidfile=str(pidfile))))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [python or sys.executable, "-m", "gunicorn", "--worker-class", "gthread",
                 "--workers", "1", "--threads", str(threads), "--keep-alive", f"{keep_alive:g}",
                 "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning",
                 "--graceful-timeout", "15", "--timeout", "120", "--chdir", str(HERE),
                 "gunicorn_app:app"],
                stdout=log, stderr=log, cwd=str(HERE), env=env, start_new_session=True)
        self.master_pid = self.process.pid
        self.pid = 0

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {name} exited at start; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-2000:])
            if not pidfile.exists() or not pidfile.read_text().strip():
                return False
            self.pid = int(pidfile.read_text())
            return not port_is_free(self.port)

        _wait_for(ready, 60, f"gunicorn {name}")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def tree_cpu_seconds(self) -> float:
        """The worker's CPU and its descendants' (process-mode worker processes)."""
        return tree_cpu_seconds(self.pid)

    def stop(self) -> None:
        """SIGTERM to the master (it stops its worker), then SIGKILL to the group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.master_pid, signal.SIGKILL)
                self.process.wait()
