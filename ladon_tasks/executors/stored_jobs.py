"""A job as a task's record keeps it, so that any process can run the task (again)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ladon_tasks.options import TaskPolicy


def stored_job(job: dict, policy: TaskPolicy) -> dict:
    """The job as the record keeps it: the worker job and the policy it runs under."""
    return {**job, "policy": asdict(policy)}


def policy_of(job: dict | None) -> TaskPolicy | None:
    """The policy a stored job runs under; None for a record without a job."""
    if not job or "policy" not in job:
        return None
    return TaskPolicy(**job["policy"])


def runnable_stored(stored: Any) -> tuple[dict, TaskPolicy] | None:
    """A stored job and its policy, to run it again; None for a record without one."""
    policy = policy_of(stored)
    return None if policy is None else (stored, policy)


@dataclass(frozen=True)
class KeptCall:
    """Thread mode: a task's call kept with its record (it kept its arguments), to run
    again if an administrator retries it."""

    call: Any
    policy: TaskPolicy
