"""Real parts for the tests: a redis-server on a free port and live WSGI servers."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
from werkzeug.serving import make_server

import ladon_tasks  # noqa: F401  (applies the Ladon shims before any test module imports Ladon)
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.stores.memory import MemoryStore
from ladon_tasks.stores.redis import RedisStore

HERE = Path(__file__).resolve().parent
SERVICES_DIR = str(HERE / "services")
if SERVICES_DIR not in sys.path:
    sys.path.insert(0, SERVICES_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """``ladon-tasks serve MODULE... --path tests/services OPTION...`` in a subprocess on a
    free port, its output in ``log_path``; :meth:`wait_answering` before use."""

    LADON_TASKS = Path(sys.executable).parent / "ladon-tasks"

    def __init__(self, modules: list[str], log_path: Path, *options: str,
                 env: dict[str, str] | None = None, new_session: bool = False) -> None:
        assert self.LADON_TASKS.exists(), f"{self.LADON_TASKS} is not installed (pip install -e .)"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.new_session = new_session
        self.probe = f"{self.url}/{_service_of(modules[0])}/jsonwsp/description"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.LADON_TASKS), "serve", *modules, "--path", SERVICES_DIR,
                 "--port", str(self.port), *options],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=new_session)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def answers(self) -> bool:
        assert self.process.poll() is None, f"the server exited:\n{self.log()}"
        try:
            with urllib.request.urlopen(self.probe, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_answering(self, timeout: float = 60) -> None:
        from helpers import wait_until

        wait_until(self.answers, timeout=timeout, interval=0.1, message=f"{self.url} to answer")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.new_session:  # its workers and forkserver too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


class CeleryWorker:
    """``ladon-tasks worker MODULE... --path tests/services --redis-url URL OPTION...`` in a
    subprocess of its own session (its pool processes die with it on :meth:`kill`), its
    output in ``log_path``; :meth:`wait_ready` before counting on it."""

    def __init__(self, modules: list[str], redis_url: str, log_path: Path, *options: str,
                 concurrency: int = 2, command: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self.concurrency = concurrency
        if command is None:
            command = [str(ServeProcess.LADON_TASKS), "worker", *modules, "--path", SERVICES_DIR,
                       "--redis-url", redis_url, "--concurrency", str(concurrency),
                       "--progress-interval", "0.05", *options]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, env=env, cwd=SERVICES_DIR)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_pids(self) -> list[int]:
        """The pids of its pool processes (the children of its main process)."""
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def ready(self) -> bool:
        assert self.process.poll() is None, f"the worker exited:\n{self.log()}"
        return " ready." in self.log() and len(self.pool_pids()) == self.concurrency

    def wait_ready(self, timeout: float = 60) -> CeleryWorker:
        from helpers import wait_until

        wait_until(self.ready, timeout=timeout, interval=0.05, message="the Celery worker to be ready")
        return self

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (Celery's warm shutdown: running tasks finish); its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL to its main process and every pool process."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def celery_workers(tmp_path: Path) -> Iterator[Callable[..., CeleryWorker]]:
    """``celery_workers(redis_url, *options, modules=[...], concurrency=2)`` starts a
    ``ladon-tasks worker``, killed after the test (with its pool processes)."""
    started: list[CeleryWorker] = []

    def start(redis_url: str, *options: str, modules: list[str] | None = None,
              concurrency: int = 2, command: list[str] | None = None,
              env: dict[str, str] | None = None) -> CeleryWorker:
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = CeleryWorker(modules or ["lifecycle_service"], redis_url, log_path, *options,
                              concurrency=concurrency, command=command, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def _service_of(module: str) -> str:
    """The service class name of a test service module: ``calc_service`` -> ``CalcService``."""
    return "".join(part.capitalize() for part in module.split("_"))


class RedisServer:
    """One redis-server process the tests can stop and start again on the same port."""

    def __init__(self, workdir: Path, *options: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        #: More redis-server options, after the defaults (so they win).
        self.options = options

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "3600 1", "--appendonly", "no", "--protected-mode", "no", *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def empty_url(self) -> str:
        """The URL of an empty database, the server started again if a test stopped it."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        redis.Redis.from_url(self.url).flushdb()
        return self.url

    def wipe(self) -> None:
        """Delete what the stopped server kept on disk: its next start is empty."""
        assert self.process is None, "stop the server first"
        for path in self.workdir.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def stop(self, save: bool = True) -> None:
        """SIGTERM: Redis saves its data to disk (``--save``) and exits."""
        if self.process is not None:
            if not save:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop(save=False)


