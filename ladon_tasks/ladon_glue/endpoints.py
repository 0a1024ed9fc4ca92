"""The three endpoints of a task method: start, ``<m>_progress`` and ``<m>_result``."""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable

from ladon.compat import PORTABLE_STRING
from ladon.ladonizer.collection import global_service_collection
from ladon.types import validate_type

from ladon_tasks.config import PROCESS_MODE, THREAD_MODE, TaskConfig
from ladon_tasks.constants import ENVIRON_DEBUG_KEY, ENVIRON_ENGINE_KEY, UPDATE_PROGRESS_KW
from ladon_tasks.engine import TaskEngine
from ladon_tasks.exceptions import LadonTasksError, TaskNotFound
from ladon_tasks.ladon_glue import codec
from ladon_tasks.ladon_glue.faults import to_fault
from ladon_tasks.ladon_glue.spec import TaskMethodSpec, parse_tasktype
from ladon_tasks.ladon_glue.types import TaskInfoResponse, TaskProgressResponse

log = logging.getLogger("ladon_tasks")

_default_engine: TaskEngine | None = None


def engine_for(kw: dict) -> TaskEngine:
    """The engine of the application serving this request.

    Outside TaskWSGIApplication (a plain LadonWSGIApplication serving a module that uses
    ``ladon_tasks.ladonize``) one engine per process is made from the environment.
    """
    engine = kw.get(ENVIRON_ENGINE_KEY)
    if engine is not None:
        return engine
    global _default_engine
    if _default_engine is None:
        _default_engine = TaskEngine(TaskConfig.from_env())
    return _default_engine


#: What TaskWSGIApplication puts into the environ for itself; not for tasks.
_APPLICATION_KEYS = (ENVIRON_ENGINE_KEY, ENVIRON_DEBUG_KEY)


def task_keywords(spec: TaskMethodSpec, kw: dict) -> dict:
    """The keywords a task gets: those of a plain call, with its declared rtype."""
    task_kw = dict(kw)
    for key in _APPLICATION_KEYS:
        task_kw.pop(key, None)
    task_kw["LADON_RTYPE"] = spec.rtype
    return task_kw


def make_call(spec: TaskMethodSpec, instance: Any, args: tuple, kw: dict) -> Callable[[Callable], Any]:
    """``call(update_progress)`` running the user's method as Ladon's docs promise."""
    func = spec.func
    if not spec.takes_keywords:
        return lambda update_progress: func(instance, *args)

    def call(update_progress: Callable[[float], None]) -> Any:
        return func(instance, *args, **kw, **{UPDATE_PROGRESS_KW: update_progress})

    return call


def check_result(spec: TaskMethodSpec, value: Any) -> Any:
    """Fail the task, like a plain call, if ``value`` does not match the declared rtype."""
    if not validate_type(spec.rtype, value):
        raise TypeError(
            f"{spec.qualified_name} returned {type(value).__name__}, "
            f"but its rtype is {getattr(spec.rtype, '__name__', spec.rtype)}"
        )
    return value


def _checked(spec: TaskMethodSpec, call: Callable[[Callable], Any]) -> Callable[[Callable], Any]:
    return lambda update_progress: check_result(spec, call(update_progress))


def _mode(spec: TaskMethodSpec, engine: TaskEngine) -> str:
    return spec.mode or engine.config.mode


def _not_found_hint(spec: TaskMethodSpec, engine: TaskEngine, kw: dict, error: TaskNotFound) -> TaskNotFound:
    """Say why a thread-mode task may be invisible when the server runs several processes."""
    if _mode(spec, engine) == THREAD_MODE and kw.get("wsgi.multiprocess"):
        log.warning("thread-mode task looked up in a multi-process server; use multiprocessing mode")
        return TaskNotFound(
            f"{error}. This server runs several processes (wsgi.multiprocess) and thread mode "
            "keeps a task in the memory of the process that started it, so this request may "
            "have reached another process: use multiprocessing mode (mode='process' with a "
            "redis_url) or a single server process"
        )
    return error


def _ask(spec: TaskMethodSpec, engine: TaskEngine, kw: dict, question: Callable[[], Any]) -> Any:
    """Ask the engine about a task; its errors become the faults clients see."""
    try:
        return question()
    except TaskNotFound as error:
        raise to_fault(_not_found_hint(spec, engine, kw, error)) from None
    except LadonTasksError as error:
        raise to_fault(error) from None


