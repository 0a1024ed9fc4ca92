"""What ladon_tasks knows about one task method, and how ``tasktype=`` is read."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

from ladon_tasks.config import MODES, PROCESS_MODE, redis_url_for_host, validate_redis_url
from ladon_tasks.exceptions import ConfigurationError

_TASKTYPE_KEYS = {"enable", "mode", "redis_url", "redis_server", "memcache_server"}


@dataclass
class TaskMethodSpec:
    """One ``tasktype`` method: its name, declared rtype, mode, and the user's function."""

    name: str
    rtype: Any
    func: Callable[..., Any]
    lmi: Any
    mode: str | None = None
    redis_url: str | None = None

    @cached_property
    def takes_keywords(self) -> bool:
        """Whether the function takes ``**kw`` (if not, it is called without keywords)."""
        return inspect.getfullargspec(self.func).varkw is not None

    @cached_property
    def qualified_name(self) -> str:
        """``Service.method``, as stored in task records."""
        return f"{self.lmi.sinfo.servicename}.{self.name}"


def parse_tasktype(tasktype: Any) -> tuple[bool, str | None, str | None]:
    """Read a ``tasktype=`` option: ``(is_task, mode, redis_url)``.

    Accepted: ``True``/``False``; ``"thread"``/``"process"``; or a dict with ``enable``,
    ``mode``, ``redis_url`` and Ladon 1.0.7's ``redis_server`` (a host: process mode on
    ``redis://host:6379/0``).
    """
    if tasktype is None or tasktype is False:
        return False, None, None
    if tasktype is True:
        return True, None, None
    if isinstance(tasktype, str):
        if tasktype not in MODES:
            raise ConfigurationError(f"tasktype={tasktype!r}: use True, one of {MODES}, or a dict")
        return True, tasktype, None
    if not isinstance(tasktype, dict):
        raise ConfigurationError(f"tasktype={tasktype!r}: use True, one of {MODES}, or a dict")
    unknown = sorted(set(tasktype) - _TASKTYPE_KEYS)
    if unknown:
        raise ConfigurationError(f"tasktype has unknown key(s) {unknown}: known are {sorted(_TASKTYPE_KEYS)}")
    if "memcache_server" in tasktype:
        raise ConfigurationError(
            "tasktype={'memcache_server': ...} is not supported: ladon_tasks keeps shared task "
            "state in Redis; use {'redis_url': 'redis://host:6379/0'}"
        )
    if not tasktype.get("enable", True):
        return False, None, None
    mode = tasktype.get("mode")
    redis_url = tasktype.get("redis_url")
    if tasktype.get("redis_server"):
        redis_url = redis_url or redis_url_for_host(tasktype["redis_server"])
        mode = mode or PROCESS_MODE
    if mode is not None and mode not in MODES:
        raise ConfigurationError(f"tasktype mode={mode!r}: use one of {MODES}")
    if redis_url is not None:
        validate_redis_url(redis_url)
        mode = mode or PROCESS_MODE
    return True, mode, redis_url
