"""Task options: one frozen dataclass, validated once, readable from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping
from urllib.parse import urlparse

from ladon_tasks.constants import DEFAULT_KEY_PREFIX, ENV_PREFIX
from ladon_tasks.exceptions import ConfigurationError

#: Execution modes and what each one needs.
THREAD_MODE = "thread"
PROCESS_MODE = "process"
CELERY_MODE = "celery"
MODES = (THREAD_MODE, PROCESS_MODE, CELERY_MODE)
#: The modes whose tasks run outside the web process, their state in Redis.
REDIS_MODES = (PROCESS_MODE, CELERY_MODE)
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _default_processes() -> int:
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class TaskConfig:
    """How tasks run and where their state lives.

    Every field can be given to :class:`~ladon_tasks.TaskWSGIApplication` as a keyword,
    on the ``ladon-tasks serve`` command line, or as ``LADON_TASKS_<FIELD>`` in the
    environment (``LADON_TASKS_REDIS_URL=redis://...``).
    """

    #: ``"thread"`` (state in process memory), ``"process"`` (worker processes of each
    #: server process, Redis) or ``"celery"`` (Celery workers on any host, Redis).
    mode: str = THREAD_MODE
    #: Size of the thread pool that runs thread-mode tasks.
    threads: int = 8
    #: Size of the worker-process pool of each server process in process mode.
    processes: int = field(default_factory=_default_processes)
    #: Redis URL (``redis://``, ``rediss://``, ``unix://``); required by process and celery mode.
    redis_url: str | None = None
    #: Celery mode: the URL of the Celery broker; None: ``redis_url``.
    broker_url: str | None = None
    #: Celery mode: the Celery queue task messages are sent to and workers consume.
    celery_queue: str = "ladon_tasks"
    #: Prefix of every Redis key.
    key_prefix: str = DEFAULT_KEY_PREFIX
    #: Seconds a finished task's record and result are kept.
    result_ttl: float = 3600.0
    #: Seconds between two progress writes to Redis from one task (coalescing window).
    progress_interval: float = 0.1
    #: Seconds between two heartbeats of a running process-mode task.
    heartbeat_interval: float = 1.0
    #: A running task whose heartbeat is older than this many seconds is reported lost.
    lost_after: float = 10.0
    #: Seconds a stopping server waits for running tasks before it records them lost.
    grace_period: float = 10.0
    #: Send exception tracebacks to clients in faults (never in production).
    debug: bool = False
    #: Seconds a task may run before it is ended ``failed`` with ``TimeLimitExceeded``; None: no limit.
    time_limit: float | None = None
    #: Seconds a running task may go without calling ``update_progress`` before it is ended
    #: ``failed`` with ``TaskStalled``; None: no limit.
    max_silence: float | None = None
    #: How many times a task that raised, or whose worker was lost, is run again.
    retries: int = 0
    #: Seconds before the first retry; each later retry waits twice as long as the one before.
    retry_backoff: float = 1.0
    #: Seconds a task asked to stop (cancel, limits) has to return before it is ended by force.
    cancel_grace: float = 5.0
    #: Seconds an expired or dismissed task id still answers TaskExpired / TaskDismissed.
    tombstone_ttl: float = 86400.0
    #: Seconds every write of a task's life (running, progress, heartbeats, its end and
    #: result) is retried while the store is unreachable, before it is given up.
    store_retry_for: float = 60.0
    #: Tasks waiting for a slot in one server process beyond which a start is refused
    #: (QueueFull).
    max_queued: int = 10_000
    #: Bytes of a task's stored result (JSON) beyond which the task fails ResultTooLarge.
    max_result_bytes: int = 64 * 1024 * 1024
    #: Bytes of a request body beyond which the request is answered 413, unread.
    max_request_bytes: int = 10 * 1024 * 1024
    #: Seconds a ``<m>_wait`` call waits at most, whatever timeout it asks for.
    max_wait: float = 30.0
    #: ``<m>_wait`` calls one server process lets wait at once; beyond, a wait answers at
    #: once. None: a quarter of the WSGI server's threads where known (mod_wsgi), else 8.
    max_waiters: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(f"mode={self.mode!r} is unknown: use one of {MODES}")
        for name in ("threads", "processes", "max_queued", "max_result_bytes", "max_request_bytes"):
            if int(getattr(self, name)) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        if self.max_waiters is not None and int(self.max_waiters) < 1:
            raise ConfigurationError("max_waiters must be at least 1 (or None: from the server's threads)")
        for name in ("result_ttl", "progress_interval", "heartbeat_interval", "lost_after",
                     "cancel_grace", "tombstone_ttl", "store_retry_for", "max_wait"):
            if float(getattr(self, name)) <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        check_limits(self.time_limit, self.max_silence, self.retries, self.retry_backoff)
        if self.lost_after <= self.heartbeat_interval:
            raise ConfigurationError("lost_after must be longer than heartbeat_interval")
        if self.mode in REDIS_MODES and not self.redis_url:
            raise ConfigurationError(
                f"mode={self.mode!r} keeps task state in Redis: give redis_url='redis://host:6379/0' "
                "(or --redis-url, or LADON_TASKS_REDIS_URL)"
            )
        if not self.celery_queue or not self.celery_queue.strip():
            raise ConfigurationError("celery_queue must name a queue")
        if self.broker_url is not None and "://" not in self.broker_url:
            raise ConfigurationError(f"broker_url={self.broker_url!r}: give a Celery broker URL "
                                     "such as redis://host:6379/0 or amqp://host//")
        if self.redis_url is not None:
            validate_redis_url(self.redis_url)

    def with_options(self, **options: Any) -> TaskConfig:
        """A copy with ``options`` replaced; unknown names raise ConfigurationError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigurationError(f"unknown task option(s) {unknown}: known are {sorted(known)}")
        return replace(self, **{k: _coerce(k, v) for k, v in options.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> TaskConfig:
        """Build from ``LADON_TASKS_*`` variables, then apply keyword ``overrides``."""
        environ = os.environ if environ is None else environ
        options: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                options[f.name] = raw
        options.update({k: v for k, v in overrides.items() if v is not None})
        return cls().with_options(**options) if options else cls()


def check_limits(time_limit: Any, max_silence: Any, retries: Any, retry_backoff: Any,
                 where: str = "") -> None:
    """Raise ConfigurationError, naming the fix, for a bad lifecycle option."""
    for name, value in (("time_limit", time_limit), ("max_silence", max_silence)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise ConfigurationError(
                f"{where}{name}={value!r}: give a positive number of seconds, or None for no limit")
    if retries is not None and not (isinstance(retries, int) and not isinstance(retries, bool)
                                    and retries >= 0):
        raise ConfigurationError(f"{where}retries={retries!r}: give a whole number, 0 or more")
    if retry_backoff is not None and not (isinstance(retry_backoff, (int, float)) and retry_backoff >= 0):
        raise ConfigurationError(f"{where}retry_backoff={retry_backoff!r}: give 0 or more seconds")


#: Values that mean "no limit" for an optional number given as text (environment, flags).
_NO_LIMIT = ("", "none", "off", "no")


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(TaskConfig)}[name]
    if kind in ("float | None", "int | None"):
        if isinstance(value, str) and value.strip().lower() in _NO_LIMIT:
            return None
        kind = kind.split(" ")[0]
    try:
        if kind == "bool" and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes", "on")
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}={value!r} is not a valid {kind}") from None
    return value


def validate_redis_url(url: str) -> str:
    """Check that ``url`` is a Redis URL redis-py can open; return it unchanged."""
    scheme = urlparse(url).scheme
    if scheme not in _REDIS_SCHEMES:
        raise ConfigurationError(
            f"redis_url={url!r}: the scheme must be one of {', '.join(_REDIS_SCHEMES)}"
        )
    return url


def redis_url_for_host(host: str) -> str:
    """The URL of Ladon 1.0.7's ``tasktype={'redis_server': host}`` form (port 6379, db 0)."""
    if "://" in host:
        return validate_redis_url(host)
    return f"redis://{host}:6379/0"