@pytest.fixture(scope="module")
def small_bulk_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server that takes no value over 1 MB (``proto-max-bulk-len``, its minimum)."""
    server = RedisServer(tmp_path_factory.mktemp("bulk-redis"), "--proto-max-bulk-len", "1mb")
    server.start()
    yield server
    server.stop(save=False)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis URL with an empty database; the server is restarted if a test stopped it."""
    return redis_server.empty_url()


class LiveServer:
    """A WSGI application on werkzeug's threaded server, on an ephemeral port."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        close = getattr(self.app, "close", None)
        if close is not None:
            close(grace_period=5)


@pytest.fixture
def live_server() -> Iterator[Callable[[Callable], LiveServer]]:
    """``live_server(app)`` starts ``app`` on a real HTTP server, stopped after the test."""
    servers: list[LiveServer] = []

    def start(app: Callable) -> LiveServer:
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def make_app(services: list[str], **options: Any) -> Any:
    """A TaskWSGIApplication over test service modules in tests/services."""
    from ladon_tasks import TaskWSGIApplication

    options.setdefault("debug", False)
    return TaskWSGIApplication(services, [SERVICES_DIR], **options)


# -- one application in each mode -------------------------------------------------------


@pytest.fixture(params=["thread", "process", "celery"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def serve(mode: str, request: pytest.FixtureRequest, live_server: Callable) -> Callable[..., Any]:
    """``serve(**options)`` -> the application on a live server, in this test's mode."""

    def start(**options: Any) -> Any:
        worker = None
        if mode == "celery":
            # The application sends its tasks to a real Celery worker of the same Redis;
            # the worker records their ends, so it keeps their results as long.
            url = request.getfixturevalue("redis_url")
            ttl = ["--result-ttl", str(options["result_ttl"])] if "result_ttl" in options else []
            worker = request.getfixturevalue("celery_workers")(url, *ttl, concurrency=options.pop("size", 2))
            options = {"mode": "celery", "redis_url": url, "progress_interval": 0.05, **options}
        elif mode == "process":
            options = {"mode": "process", "redis_url": request.getfixturevalue("redis_url"),
                       "processes": options.pop("size", 2), "progress_interval": 0.05, **options}
        else:
            options = {"threads": options.pop("size", 2), "progress_interval": 0.05, **options}
        app = make_app(["lifecycle_service"], **options)
        server = live_server(app)
        app.url = server.url
        app.worker = worker and worker.wait_ready()
        return app

    return start


@pytest.fixture(autouse=True)
def _no_leaked_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LADON_TASKS_"):
            monkeypatch.delenv(name)


# -- task stores: every conformance test runs on each ------------------------------------

#: The owners (server processes) the store tests record tasks for; registered alive.
OWNER = "testhost:1"
#: A second owner: the server a retried task is queued back to.
RETRIER = "retrier:2"
OWNERS = (OWNER, RETRIER)


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[..., TaskStore]]:
    """``make_store(result_ttl=...)``: a fresh store of the backend under test."""
    made: list[TaskStore] = []

    def make(result_ttl: float = 3600.0, tombstone_ttl: float = 86400.0,
             max_result_bytes: int = 64 * 1024 * 1024, **redis_options: Any) -> TaskStore:
        if request.param == "memory":
            store: TaskStore = MemoryStore(result_ttl=result_ttl, tombstone_ttl=tombstone_ttl,
                                           max_result_bytes=max_result_bytes)
        else:
            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, result_ttl=result_ttl, tombstone_ttl=tombstone_ttl,
                               max_result_bytes=max_result_bytes, **redis_options)
            for owner in OWNERS:
                store.register_owner(owner, 3600)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., TaskStore]) -> TaskStore:
    return make_store()


# -- logs ---------------------------------------------------------------------------------


class Collect(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collect_logs() -> Iterator[Callable[[str], Collect]]:
    attached: list[tuple[logging.Logger, Collect]] = []

    def attach(name: str) -> Collect:
        handler = Collect()
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        attached.append((logger, handler))
        return handler

    yield attach
    for logger, handler in attached:
        logger.removeHandler(handler)


# -- the status page's browser (tests/status_browser.py) ---------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for a module's tests."""
    from status_browser import headless_chromium

    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def status_page(serve: Callable, live_server: Callable, browser: Any) -> Iterator[Callable]:
    """``status_page(**options)``: see ``status_browser.status_pages``."""
    from status_browser import status_pages

    yield from status_pages(serve, live_server, browser)