def make_endpoints(spec: TaskMethodSpec) -> tuple[Callable, Callable, Callable]:
    """The start, progress and result functions to put on the service class."""

    def start(self: Any, *args: Any, **kw: Any) -> TaskInfoResponse:
        engine = engine_for(kw)
        try:
            task_kw = task_keywords(spec, kw)
            if _mode(spec, engine) == PROCESS_MODE:
                from ladon_tasks.ladon_glue.jobs import build_job

                job: Any = build_job(spec, args, task_kw)
            else:
                job = _checked(spec, make_call(spec, self, args, task_kw))
            task_id = engine.start(spec.qualified_name, job, spec.mode, spec.redis_url)
        except LadonTasksError as error:
            log.warning("task %s not started: %s", spec.qualified_name, error)
            raise to_fault(error) from None
        response = TaskInfoResponse()
        response.task_id = task_id
        return response

    def progress(self: Any, task_id: str, **kw: Any) -> TaskProgressResponse:
        engine = engine_for(kw)
        record = _ask(spec, engine, kw, lambda: engine.status(task_id, spec.mode, spec.redis_url))
        response = TaskProgressResponse()
        response.task_id = record.task_id
        response.state = record.state.value
        response.done = record.state.done
        response.progress = float(record.progress)
        response.duration = float(record.duration)
        response.starttime = float(record.started)
        response.createtime = float(record.created)
        response.endtime = float(record.finished)
        response.error = record.error
        return response

    def result(self: Any, task_id: str, **kw: Any) -> Any:
        engine = engine_for(kw)
        value = _ask(spec, engine, kw, lambda: engine.result(task_id, spec.mode, spec.redis_url))
        if engine.store(spec.mode, spec.redis_url).needs_encoded_results:
            return codec.decode(value, spec.rtype, spec.lmi._encoding)
        return value

    name = spec.name
    start.__name__ = name
    start.__doc__ = spec.func.__doc__
    progress.__name__ = f"{name}_progress"
    progress.__doc__ = (
        f"Where a task started by {name} is.\n\n"
        f"@param task_id: the task_id that {name} returned\n"
        "@rtype: the task's state, progress, duration and times"
    )
    result.__name__ = f"{name}_result"
    result.__doc__ = (
        f"The result of a task started by {name}, once its state is 'succeeded'.\n\n"
        f"@param task_id: the task_id that {name} returned\n"
        f"@rtype: what {name} returned"
    )
    return start, progress, result


def register_endpoints(spec: TaskMethodSpec) -> tuple[Callable, Callable, Callable]:
    """Declare ``<m>_progress`` and ``<m>_result`` in the service, for every interface."""
    start, progress, result = make_endpoints(spec)
    sinfo = spec.lmi.sinfo
    sinfo.add_method(progress, PORTABLE_STRING, rtype=TaskProgressResponse,
                     override_method_name=progress.__name__)
    sinfo.add_method(result, PORTABLE_STRING, rtype=spec.rtype, override_method_name=result.__name__)
    spec.lmi._ladon_tasks_spec = spec
    return start, progress, result


def install_endpoints(cls: type, endpoints: tuple[Callable, Callable, Callable]) -> None:
    """Put the three endpoint functions on the service class."""
    for function in endpoints:
        setattr(cls, function.__name__, function)


def adopt_ladon_task_methods() -> int:
    """Take over every method Ladon's own ``ladonize(tasktype=...)`` registered.

    Returns how many were adopted. Each becomes a ladon_tasks task method, and Ladon's
    built-in tasktype, which would act on ``_task_rtype``, never sees it.
    """
    adopted = 0
    for sinfo in list(global_service_collection().services.values()):
        for lmi in list(sinfo.methods.values()):
            if getattr(lmi, "_task_rtype", None) is None or hasattr(lmi, "_ladon_tasks_spec"):
                continue
            legacy = {"redis_server": lmi._task_redis_server} if getattr(
                lmi, "_task_redis_server", None) else True
            _, mode, redis_url = parse_tasktype(legacy)
            spec = TaskMethodSpec(name=lmi._func_name, rtype=lmi._task_rtype, func=lmi._real_method,
                                  lmi=lmi, mode=mode, redis_url=redis_url)
            _take_over_method_info(lmi)
            cls = getattr(sys.modules[sinfo.modulename], sinfo.servicename)
            install_endpoints(cls, register_endpoints(spec))
            adopted += 1
    return adopted


def _take_over_method_info(lmi: Any) -> None:
    """Turn Ladon's task method info into ours: our TaskInfoResponse, no built-in markers."""
    from ladon.types.tasktype import TaskInfoResponse as LadonTaskInfoResponse

    del lmi._task_rtype
    for name in ("_task_redis_server", "_task_memcache_server"):
        if hasattr(lmi, name):
            delattr(lmi, name)
    lmi._tasktype = False
    lmi._rtype = TaskInfoResponse
    manager = lmi.sinfo.typemanager
    manager.analyze_param(TaskInfoResponse)
    still_used = any(getattr(m, "_rtype", None) is LadonTaskInfoResponse for m in lmi.sinfo.methods.values())
    if not still_used and LadonTaskInfoResponse in manager.type_dict:
        entry = manager.type_dict.pop(LadonTaskInfoResponse)
        manager.type_order = [t for t in manager.type_order if t is not entry]
