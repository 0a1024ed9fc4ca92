"""ladon_tasks under Apache httpd and mod_wsgi, for real: several daemon processes, one Redis.

Apache loads mod_wsgi built against Debian's ``/usr/bin/python3`` and, started as root, runs
its daemon processes as www-data, which can read neither pyenv's Pythons nor anything under
/root. So the session makes (once, then reuses) a virtual environment of that Python with
mod_wsgi and ladon_tasks' requirements in a directory everybody can read
(``/var/tmp/ladon-tasks-apache``, or ``$LADON_TASKS_APACHE_VENV``), and each test serves a
copy of this checkout's ``ladon_tasks`` and test services from a readable temporary directory.

The WSGI script is ``apache/ladon_tasks.wsgi`` itself, with the service list edited; the
third test runs ``apache/ladon-tasks.conf`` as it is, in a real ``apache2``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Iterator

import apache_env
import pytest
import redis
import requests
import zeep
from conftest import SERVICES_DIR, free_port
from helpers import wait_until

from ladon_tasks.stores.redis import RedisStore
from ladon_tasks.task import TaskState

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[1]
APACHE_MODULES = Path("/usr/lib/apache2/modules")
IS_ROOT = os.geteuid() == 0
PROCESSES, THREADS = 3, 5
SERVICE = "ApacheService"

SETUP_HINT = (
    "The Apache tests need Apache httpd with its development files, Redis, and Debian's Python "
    "with venv and headers:\n"
    "    apt-get install -y apache2 apache2-dev redis-server python3-dev python3-venv\n"
    "They build the mod_wsgi environment themselves (in /var/tmp/ladon-tasks-apache, or in "
    "$LADON_TASKS_APACHE_VENV; the Python is $LADON_TASKS_APACHE_PYTHON, default /usr/bin/python3)."
)


# -- the mod_wsgi environment, made once ---------------------------------------------


def _run(command: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess:
    try:
        return apache_env.run(command, what, **kwargs)
    except apache_env.SetupError as error:
        pytest.fail(f"{error}\n\n{SETUP_HINT}")


_make_readable = apache_env.make_readable


@pytest.fixture(scope="session")
def apache_venv() -> Path:
    """A virtual environment of Apache's Python with mod_wsgi and ladon_tasks' requirements."""
    if shutil.which("apxs") is None or not (APACHE_MODULES / "mod_mpm_event.so").exists():
        pytest.fail(f"Apache httpd or apxs is missing.\n\n{SETUP_HINT}")
    try:
        return apache_env.apache_venv()
    except apache_env.SetupError as error:
        pytest.fail(f"{error}\n\n{SETUP_HINT}")


# -- Apache, started and always stopped -------------------------------------------------


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``: Apache, its daemons, their task workers."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(entry))
    return members


def _describe(pids: list[int]) -> str:
    lines = []
    for pid in pids:
        with contextlib.suppress(OSError):
            lines.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return "\n".join(lines)


def _stage_application(run_dir: Path, venv: Path) -> Path:
    """Copy ladon_tasks, the test service and the WSGI script into ``run_dir``/app."""
    return apache_env.stage_application(run_dir, venv, REPO, Path(SERVICES_DIR) / "apache_service.py")


class Apache:
    """One Apache httpd in the foreground of its own process group, logging to a file."""

    def __init__(self, run_dir: Path, command: list[str], env: dict[str, str], port: int) -> None:
        self.run_dir = run_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = run_dir / "apache.log"
        self.command = command
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> Apache:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=self.run_dir)
        wait_until(self._answers, timeout=60, message=f"Apache answering on {self.url}")
        return self

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, f"Apache exited:\n{self.log()}"
        try:
            return requests.get(f"{self.url}/{SERVICE}/jsonwsp/description", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for extra in self.run_dir.rglob("*error*log"):
            text += f"\n--- {extra}\n" + extra.read_text(errors="replace")
        return text[-20000:]

    def stop(self) -> None:
        """SIGTERM to Apache's parent process (``apachectl stop``); all of it must go."""
        if self.process is None:
            return
        process, self.process = self.process, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
            wait_until(lambda: not _group_members(process.pid), timeout=30,
                       message=f"Apache's daemon and task processes to exit; left: "
                               f"{_describe(_group_members(process.pid))}\n{self.log()}")
        finally:
            if _group_members(process.pid):  # never leave an Apache behind, even on failure
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    # -- clients ----------------------------------------------------------------------

    def jsonwsp(self, method: str, **args: Any) -> tuple[dict, int]:
        """One JSON-WSP call: the answer, and the pid of the daemon process that served it."""
        response = requests.post(f"{self.url}/{SERVICE}/jsonwsp", json={"methodname": method, "args": args},
                                 timeout=120)
        assert response.status_code == 200, (response.status_code, response.text, self.log())
        return response.json(), int(response.headers["X-Daemon-Pid"])

    def result(self, method: str, **args: Any) -> tuple[Any, int]:
        answer, pid = self.jsonwsp(method, **args)
        assert answer.get("type") == "jsonwsp/response", answer
        return answer["result"], pid

    def soap(self) -> zeep.Client:
        transport = PidTransport()
        return zeep.Client(f"{self.url}/{SERVICE}/soap11/description", transport=transport)


