"""Celery mode for existing Celery deployments: ``celery -A ladon_tasks.worker_app worker``.

Two ways in:

* ``celery -A ladon_tasks.worker_app worker --pool prefork --queues ladon_tasks`` runs a
  worker on an app made from the environment: ``LADON_TASKS_SERVICES`` (service modules,
  comma-separated), ``LADON_TASKS_PATH`` (directories to import them from, separated by
  ``os.pathsep``) and the usual ``LADON_TASKS_*`` options (``REDIS_URL``, ``BROKER_URL``,
  ``CELERY_QUEUE``, ``RESULT_TTL``...). The app is made when Celery first asks for it.
* ``install(app, services, paths)`` declares ladon_tasks' task on a Celery app of your
  own, in the module your workers already load with ``celery -A``.
"""

from __future__ import annotations

import os
from typing import Any

from ladon_tasks.config import CELERY_MODE, TaskConfig
from ladon_tasks.exceptions import ConfigurationError

__all__ = ["install", "make_worker_app"]


def install(app: Any, services: list[str], paths: list[str] | None = None,
            config: TaskConfig | None = None) -> Any:
    """Import the service modules ``services`` and declare ``ladon_tasks.run`` on the
    Celery ``app``, running their task methods under ``config`` (default: from the
    ``LADON_TASKS_*`` environment; it needs ``redis_url``). Returns the Celery task.

    Have the worker consume ``config.celery_queue`` (``ladon_tasks`` unless set), with the
    prefork pool; ``worker_prefetch_multiplier=1`` keeps a task from waiting behind a long
    one in a busy process's prefetch."""
    from ladon_tasks.executors import celery_worker
    from ladon_tasks.ladon_glue.services import check_task_methods, import_service_modules

    config = config or TaskConfig.from_env(mode=CELERY_MODE)
    if not config.redis_url:
        raise ConfigurationError("ladon_tasks workers keep task state in Redis: give redis_url "
                                 "(LADON_TASKS_REDIS_URL)")
    import_service_modules(services, paths)
    check_task_methods(services, config)
    return celery_worker.register(app, config)


def make_worker_app(environ: dict[str, str] | None = None) -> Any:
    """A Celery app with ladon_tasks' task, from ``LADON_TASKS_*`` variables."""
    from ladon_tasks.executors.celery_app import make_app

    environ = dict(os.environ if environ is None else environ)
    services = [name.strip() for name in environ.get("LADON_TASKS_SERVICES", "").split(",") if name.strip()]
    if not services:
        raise ConfigurationError("set LADON_TASKS_SERVICES to the service modules to run "
                                 "(comma-separated), and LADON_TASKS_PATH to where they are")
    paths = [path for path in environ.get("LADON_TASKS_PATH", "").split(os.pathsep) if path]
    config = TaskConfig.from_env(environ, mode=CELERY_MODE)
    app = make_app(config)
    install(app, services, paths, config)
    return app


_app: Any = None


def __getattr__(name: str) -> Any:
    # ``celery -A ladon_tasks.worker_app`` reads ``app``: made then, not at import.
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = make_worker_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
