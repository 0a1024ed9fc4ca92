"""What the engine asks of an executor."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ladon_tasks.options import TaskPolicy
from ladon_tasks.task import TaskRecord


class Executor(ABC):
    """Runs submitted tasks on a bounded pool; tasks beyond the pool wait queued."""

    #: Who holds this executor's queued tasks (host, process), stored in each record.
    owner: str = ""

    def prepare(self) -> None:
        """Make the pool ready; called before every task is recorded, so keep it cheap."""

    def admit(self) -> None:
        """Reserve room for one new task, or raise QueueFull; the next submit takes it."""

    def unadmit(self) -> None:
        """Give back a reservation whose task could not be recorded."""

    def job_to_store(self, job: Any, policy: TaskPolicy) -> Any:
        """What the store keeps of ``job`` with the task's record (None: nothing), for
        executors that run a task in whichever process takes it."""
        return None

    def runnable(self, stored: Any) -> tuple[Any, TaskPolicy] | None:
        """The job and policy that run again a task whose record keeps ``stored`` (what
        :meth:`job_to_store` made of its job); None if it cannot run again."""
        return None

    def abandon(self, task_id: str, error: str) -> None:
        """Record ``task_id`` lost with ``error`` once the store takes it: its creation
        failed, but may have been written with its reply lost."""

    @abstractmethod
    def submit(self, task_id: str, job: Any, policy: TaskPolicy | None = None,
               record: TaskRecord | None = None, attempt: int = 1) -> None:
        """Queue ``job`` for the already recorded task ``task_id``, to run under ``policy``
        as its attempt ``attempt``.

        ``record`` is the record as it was created: an executor whose store may lose it
        (Redis restarted without its data) writes it again from this copy."""

    def cancel_running(self, task_id: str) -> None:
        """A cancel was recorded for ``task_id``: if it runs here, ask it to stop now."""

    @abstractmethod
    def shutdown(self, grace_period: float) -> list[str]:
        """Stop taking tasks, wait up to ``grace_period`` s; return ids of unfinished tasks."""
