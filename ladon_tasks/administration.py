"""What an administrator does to tasks, whoever started them: list, look up, cancel,
retry; pause and resume methods; read the metrics.

It knows no Ladon or HTTP. An application's task methods may run in different modes and
Redis databases (each a *route*, ``(mode, redis_url)`` as a method declares it, None for
the application's own); an administrator sees the tasks of every route at once.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from ladon_tasks.engine import TaskEngine
from ladon_tasks.exceptions import TaskDismissed, TaskExpired, TaskNotFound
from ladon_tasks.ids import validate_task_id
from ladon_tasks.listing import TaskPage, TaskQuery, merged
from ladon_tasks.metrics import MethodMetrics, merge
from ladon_tasks.stores.base import TaskStore
from ladon_tasks.task import ALL_METHODS, ANY_CALLER, TaskRecord

#: A task method's mode and Redis URL as it declares them (None: the application's).
Route = tuple[str | None, str | None]


class Administration:
    """The tasks of every route an application serves (``routes``, besides its own),
    seen as an administrator sees them."""

    def __init__(self, engine: TaskEngine, routes: Sequence[Route], methods: Sequence[str] = ()) -> None:
        self.engine = engine
        self._routes = [(None, None), *routes]
        #: The task methods served (``Service.method``), sorted.
        self.methods = sorted(methods)

    def routes(self) -> list[Route]:
        """Each route once, by the store it ends at (the application's first). Found at
        each use: a store is made at its first use, and making one may start its executor."""
        found: list[Route] = []
        stores: list[TaskStore] = []
        for route in self._routes:
            store = self.engine.store(*route)
            if all(store is not known for known in stores):
                stores.append(store)
                found.append(route)
        return found

    def _places(self) -> list[TaskStore]:
        """The stores of every route, each place their data lives once: a process-mode and
        a celery-mode route on one Redis database share their counts and pauses."""
        places: dict[Any, TaskStore] = {}
        for route in self.routes():
            store = self.engine.store(*route)
            places.setdefault(store.location(), store)
        return list(places.values())

    def list_tasks(self, query: TaskQuery) -> TaskPage:
        """One page of the tasks matching ``query``, newest first, across every route."""
        return merged([self.engine.store(*route).list_tasks(query) for route in self.routes()],
                      query.limit)

    def find(self, task_id: str) -> tuple[TaskRecord, Route]:
        """The task's record and the route that holds it. Raises InvalidTaskId, or the
        most telling TaskNotFound of all routes (expired or dismissed before unknown)."""
        task_id = validate_task_id(task_id)
        missing: TaskNotFound | None = None
        for route in self.routes():
            try:
                return self.engine.status(task_id, *route, caller=ANY_CALLER), route
            except (TaskExpired, TaskDismissed) as error:
                missing = error
            except TaskNotFound as error:
                missing = missing or error
        assert missing is not None  # routes() holds the application's own at least
        raise missing

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel the task as its caller could (see :meth:`TaskEngine.cancel`); the record
        as it is now."""
        _, route = self.find(task_id)
        return self.engine.cancel(task_id, *route, caller=ANY_CALLER)

    def retry(self, task_id: str) -> TaskRecord:
        """Run a failed, lost or cancelled task again (see :meth:`TaskEngine.retry`)."""
        _, route = self.find(task_id)
        return self.engine.retry(task_id, *route, caller=ANY_CALLER)

    def pause(self, method: str | None = None) -> dict[str, float]:
        """Let no queued task of ``method`` (None: of any method) start, in every store,
        until resumed; the pauses as they are now."""
        now = time.time()
        for store in self._places():
            store.pause(method or ALL_METHODS, now)
        return self.paused()

    def resume(self, method: str | None = None) -> dict[str, float]:
        """End the pause of ``method`` (None: every pause); the pauses as they are now."""
        for store in self._places():
            store.resume(method)
        return self.paused()

    def paused(self) -> dict[str, float]:
        """Every pause of every store: method (or ALL_METHODS) -> since when (the earliest)."""
        found: dict[str, float] = {}
        for store in self._places():
            for method, since in store.paused().items():
                found[method] = min(since, found.get(method, since))
        return dict(sorted(found.items()))

    def metrics(self) -> dict[str, MethodMetrics]:
        """What the tasks of each method did, in every store (see :mod:`ladon_tasks.metrics`)."""
        return merge(store.metrics() for store in self._places())

    def durations(self, method: str) -> list[float]:
        """The latest successful durations of ``method``, in every store."""
        return [seconds for store in self._places() for seconds in store.durations(method)]
