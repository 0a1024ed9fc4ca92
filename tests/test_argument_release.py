"""Thread mode: once a task's last attempt runs, only the task holds its arguments, so a
task that drops a large argument frees it; with a retry left they are kept for it."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import uuid
import weakref
from typing import Any, Callable, Iterator

import pytest
import release_service
from conftest import make_app
from helpers import jsonwsp_result, wait_until

from ladon_tasks import TaskConfig, TaskEngine, TaskState
from ladon_tasks.ladon_glue.calls import TaskCall
from ladon_tasks.options import TaskPolicy

SERVICE = "ReleaseService"
#: The large argument: 20 MB of text.
SIZE = 20 * 2**20


class Blob(str):
    """A string a weak reference can follow."""


# -- through a real HTTP server ---------------------------------------------------------------


@pytest.fixture
def url(live_server: Callable) -> Iterator[str]:
    """A thread-mode server of release_service; every gate is opened before it stops."""
    # The argument is over the default max_request_bytes (10 MiB): raise it for these tests.
    yield live_server(make_app(["release_service"], mode="thread", threads=4,
                               max_request_bytes=64 * 1024 * 1024)).url
    for event in release_service.GATES.values():
        event.set()


@pytest.fixture
def traced() -> Iterator[Callable[[], int]]:
    """``traced()``: the bytes allocated since the test began that are still alive."""
    tracemalloc.start()
    try:
        yield _alive
    finally:
        tracemalloc.stop()


def _alive() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _gate_name() -> str:
    return f"gate-{uuid.uuid4().hex}"


def _start(url: str, method: str, **args: Any) -> str:
    return jsonwsp_result(url, SERVICE, method, **args)["task_id"]


def _progress(url: str, method: str, task_id: str) -> dict:
    return jsonwsp_result(url, SERVICE, f"{method}_progress", task_id=task_id)


def _wait_ended(url: str, method: str, task_id: str) -> dict:
    return wait_until(lambda: (p := _progress(url, method, task_id))["done"] and p,
                      message=f"task {task_id} to end")


def _wait_dropped(name: str) -> None:
    wait_until(lambda: release_service.SEEN.get(name), message="the task to drop its argument")


def test_a_task_that_drops_its_argument_frees_it_while_it_runs(url, traced):
    method, name = "hold", _gate_name()
    before = traced()
    task_id = _start(url, method, name=name, data="x" * SIZE)
    _wait_dropped(name)
    wait_until(lambda: traced() < before + SIZE // 4, timeout=10,
               message="the argument's memory to be freed while the task runs")
    assert _progress(url, method, task_id)["state"] == "running"
    release_service.gate(name).set()
    assert _wait_ended(url, method, task_id)["state"] == "succeeded"
    assert jsonwsp_result(url, SERVICE, f"{method}_result", task_id=task_id) == SIZE


def test_with_a_retry_left_the_arguments_are_kept_for_it(url, traced):
    name = _gate_name()
    before = traced()
    task_id = _start(url, "retried", name=name, data="y" * SIZE, fail_first=True)
    _wait_dropped(name)
    assert traced() > before + SIZE * 0.9  # the task dropped its reference; ours is kept for the retry
    release_service.gate(name).set()
    ended = _wait_ended(url, "retried", task_id)
    assert (ended["state"], ended["attempt"]) == ("succeeded", 2)
    assert release_service.SEEN[name] == [SIZE, SIZE]  # the retry got the same argument
    assert jsonwsp_result(url, SERVICE, "retried_result", task_id=task_id) == SIZE
    wait_until(lambda: traced() < before + SIZE // 4, timeout=10,
               message="the argument's memory to be freed once the task ended")


def test_the_arguments_of_a_task_that_ended_with_retries_left_are_freed(url, traced):
    name = _gate_name()
    before = traced()
    task_id = _start(url, "retried", name=name, data="z" * SIZE, fail_first=False)
    _wait_dropped(name)
    assert traced() > before + SIZE * 0.9  # kept: a retry may follow
    release_service.gate(name).set()
    assert _wait_ended(url, "retried", task_id)["attempt"] == 1
    # Its worker thread, idle now, does not keep the job it ran.
    wait_until(lambda: traced() < before + SIZE // 4, timeout=10,
               message="the argument's memory to be freed once the task ended")


# -- the engine and the call, without Ladon ---------------------------------------------------


class Holder:
    """``holder.task``: a task function that drops its argument, then notes whether that
    freed it (a plain function, as a service method is)."""

    def __init__(self) -> None:
        self.freed: list[bool] = []
        self.keywords: list[set[str]] = []
        self.proceed = threading.Event()
        self.task = self._make_task()

    def _make_task(self) -> Callable[..., int]:
        holder = self

        def task(instance: Any, data: Blob, **kw: Any) -> int:
            size, ref = len(data), weakref.ref(data)
            del data
            gc.collect()
            holder.freed.append(ref() is None)
            holder.keywords.append(set(kw))
            if not holder.proceed.wait(30):
                raise RuntimeError("never let go on")
            if len(holder.freed) < 2 and kw.get("fail_first"):
                raise RuntimeError("the first attempt fails")
            return size

        return task


@pytest.fixture
def engine() -> Iterator[TaskEngine]:
    engine = TaskEngine(TaskConfig(mode="thread", threads=2))
    yield engine
    engine.shutdown(grace_period=5)


def _run(engine: TaskEngine, holder: Holder, policy: TaskPolicy, **kw: Any) -> str:
    call = TaskCall(holder.task, None, (Blob("b" * 1000),), {"LADON_X": 1, "wsgi.input": 2, **kw})
    task_id = engine.start("Test.hold", call, policy=policy)
    del call
    return task_id


def test_the_last_attempt_holds_no_reference_to_the_arguments(engine):
    holder = Holder()
    task_id = _run(engine, holder, TaskPolicy())
    wait_until(lambda: holder.freed, message="the task to drop its argument")
    assert holder.freed == [True]
    assert holder.keywords == [{"LADON_X", "wsgi.input", "update_progress"}]
    holder.proceed.set()
    wait_until(lambda: engine.status(task_id).state is TaskState.SUCCEEDED, message="the task to succeed")
    assert engine.result(task_id) == 1000


def test_an_attempt_with_a_retry_left_keeps_the_arguments(engine):
    holder = Holder()
    holder.proceed.set()
    task_id = _run(engine, holder, TaskPolicy(retries=1, retry_backoff=0.01), fail_first=True)
    wait_until(lambda: engine.status(task_id).state is TaskState.SUCCEEDED, message="the retry to succeed")
    assert holder.freed == [False, True]  # kept by attempt 1 for attempt 2, which got them
    assert engine.result(task_id) == 1000 and engine.status(task_id).attempt == 2


def test_a_task_call_gives_its_arguments_away_once():
    holder = Holder()
    holder.proceed.set()
    call = TaskCall(holder.task, None, (Blob("c" * 10),), {"wsgi.input": 0}, check=lambda value: value * 2)
    assert call(print) == 20 and call(print) == 20  # kept: they can be given again
    assert call.last_call(print) == 20
    assert holder.freed == [False, False, True]
    with pytest.raises(RuntimeError, match="handed over"):
        call.last_call(print)
    with pytest.raises(RuntimeError, match="handed over"):
        call(print)


def test_a_task_without_keywords_gets_its_arguments_handed_over_too():
    freed: list[bool] = []

    def task(instance: Any, data: Blob) -> int:
        ref = weakref.ref(data)
        del data
        gc.collect()
        freed.append(ref() is None)
        return len(freed)

    call = TaskCall(task, None, (Blob("d" * 10),))
    assert (call(print), call.last_call(print)) == (1, 2)
    assert freed == [False, True]


@pytest.mark.parametrize("task", [
    lambda self, *args, **kw: args,  # *args
    lambda self, data, *, flag=1, **kw: (data,),  # keyword-only parameters
    lambda self, data, more=2, **kw: (data,),  # a default left to fill
])
def test_a_function_that_cannot_take_them_so_is_called_as_usual(task):
    assert TaskCall(task, None, ("e",), {"wsgi.input": 0}).last_call(print) == ("e",)


def test_a_task_call_without_keywords_passes_only_the_positional_arguments():
    seen: list[tuple] = []
    call = TaskCall(lambda *args: seen.append(args) or len(args), "self", ("a", "b", "c"))
    assert call(print) == 4
    assert call.last_call(print) == 4
    assert seen == [("self", "a", "b", "c")] * 2
