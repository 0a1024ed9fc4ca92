"""A task method's own options, laid over the application's TaskConfig.

:class:`TaskOptions` is what a method declares (``tasktype={...}``): every field None
means "as the application says". :meth:`TaskOptions.policy` resolves it against a
:class:`~ladon_tasks.config.TaskConfig` into the :class:`TaskPolicy` that a task runs
under: the limits its executor enforces and the retries its runner makes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ladon_tasks.config import MODES, TaskConfig, check_limits, validate_redis_url
from ladon_tasks.exceptions import ConfigurationError
from ladon_tasks.task import TaskState

#: The ends after which a task runs again while it has attempts left.
_RETRIED = frozenset({TaskState.FAILED, TaskState.LOST})


@dataclass(frozen=True)
class TaskPolicy:
    """How one task runs: its limits and its retries, all resolved."""

    time_limit: float | None = None
    max_silence: float | None = None
    cancel_grace: float = 5.0
    retries: int = 0
    retry_backoff: float = 1.0

    @property
    def max_attempts(self) -> int:
        """The first attempt and its retries."""
        return self.retries + 1

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before running again after attempt ``attempt`` (1-based) ended."""
        return self.retry_backoff * 2 ** (attempt - 1)

    def next_attempt(self, state: TaskState, attempt: int, error: str) -> tuple[float, str] | None:
        """``(delay, note)`` if attempt ``attempt``, ended ``state`` with ``error``, is to
        run again: it failed or was lost (a cancel never runs again), and attempts remain.
        ``note`` says why, for the record's ``error`` while the task waits."""
        if state not in _RETRIED or attempt >= self.max_attempts:
            return None
        delay = self.retry_delay(attempt)
        return delay, f"attempt {attempt} of {self.max_attempts} failed, next in {delay:g} s: {error}"

    @property
    def watched(self) -> bool:
        """True if a watchdog must time this task (a limit is set)."""
        return self.time_limit is not None or self.max_silence is not None


#: Fields of TaskOptions that resolve against the TaskConfig field of the same name.
_POLICY_FIELDS = tuple(f.name for f in fields(TaskPolicy))


@dataclass(frozen=True)
class TaskOptions:
    """A task method's options; None means the application's value."""

    mode: str | None = None
    redis_url: str | None = None
    time_limit: float | None = None
    max_silence: float | None = None
    cancel_grace: float | None = None
    retries: int | None = None
    retry_backoff: float | None = None
    #: A start with the same arguments and caller as a task still queued or running
    #: answers that task's id instead of starting another.
    unique: bool | None = None

    def __post_init__(self) -> None:
        where = "tasktype "
        if self.unique is not None and not isinstance(self.unique, bool):
            raise ConfigurationError(f"{where}unique={self.unique!r}: give True or False")
        if self.mode is not None and self.mode not in MODES:
            raise ConfigurationError(f"{where}mode={self.mode!r}: use one of {MODES}")
        if self.redis_url is not None:
            validate_redis_url(self.redis_url)
        check_limits(self.time_limit, self.max_silence, self.retries, self.retry_backoff, where)
        if self.cancel_grace is not None and not (
                isinstance(self.cancel_grace, (int, float)) and self.cancel_grace > 0):
            raise ConfigurationError(f"{where}cancel_grace={self.cancel_grace!r}: give a positive "
                                     "number of seconds")

    def policy(self, config: TaskConfig) -> TaskPolicy:
        """This method's policy: its own options, else the application's."""
        values: dict[str, Any] = {}
        for name in _POLICY_FIELDS:
            own = getattr(self, name)
            values[name] = own if own is not None else getattr(config, name)
        return TaskPolicy(**values)


#: The keys of a ``tasktype={...}`` dict that are TaskOptions fields.
OPTION_KEYS = frozenset(f.name for f in fields(TaskOptions))
