"""``ladonize``: Ladon's decorator, with task methods run by ladon_tasks."""

from __future__ import annotations

from typing import Any, Callable

from ladon.ladonizer.decorator import ladonize as ladon_ladonize

from ladon_tasks.ladon_glue.endpoints import install_endpoints, register_endpoints
from ladon_tasks.ladon_glue.spec import TaskMethodSpec, parse_tasktype
from ladon_tasks.ladon_glue.types import TaskInfoResponse


class _TaskMethod:
    """Stands in the class body until the class exists; then puts the endpoints there."""

    def __init__(self, endpoints: tuple[Callable, ...], injector: Any) -> None:
        self.endpoints = endpoints
        self._ladon_method_info = injector._ladon_method_info
        self.__doc__ = injector.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        install_endpoints(owner, self.endpoints)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self.endpoints[0].__get__(instance, owner)


def ladonize(*arg_types: Any, rtype: Any = None, tasktype: Any = False, **options: Any) -> Callable:
    """Ladon's ``ladonize``, taking the same arguments.

    With ``tasktype`` (``True``, ``"thread"``, ``"process"``, or a dict such as
    ``{"mode": "process", "redis_url": "redis://...", "time_limit": 600, "retries": 2}``
    or Ladon's ``{"enable": True, "redis_server": "host"}``) a call returns a
    ``TaskInfoResponse`` at once, the method runs in the background, and
    ``<method>_progress``, ``<method>_result``, ``<method>_cancel`` and
    ``<method>_dismiss`` (each taking the ``task_id``) are added to the service. The
    option is checked here, when the decorator is applied.
    """
    task_options = parse_tasktype(tasktype)
    if task_options is None:
        return ladon_ladonize(*arg_types, rtype=rtype, **options)

    def decorator(func: Callable) -> _TaskMethod:
        injector = ladon_ladonize(*arg_types, rtype=TaskInfoResponse, **options)(func)
        lmi = injector._ladon_method_info
        if lmi is None:
            raise TypeError(f"{func.__qualname__}: task methods must be defined in a class body")
        # The start takes Ladon's keywords even if ``func`` does not (it passes them on only
        # if ``func`` takes them): they say which application's engine serves the request.
        lmi._has_keywords = True
        spec = TaskMethodSpec(name=lmi._func_name, rtype=rtype, func=func, lmi=lmi,
                              options=task_options)
        return _TaskMethod(register_endpoints(spec), injector)

    return decorator
