"""What ladon_tasks knows about one task method, and how ``tasktype=`` is read."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from ladon_tasks.config import MODES, PROCESS_MODE, TaskConfig, redis_url_for_host
from ladon_tasks.exceptions import ConfigurationError
from ladon_tasks.options import OPTION_KEYS, TaskOptions, TaskPolicy

#: Ladon 1.0.7's own keys, beside ours.
_LADON_KEYS = {"enable", "redis_server", "memcache_server"}
_TASKTYPE_KEYS = OPTION_KEYS | _LADON_KEYS


@dataclass
class TaskMethodSpec:
    """One ``tasktype`` method: its name, declared rtype, options, and the user's function."""

    name: str
    rtype: Any
    func: Callable[..., Any]
    lmi: Any
    options: TaskOptions = field(default_factory=TaskOptions)

    @property
    def mode(self) -> str | None:
        return self.options.mode

    @property
    def redis_url(self) -> str | None:
        return self.options.redis_url

    @cached_property
    def takes_keywords(self) -> bool:
        """Whether the function takes ``**kw`` (if not, it is called without keywords)."""
        return inspect.getfullargspec(self.func).varkw is not None

    @cached_property
    def qualified_name(self) -> str:
        """``Service.method``, as stored in task records."""
        return f"{self.lmi.sinfo.servicename}.{self.name}"

    def policy(self, config: TaskConfig) -> TaskPolicy:
        """This method's limits and retries over the application's ``config`` (kept per
        config: an application's config never changes)."""
        cached = self.__dict__.get("_policy")
        if cached is None or cached[0] is not config:
            cached = (config, self.options.policy(config))
            self.__dict__["_policy"] = cached
        return cached[1]


def parse_tasktype(tasktype: Any) -> TaskOptions | None:
    """Read a ``tasktype=`` option: the method's TaskOptions, or None for a plain method.

    Accepted: ``True``/``False``; ``"thread"``/``"process"``; or a dict with ``enable``,
    ``mode``, ``redis_url``, ``time_limit``, ``max_silence``, ``retries``,
    ``retry_backoff``, ``cancel_grace`` and Ladon 1.0.7's ``redis_server`` (a host:
    process mode on ``redis://host:6379/0``). Bad values raise ConfigurationError.
    """
    if tasktype is None or tasktype is False:
        return None
    if tasktype is True:
        return TaskOptions()
    if isinstance(tasktype, str):
        if tasktype not in MODES:
            raise ConfigurationError(f"tasktype={tasktype!r}: use True, one of {MODES}, or a dict")
        return TaskOptions(mode=tasktype)
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
        return None
    options = {key: value for key, value in tasktype.items() if key in OPTION_KEYS}
    if tasktype.get("redis_server"):
        options["redis_url"] = options.get("redis_url") or redis_url_for_host(tasktype["redis_server"])
    if options.get("redis_url") is not None:
        options["mode"] = options.get("mode") or PROCESS_MODE
    return TaskOptions(**options)