class PidTransport(zeep.Transport):
    """zeep's transport, remembering which daemon process answered each SOAP call."""

    def __init__(self) -> None:
        super().__init__(timeout=120, operation_timeout=120)
        self.pids: list[int] = []

    def post(self, address: str, message: Any, headers: Any) -> Any:
        response = super().post(address, message, headers)
        self.pids.append(int(response.headers["X-Daemon-Pid"]))
        return response


def _apache_env(redis_url: str, **task_options: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADON_TASKS_")}
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", LADON_TASKS_REDIS_URL=redis_url)
    env.update({f"LADON_TASKS_{name.upper()}": value for name, value in task_options.items()})
    return env


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A temporary directory www-data can read."""
    path = Path(tempfile.mkdtemp(prefix="ladon-tasks-apache-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def servers() -> Iterator[list[Apache]]:
    """Apaches started by a test, stopped after it whatever happened."""
    started: list[Apache] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def express(apache_venv: Path, run_dir: Path, redis_url: str, servers: list[Apache]) -> Any:
    """``express(**task_options)``: mod_wsgi-express, PROCESSES daemon processes of THREADS threads."""

    def start(**task_options: str) -> Apache:
        app = _stage_application(run_dir, apache_venv)
        port = free_port()
        command = [
            str(apache_venv / "bin" / "mod_wsgi-express"), "start-server", str(app / "ladon_tasks.wsgi"),
            "--host", "127.0.0.1", "--port", str(port), "--processes", str(PROCESSES),
            "--threads", str(THREADS), "--server-root", str(run_dir / "server"),
            "--python-path", str(app), "--locale", "C.UTF-8", "--log-to-terminal", "--log-level", "info",
            "--shutdown-timeout", "10",
        ]
        if IS_ROOT:
            command += ["--user", "www-data", "--group", "www-data"]
        _make_readable(run_dir)
        server = Apache(run_dir, command, _apache_env(redis_url, **task_options), port)
        servers.append(server)
        return server.start()

    return start


# -- choosing the daemon process that serves the next requests -----------------------


class Pinner:
    """Keeps every request thread busy but those of one daemon process (see apache_service).

    A mod_wsgi daemon process takes a request only on an idle thread, so while all the
    other processes' threads wait in ``hold``, the next requests go to the free one.
    """

    def __init__(self, server: Apache, redis_url: str) -> None:
        self.server = server
        self.name = f"hold-{uuid.uuid4().hex}"
        self.redis = redis.Redis.from_url(redis_url)
        self.pool = ThreadPoolExecutor(PROCESSES * THREADS + THREADS)
        self.holds: list[Future] = []
        self.free: int | None = None

    def _arrived(self) -> Counter:
        return Counter(int(pid) for pid in self.redis.lrange(f"{self.name}:arrived", 0, -1))

    def _hold(self, count: int) -> None:
        for _ in range(count):
            self.holds.append(self.pool.submit(self.server.result, "hold", name=self.name))

    def _release(self, pid: int, count: int) -> None:
        self.redis.rpush(f"{self.name}:release:{pid}", *["go"] * count)

    def occupy_all(self) -> list[int]:
        """Hold every thread of every daemon process; return the daemon processes' pids."""
        self._hold(PROCESSES * THREADS)
        arrived = wait_until(lambda: sum(self._arrived().values()) == PROCESSES * THREADS and self._arrived(),
                             timeout=60, message="a hold on every request thread")
        assert sorted(arrived.values()) == [THREADS] * PROCESSES, arrived
        return sorted(arrived)

    def pin(self, pid: int) -> None:
        """From now on, only daemon process ``pid`` has idle threads."""
        if self.free is not None and self.free != pid:
            held = self._arrived()[self.free]
            self._hold(THREADS)  # only the free process can take these
            wait_until(lambda: self._arrived()[self.free] == held + THREADS, timeout=60,
                       message=f"holds on every thread of process {self.free}")
        self._release(pid, THREADS)
        self.free = pid

    def release_all(self) -> None:
        """Let every hold return (without raising: the test's own outcome matters more)."""
        for pid in self._arrived():
            self._release(pid, PROCESSES * THREADS * 4)
        wait(self.holds, timeout=120)
        self.pool.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def pinned(server: Apache, redis_url: str) -> Iterator[Pinner]:
    pinner = Pinner(server, redis_url)
    try:
        yield pinner
    finally:
        pinner.release_all()


def _wait_done(server: Apache, task_id: str) -> dict:
    def done() -> dict | None:
        progress, _ = server.result("work_progress", task_id=task_id)
        return progress if progress["done"] else None

    return wait_until(done, timeout=60, message=f"task {task_id} to end")


# -- the tests ----------------------------------------------------------------------------


def test_multiprocessing_mode_any_daemon_process_answers_for_any_task(express: Any, redis_url: str) -> None:
    server = express(mode="process", processes="2", grace_period="2")
    with pinned(server, redis_url) as pinner:
        daemons = pinner.occupy_all()
        assert len(set(daemons)) == PROCESSES  # requests do land on different daemon processes
        starter, poller = daemons[0], daemons[1]

        pinner.pin(starter)
        soap = server.soap()
        started = []
        for number in (1, 2):
            answer, pid = server.result("work", number=number, seconds=0.5)
            assert pid == starter
            started.append((number, answer["task_id"]))
        for number in (3, 4):
            started.append((number, soap.service.work(number, 0.5)))
            assert soap.transport.pids[-1] == starter

        pinner.pin(poller)
        for number, task_id in started:
            progress = _wait_done(server, task_id)
            assert progress["state"] == TaskState.SUCCEEDED.value, progress
            report, pid = server.result("work_result", task_id=task_id)
            assert pid == poller
            assert report["number"] == number
            assert report["worker_pid"] not in daemons  # it ran in a task worker process
            soap_progress = soap.service.work_progress(task_id)
            soap_report = soap.service.work_result(task_id)
            assert soap.transport.pids[-2:] == [poller, poller]
            assert soap_progress.state == TaskState.SUCCEEDED.value
            # Ladon's SOAP spells the underscore of worker_pid as a hyphen.
            assert (soap_report.number, soap_report["worker-pid"]) == (number, report["worker_pid"])


def test_celery_mode_a_task_outlives_a_graceful_restart_of_every_daemon_process(
        express: Any, redis_url: str, celery_workers: Any) -> None:
    # Each deploy and each log rotation restarts Apache gracefully: its daemon processes
    # end within seconds. In celery mode the task runs on a Celery worker, its state in
    # Redis, so it runs on and is read through the daemon processes that come next.
    worker = celery_workers(redis_url, modules=["apache_service"], concurrency=2)
    server = express(mode="celery")
    with pinned(server, redis_url) as pinner:
        old_daemons = set(pinner.occupy_all())
    worker.wait_ready()
    started, _ = server.result("work", number=20, seconds=20.0)
    task_id = started["task_id"]
    wait_until(lambda: server.result("work_progress", task_id=task_id)[0]["state"] == "running",
               timeout=30, message="the task to run on the worker")

    assert server.process is not None
    os.kill(server.process.pid, signal.SIGUSR1)  # apachectl -k graceful
    wait_until(lambda: not set(_group_members(server.process.pid)) & old_daemons, timeout=60,
               message="the old daemon processes to end")
    with pinned(server, redis_url) as pinner:
        new_daemons = set(pinner.occupy_all())

    during, pid = server.result("work_progress", task_id=task_id)
    assert pid in new_daemons and during["state"] == "running" and during["progress"] < 1.0
    progress = _wait_done(server, task_id)
    assert progress["state"] == TaskState.SUCCEEDED.value and progress["attempt"] == 1, progress
    report, pid = server.result("work_result", task_id=task_id)
    assert pid in new_daemons and report["number"] == 20
    assert report["worker_pid"] in worker.pool_pids()  # run by the Celery worker, start to end


def test_twenty_waiters_do_not_block_plain_calls(express: Any, redis_url: str) -> None:
    # 3 daemon processes of 5 threads: max_waiters is a quarter of 5, one wait per process;
    # the other waits are answered at once, so request threads stay free for plain calls.
    server = express(mode="process", processes="2", grace_period="2")
    started, _ = server.result("work", number=1, seconds=20.0)
    task_id = started["task_id"]
    with ThreadPoolExecutor(20) as pool:
        waits = [pool.submit(server.result, "work_wait", task_id=task_id, timeout=15.0) for _ in range(20)]
        answered_at_once = wait_until(lambda: sum(w.done() for w in waits) >= 20 - PROCESSES and waits,
                                      timeout=60, message="the waits beyond max_waiters to be answered")
        plain_pids = {server.result("pid")[1] for _ in range(10)}  # ten plain calls get through
        still_waiting = [w for w in waits if not w.done()]
        assert still_waiting, "some waits still wait: the plain calls did not wait for them"
        assert len(still_waiting) <= PROCESSES
        assert plain_pids
        for waited in answered_at_once:
            progress, _ = waited.result(timeout=60)
            assert progress["state"] in ("queued", "running") and progress["poll_after"] > 0


def test_thread_mode_in_several_daemon_processes_answers_with_a_clear_fault(
        express: Any, redis_url: str) -> None:
    server = express(mode="thread")
    with pinned(server, redis_url) as pinner:
        daemons = pinner.occupy_all()
        starter, other = daemons[0], daemons[1]

        pinner.pin(starter)
        answer, pid = server.result("work", number=7, seconds=0.1)
        task_id = answer["task_id"]
        assert pid == starter
        assert _wait_done(server, task_id)["state"] == TaskState.SUCCEEDED.value

        pinner.pin(other)
        for method, asked in (("work_progress", task_id), ("work_result", task_id),
                              ("work_progress", "AAAAAAAAAAAAAAAAAAAAAA")):
            answer, pid = server.jsonwsp(method, task_id=asked)
            assert pid == other
            assert answer["type"] == "jsonwsp/fault", answer
            fault = answer["fault"]
            assert "TaskNotFound" in fault["detail"], fault
            assert "multiprocessing mode" in fault["string"], fault
            assert "several processes" in fault["string"], fault
        soap = server.soap()
        with pytest.raises(zeep.exceptions.Fault, match="multiprocessing mode"):
            soap.service.work_progress(task_id)
        assert soap.transport.pids[-1] == other

        pinner.pin(starter)  # the process that started it still knows it
        report, pid = server.result("work_result", task_id=task_id)
        assert (pid, report["number"]) == (starter, 7)


def _vhost_config(run_dir: Path, app: Path, port: int) -> Path:
    """apache/ladon-tasks.conf as it is, with LADON_TASKS_HOME and its port set, in a
    minimal server configuration."""
    example = (REPO / "apache" / "ladon-tasks.conf").read_text()
    for old, new in (("Define LADON_TASKS_HOME /srv/ladon-tasks", f"Define LADON_TASKS_HOME {app}"),
                     ("<VirtualHost *:80>", f"<VirtualHost *:{port}>")):
        assert old in example, f"apache/ladon-tasks.conf no longer has {old!r}"
        example = example.replace(old, new)
    if not IS_ROOT:  # only root can switch users
        example = example.replace("user=www-data group=www-data", "")
    (run_dir / "ladon-tasks.conf").write_text(example)
    module = _run([str(app / "venv" / "bin" / "mod_wsgi-express"), "module-config"], "mod_wsgi module-config")
    server = run_dir / "server"
    server.mkdir()
    users = "User www-data\nGroup www-data\n" if IS_ROOT else ""
    conf = run_dir / "httpd.conf"
    conf.write_text(f"""\
ServerRoot {server}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {server}/httpd.pid
DefaultRuntimeDir {server}
ErrorLog {server}/error.log
LogLevel info
{users}LoadModule mpm_event_module {APACHE_MODULES}/mod_mpm_event.so
LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so
{module.stdout}
WSGISocketPrefix {server}/wsgi
Define APACHE_LOG_DIR {server}
Include {run_dir}/ladon-tasks.conf
""")
    return conf


def test_virtual_host_example_serves_tasks_and_stops_gracefully(
        apache_venv: Path, run_dir: Path, redis_url: str, servers: list[Apache]) -> None:
    app = _stage_application(run_dir, apache_venv)
    port = free_port()
    conf = _vhost_config(run_dir, app, port)
    _make_readable(run_dir)
    # No task option but the Redis URL: the mode and the grace period are the script's.
    server = Apache(run_dir, ["/usr/sbin/apache2", "-f", str(conf), "-DFOREGROUND"], _apache_env(redis_url),
                    port)
    servers.append(server)
    server.start()

    answer, _ = server.result("work", number=5, seconds=0.2)
    assert _wait_done(server, answer["task_id"])["state"] == TaskState.SUCCEEDED.value
    report, _ = server.result("work_result", task_id=answer["task_id"])
    assert report["number"] == 5

    answer, _ = server.result("work", number=6, seconds=300)
    running = answer["task_id"]
    wait_until(lambda: server.result("work_progress", task_id=running)[0]["progress"] > 0, timeout=60,
               message="the long task to run")
    server.stop()
    # Apache is gone: the stopping daemon process recorded the task lost itself, at once,
    # instead of leaving it 'running' until its heartbeat grew stale.
    record = RedisStore(redis_url).get(running)
    assert record is not None
    assert record.state is TaskState.LOST, record
    assert "server process stopped" in record.error, record
