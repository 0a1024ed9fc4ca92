"""Import service modules so that their task methods are ladon_tasks methods."""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from types import ModuleType
from typing import Iterator

from ladon_tasks.config import REDIS_MODES, TaskConfig
from ladon_tasks.exceptions import ConfigurationError
from ladon_tasks.ladon_glue.spec import TaskMethodSpec

_swap_lock = threading.RLock()


@contextlib.contextmanager
def ladon_ladonize_is_ours() -> Iterator[None]:
    """While it lasts, ``from ladon.ladonizer import ladonize`` gives ladon_tasks' ladonize."""
    import ladon.ladonizer
    import ladon.ladonizer.decorator

    from ladon_tasks.ladon_glue.decorator import ladonize

    with _swap_lock:
        saved = ladon.ladonizer.ladonize, ladon.ladonizer.decorator.ladonize
        ladon.ladonizer.ladonize = ladon.ladonizer.decorator.ladonize = ladonize
        try:
            yield
        finally:
            ladon.ladonizer.ladonize, ladon.ladonizer.decorator.ladonize = saved


def import_service_modules(names: list[str], path_list: list[str] | None = None) -> list[ModuleType]:
    """Import ``names`` (after adding ``path_list`` to ``sys.path``) and adopt every
    task method Ladon registered on its own, so Ladon's built-in tasktype never runs."""
    from ladon_tasks.ladon_glue.adopt import adopt_ladon_task_methods

    for path in path_list or []:
        if path not in sys.path:
            sys.path.append(path)
    with ladon_ladonize_is_ours():
        modules = [importlib.import_module(name) for name in names]
    adopt_ladon_task_methods()
    return modules


def task_specs(module_names: list[str]) -> list[TaskMethodSpec]:
    """The task methods of the services that ``module_names`` define."""
    from ladon.ladonizer.collection import global_service_collection

    specs = []
    for sinfo in global_service_collection().services.values():
        if sinfo.modulename not in module_names:
            continue
        for lmi in sinfo.methods.values():
            spec = getattr(lmi, "_ladon_tasks_spec", None)
            if spec is not None and lmi._func_name == spec.name:
                specs.append(spec)
    return specs


def check_task_methods(module_names: list[str], config: TaskConfig) -> list[TaskMethodSpec]:
    """Fail at start-up, naming the fix, if a served task method cannot run as configured.

    Returns the task methods the modules hold (see :func:`task_specs`).
    """
    specs = task_specs(module_names)
    for spec in specs:
        mode = spec.mode or config.mode
        if mode in REDIS_MODES and not (spec.redis_url or config.redis_url):
            raise ConfigurationError(
                f"{spec.qualified_name} runs in {mode} mode, which keeps task state in Redis: "
                "give redis_url= to TaskWSGIApplication (--redis-url, LADON_TASKS_REDIS_URL) "
                "or a 'redis_url' in its tasktype option"
            )
    return specs
