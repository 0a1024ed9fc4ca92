"""The endpoints of a task method: the start, and one row of :data:`ENDPOINTS` each for
``<m>_progress``, ``<m>_result``, ``<m>_cancel`` and ``<m>_dismiss``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from ladon.compat import PORTABLE_STRING
from ladon.types import validate_type

from ladon_tasks.config import REDIS_MODES, THREAD_MODE, TaskConfig
from ladon_tasks.constants import (
    ENVIRON_DEBUG_KEY,
    ENVIRON_ENGINE_KEY,
    ENVIRON_IDENTITY_KEY,
    KEPT_ARGUMENTS_BYTES,
)
from ladon_tasks.engine import TaskEngine
from ladon_tasks.estimate import Estimate
from ladon_tasks.exceptions import LadonTasksError, TaskNotFound
from ladon_tasks.ladon_glue import codec
from ladon_tasks.ladon_glue.calls import TaskCall
from ladon_tasks.ladon_glue.faults import to_fault
from ladon_tasks.ladon_glue.jobs import build_job, encoded_arguments, unique_key
from ladon_tasks.ladon_glue.quick_calls import offer_quick_answer
from ladon_tasks.ladon_glue.spec import TaskMethodSpec
from ladon_tasks.ladon_glue.types import TaskInfoResponse, TaskProgressResponse
from ladon_tasks.task import TaskRecord, TaskState

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
_APPLICATION_KEYS = (ENVIRON_ENGINE_KEY, ENVIRON_DEBUG_KEY, ENVIRON_IDENTITY_KEY)


def caller_of(kw: dict) -> str | None:
    """The identity of the request's caller: what TaskWSGIApplication's ``identify``
    said; under a plain LadonWSGIApplication, ``REMOTE_USER``."""
    if ENVIRON_IDENTITY_KEY in kw:
        return kw[ENVIRON_IDENTITY_KEY]
    return kw.get("REMOTE_USER") or None


def task_keywords(spec: TaskMethodSpec, kw: dict) -> dict:
    """The keywords a task gets: those of a plain call, with its declared rtype."""
    task_kw = dict(kw)
    for key in _APPLICATION_KEYS:
        task_kw.pop(key, None)
    task_kw["LADON_RTYPE"] = spec.rtype
    return task_kw


def make_call(spec: TaskMethodSpec, instance: Any, args: tuple, kw: dict,
              checked: bool = False, keeps_arguments: bool = False) -> TaskCall:
    """``call(update_progress)`` running the user's method as Ladon's docs promise (its
    result checked against the rtype if ``checked``); ``call.last_call`` hands the
    arguments over to the method and keeps none, unless ``keeps_arguments`` (see
    :mod:`~ladon_tasks.ladon_glue.calls`)."""
    check = partial(check_result, spec) if checked else None
    return TaskCall(spec.func, instance, args, kw if spec.takes_keywords else None, check,
                    keeps_arguments)


def keeps_arguments(kw: dict) -> bool:
    """Whether a thread-mode task keeps its arguments to its end, so that it can be
    retried: those of a request body of at most KEPT_ARGUMENTS_BYTES (larger ones go to
    the task's last attempt, and are freed once the task drops them)."""
    if "chunked" in str(kw.get("HTTP_TRANSFER_ENCODING", "")).lower():
        return False
    length = str(kw.get("CONTENT_LENGTH") or "0")
    return length.isdigit() and int(length) <= KEPT_ARGUMENTS_BYTES


def check_result(spec: TaskMethodSpec, value: Any) -> Any:
    """Fail the task, like a plain call, if ``value`` does not match the declared rtype."""
    if not validate_type(spec.rtype, value):
        raise TypeError(
            f"{spec.qualified_name} returned {type(value).__name__}, "
            f"but its rtype is {getattr(spec.rtype, '__name__', spec.rtype)}"
        )
    return value


def _mode(spec: TaskMethodSpec, engine: TaskEngine) -> str:
    return spec.mode or engine.config.mode


def _not_found_hint(spec: TaskMethodSpec, engine: TaskEngine, kw: dict, error: TaskNotFound) -> TaskNotFound:
    """Say why a thread-mode task may be invisible when the server runs several processes."""
    if type(error) is TaskNotFound and _mode(spec, engine) == THREAD_MODE and kw.get("wsgi.multiprocess"):
        log.warning("thread-mode task looked up in a multi-process server; use multiprocessing mode")
        return TaskNotFound(
            f"{error}. This server runs several processes (wsgi.multiprocess) and thread mode "
            "keeps a task in the memory of the process that started it, so this request may "
            "have reached another process: use multiprocessing mode (mode='process' with a "
            "redis_url) or a single server process"
        )
    return error


#: The answer's ``state`` for each state (an enum's ``.value`` is a descriptor call).
_STATE_NAMES = {state: state.value for state in TaskState}


def progress_response(record: TaskRecord, estimate: Estimate) -> TaskProgressResponse:
    """The TaskProgressResponse that tells where ``record``'s task is."""
    state = record.state
    done = state.done
    if done:  # nothing of it moves any more
        silent_for, health, eta, poll_after = 0.0, "", 0.0, estimate.poll_after
    else:
        now = time.time()
        silent_for, health = float(record.silent_for(now)), record.health(now)
        eta, poll_after = round(estimate.eta, 3), round(estimate.poll_after, 3)
    return TaskProgressResponse.of({
        "task_id": record.task_id,
        "state": _STATE_NAMES[state],
        "done": done,
        "progress": float(record.progress),
        "duration": float(record.duration),
        "starttime": float(record.started),
        "createtime": float(record.created),
        "endtime": float(record.finished),
        "error": record.error,
        "attempt": int(record.attempt),
        "cancel_requested": bool(record.cancel_requested),
        "silent_for": silent_for,
        "health": health,
        "message": record.message,
        "eta": eta,
        "expected_duration": round(estimate.expected_duration, 3),
        "poll_after": poll_after,
    })


def _decoded_result(spec: TaskMethodSpec, engine: TaskEngine, value: Any) -> Any:
    if engine.store(spec.mode, spec.redis_url).needs_encoded_results:
        return codec.decode(value, spec.rtype, spec.lmi._encoding)
    return value


@dataclass(frozen=True)
class Endpoint:
    """One ``<m>_<suffix>(task_id)`` endpoint: what it asks the engine, how it answers."""

    suffix: str
    #: ``TaskEngine`` method called as ``method(task_id, mode, redis_url)``.
    engine_method: str
    #: The first line of its documentation; ``{name}`` is the task method's name.
    summary: str
    #: What it answers, for its documentation.
    returns: str
    #: True: it answers the method's own rtype (decoded); else a TaskProgressResponse.
    answers_result: bool = False
    #: True: it takes a ``timeout`` too, and waits (``<m>_wait``).
    waits: bool = False

    def rtype(self, spec: TaskMethodSpec) -> Any:
        return spec.rtype if self.answers_result else TaskProgressResponse

    def arg_types(self) -> tuple:
        """The Ladon types of its parameters."""
        return (PORTABLE_STRING, float) if self.waits else (PORTABLE_STRING,)

    def make(self, spec: TaskMethodSpec) -> Callable:
        """The endpoint function for the task method ``spec``."""
        engine_method = self.engine_method
        answers_result = self.answers_result

        def answer(task_id: str, kw: dict, *more: Any) -> Any:
            engine = kw.get(ENVIRON_ENGINE_KEY) or engine_for(kw)
            mode, redis_url = spec.mode, spec.redis_url
            try:
                found = getattr(engine, engine_method)(task_id, *more, mode, redis_url,
                                                       caller=caller_of(kw))
            except TaskNotFound as error:
                raise to_fault(_not_found_hint(spec, engine, kw, error)) from None
            except LadonTasksError as error:
                raise to_fault(error) from None
            if answers_result:
                return _decoded_result(spec, engine, found)
            return progress_response(found, engine.estimate(found, mode, redis_url))

        # Ladon reads the parameter names: ``self``, ``task_id`` and ``timeout`` are what
        # clients see.
        if self.waits:
            def endpoint(self: Any, task_id: str, timeout: float, **kw: Any) -> Any:
                return answer(task_id, kw, timeout)
        else:
            def endpoint(self: Any, task_id: str, **kw: Any) -> Any:  # type: ignore[misc]
                return answer(task_id, kw)

        if not self.waits:
            endpoint.quick_answer = answer  # type: ignore[attr-defined]
        endpoint.__name__ = f"{spec.name}_{self.suffix}"
        timeout_doc = ("@param timeout: seconds to wait at most (the server may wait less: "
                       "max_wait)\n") if self.waits else ""
        endpoint.__doc__ = (
            f"{self.summary.format(name=spec.name)}\n\n"
            f"@param task_id: the task_id that {spec.name} returned\n{timeout_doc}"
            f"@rtype: {self.returns.format(name=spec.name)}"
        )
        return endpoint


#: Every endpoint a task method gets besides its start, in every interface.
ENDPOINTS = (
    Endpoint("progress", "status", "Where a task started by {name} is.",
             "the task's state, progress, duration and times"),
    Endpoint("result", "result", "The result of a task started by {name}, once its state is 'succeeded'.",
             "what {name} returned", answers_result=True),
    Endpoint("cancel", "cancel",
             "Cancel a task started by {name}: a queued one never runs, a running one is stopped.",
             "the task's state after the request (a running task may take a moment to stop)"),
    Endpoint("dismiss", "dismiss",
             "Forget a task started by {name} and its result (a task not yet ended is cancelled).",
             "the task's state when it was dismissed"),
    Endpoint("wait", "wait",
             "Wait until a task started by {name} has ended, or timeout seconds have passed.",
             "the task's state: ended, or still running after the timeout (poll_after says "
             "when to ask again)", waits=True),
)


def make_start(spec: TaskMethodSpec) -> Callable:
    """The function that starts a task of ``spec`` and answers its TaskInfoResponse."""

    def start(self: Any, *args: Any, **kw: Any) -> TaskInfoResponse:
        engine = engine_for(kw)
        try:
            task_kw = task_keywords(spec, kw)
            caller = caller_of(kw)
            unique = None
            if _mode(spec, engine) in REDIS_MODES:  # run elsewhere: the call as data
                job: Any = build_job(spec, args, task_kw)
                if spec.options.unique:
                    unique = unique_key(spec, job["payload"]["args"], caller)
            else:
                job = make_call(spec, self, args, task_kw, checked=True,
                                keeps_arguments=keeps_arguments(kw))
                if spec.options.unique:
                    unique = unique_key(spec, encoded_arguments(spec, args), caller)
            task_id = engine.start(spec.qualified_name, job, spec.mode, spec.redis_url,
                                   spec.policy(engine.config), caller=caller, unique=unique)
        except LadonTasksError as error:
            log.warning("task %s not started: %s", spec.qualified_name, error)
            raise to_fault(error) from None
        response = TaskInfoResponse()
        response.task_id = task_id
        return response

    start.__name__ = spec.name
    start.__doc__ = spec.func.__doc__
    return start


def register_endpoints(spec: TaskMethodSpec) -> tuple[Callable, ...]:
    """Declare every endpoint of :data:`ENDPOINTS` in the service, for every interface;
    returns the start function and those endpoints, to put on the service class."""
    sinfo = spec.lmi.sinfo
    functions = [make_start(spec)]
    for row in ENDPOINTS:
        function = row.make(spec)
        method_info = sinfo.add_method(function, *row.arg_types(), rtype=row.rtype(spec),
                                       override_method_name=function.__name__)
        quick_answer = getattr(function, "quick_answer", None)
        if quick_answer is not None:
            offer_quick_answer(method_info, quick_answer)
        functions.append(function)
    spec.lmi._ladon_tasks_spec = spec
    return tuple(functions)


def install_endpoints(cls: type, endpoints: tuple[Callable, ...]) -> None:
    """Put the endpoint functions on the service class."""
    for function in endpoints:
        setattr(cls, function.__name__, function)
