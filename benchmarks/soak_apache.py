"""The soak's Apache: mod_wsgi-express start-server (3 daemon processes x 5 threads)
serving services/soak_service.py through apache/ladon_tasks.wsgi, from a snapshot of the
checkout's ladon_tasks; in its own process group, always stopped."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import signal
import subprocess
from pathlib import Path

from procs import free_port
from soak_common import HERE, PROCESSES, REPO, SERVICE, THREADS, say, wait_for
from soak_procs import group_members, name_processes
from soak_venv import apache_env, make_readable

IS_ROOT = os.geteuid() == 0
#: Threads per child of Apache's event MPM in mod_wsgi-express's configuration.
MPM_THREADS = 16


def snapshot_library(workdir: Path) -> tuple[Path, str]:
    """Copy the checkout's ladon_tasks once, so that both runs serve the same code even if
    it is being edited meanwhile; the copy and a digest of its files."""
    source = workdir / "source"
    shutil.copytree(REPO / "ladon_tasks", source / "ladon_tasks",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*.py")):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    return source, digest.hexdigest()[:12]


def stage_application(run_dir: Path, venv: Path, source: Path) -> Path:
    """Copy ladon_tasks (from ``source``), the soak service and the WSGI script into
    ``run_dir``/app."""
    return apache_env.stage_application(run_dir, venv, source, HERE / "services" / "soak_service.py")


class Apache:
    """mod_wsgi-express start-server in its own process group, logging to a file.

    ``clients`` is Apache's --max-clients, room for every client connection kept open, and
    every child of the event MPM starts at once and stays: with the defaults (1.5 x 15
    threads; children started and stopped as the load goes) Apache closes kept-alive
    connections as requests arrive on them, and the client sees RemoteDisconnected.
    Requests still wait for one of the 3 x 5 mod_wsgi daemon threads.
    """

    def __init__(self, run_dir: Path, venv: Path, source: Path, redis_url: str, workers: int,
                 clients: int) -> None:
        self.run_dir = run_dir
        self.port = free_port()
        self.log_path = run_dir / "apache.log"
        app = stage_application(run_dir, venv, source)
        children = -(-clients // MPM_THREADS)
        (run_dir / "mpm.conf").write_text(
            f"<IfModule mpm_event_module>\nStartServers {children}\nMinSpareThreads {MPM_THREADS}\n"
            f"MaxSpareThreads {children * MPM_THREADS}\n</IfModule>\n")
        self.command = [
            str(venv / "bin" / "mod_wsgi-express"), "start-server", str(app / "ladon_tasks.wsgi"),
            "--host", "127.0.0.1", "--port", str(self.port), "--processes", str(PROCESSES),
            "--threads", str(THREADS), "--server-root", str(run_dir / "server"),
            "--python-path", str(app), "--locale", "C.UTF-8", "--log-to-terminal", "--log-level", "warn",
            "--shutdown-timeout", "10", "--keep-alive-timeout", "10",
            "--max-clients", str(children * MPM_THREADS), "--include-file", str(run_dir / "mpm.conf"),
        ]
        if IS_ROOT:
            self.command += ["--user", "www-data", "--group", "www-data"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LADON_TASKS_")}
        self.env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", LADON_TASKS_MODE="process",
                        LADON_TASKS_REDIS_URL=redis_url, LADON_TASKS_PROCESSES=str(workers))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start Apache in its own session and wait until the service answers."""
        make_readable(self.run_dir)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=self.run_dir)
        wait_for(self._answers, 60, f"Apache answering on port {self.port}", interval=0.2)

    def _answers(self) -> bool:
        """True once the service's description is served; RuntimeError if Apache exited."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"Apache exited at start:\n{self.log()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            connection.request("GET", f"/{SERVICE}/jsonwsp/description")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def log(self) -> str:
        """The end of Apache's log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-5000:]

    def stop(self) -> None:
        """SIGTERM to Apache's parent process; SIGKILL to the group for whatever stays."""
        if self.process is None:
            return
        process, self.process = self.process, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
            wait_for(lambda: not group_members(process.pid), 30, "Apache's processes to exit", interval=0.2)
        except (subprocess.TimeoutExpired, RuntimeError) as error:
            say(f"Apache did not stop cleanly ({error}); killing its process group")
        finally:
            if group_members(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)

    def processes(self) -> dict[str, int]:
        """Every process of this Apache by role: parent, children, daemons, workers."""
        if self.process is None:
            return {}
        return name_processes(self.process.pid, group_members(self.process.pid))
