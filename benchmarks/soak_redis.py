"""The soak's private redis-server with an append-only file (appendfsync always: a restart
keeps every acknowledged write), and its restart in place."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from procs import free_port
from soak_common import wait_for


class AofRedis:
    """A private redis-server on a free port, AOF with fsync always, restartable in place."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = workdir
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir),
                        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                        "--protected-mode", "no", "--logfile", str(workdir / "redis.log")]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start redis-server (loading its AOF, if any) and wait until it answers PING."""
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        wait_for(self.answers, 60, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        """True if it answers PING; RuntimeError if it exited."""
        import redis

        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited; see {self.dir}/redis.log")
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:  # not listening yet, or still loading its AOF
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM (redis-server flushes its AOF and exits), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int:
        """The pid of the running redis-server (0 before it started)."""
        return self.process.pid if self.process else 0


@dataclass
class Outage:
    """When the Redis restart happened (time.monotonic())."""

    sigterm: float = 0.0
    stopped: float = 0.0
    restarted: float = 0.0
    answering: float = 0.0

    def window(self, slack: float) -> tuple[float, float]:
        """From the SIGTERM to ``slack`` seconds after Redis answered again."""
        return self.sigterm, self.answering + slack


def restart_redis(server: AofRedis, outage: float) -> Outage:
    """SIGTERM, wait ``outage`` seconds from when it stopped, start again on the same port."""
    times = Outage(sigterm=time.monotonic())
    server.stop()
    times.stopped = time.monotonic()
    time.sleep(max(0.0, times.stopped + outage - time.monotonic()))
    times.restarted = time.monotonic()
    server.start()
    times.answering = time.monotonic()
    return times
