"""Executors run queued tasks: a pool of threads or a pool of worker processes."""

from ladon_tasks.executors.base import Executor
from ladon_tasks.executors.thread import ThreadExecutor

__all__ = ["Executor", "ThreadExecutor"]
