"""A client for task methods: start a task, follow its progress, fetch its result.

::

    client = TaskClient("http://localhost:8080/InstanceService")
    task_id = client.start("cloneInstance", "vm-1", new_instance_name="copy")
    info = client.join("cloneInstance", task_id, progress_callback=print)

``protocol="jsonwsp"`` (the default) needs nothing beyond the standard library; results
are the JSON values the service sends (a LadonType arrives as a dict, a list as a list).
``protocol="soap"`` talks to the service's ``soap11`` interface through zeep (``pip install
'ladon_tasks[client]'``); results are zeep objects, with Ladon's SOAP names (``task_id``
becomes ``task-id``). :func:`plain_value` turns either into plain JSON-ready values.

Errors: every error is a :class:`ClientError`. A fault the service answers is a
:class:`ServiceFault`; the faults ladon_tasks sends are subclasses that are *also* the
matching :mod:`ladon_tasks.exceptions` class, so ``except ladon_tasks.TaskFailed`` catches
a failed task on the client as on the server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping

from ladon_tasks.exceptions import (
    InvalidTaskId,
    LadonTasksError,
    ResultNotReady,
    ShuttingDown,
    StoreUnavailable,
    TaskFailed,
    TaskLost,
    TaskNotFound,
)
from ladon_tasks.task import TaskState

PROTOCOLS = ("jsonwsp", "soap")

#: Type name of what a task method's start call returns, in the JSON-WSP description.
TASK_INFO_TYPE = "TaskInfoResponse"


class ClientError(LadonTasksError):
    """Base of every error :class:`TaskClient` raises."""


class TransportError(ClientError):
    """The service could not be reached, or did not answer in its protocol."""


class ServiceFault(ClientError):
    """The service answered with a fault.

    ``code`` is the fault code (``"client"`` or ``"server"``), ``detail`` the fault detail
    (for ladon_tasks faults, the server's error name such as ``"TaskNotFound"``),
    ``message`` the fault string and ``task_id`` the task asked about, if any.
    """

    def __init__(self, message: str, code: str = "", detail: str = "", task_id: str = "") -> None:
        Exception.__init__(self, message)
        self.message = message
        self.code = code
        self.detail = detail
        self.task_id = task_id


class InvalidTaskIdFault(ServiceFault, InvalidTaskId):
    """The service says the task id is malformed."""


class TaskNotFoundFault(ServiceFault, TaskNotFound):
    """The service knows no task with this id (never started there, or expired)."""


class ResultNotReadyFault(ServiceFault, ResultNotReady):
    """The result was asked for before the task succeeded."""


class StoreUnavailableFault(ServiceFault, StoreUnavailable):
    """The service cannot reach its task store (Redis)."""


class ShuttingDownFault(ServiceFault, ShuttingDown):
    """The service is stopping and accepts no new task."""


class TaskFailedFault(ServiceFault, TaskFailed):
    """The task raised; ``error`` is the task's ``"ExceptionType: message"``."""

    def __init__(self, message: str, code: str = "", detail: str = "", task_id: str = "") -> None:
        super().__init__(message, code, detail, task_id)
        prefix = f"task {task_id} failed: "
        self.error = message[len(prefix):] if task_id and message.startswith(prefix) else message


class TaskLostFault(TaskFailedFault, TaskLost):
    """The task's worker went away before the task ended."""


class JoinTimeout(ClientError, TimeoutError):
    """:meth:`TaskClient.join` gave up waiting; the task goes on running on the server.

    ``progress`` is the last :class:`TaskProgress` seen.
    """

    def __init__(self, task_id: str, timeout: float, progress: TaskProgress) -> None:
        super().__init__(
            f"task {task_id} is still {progress.state} after {timeout:g} s "
            f"({progress.progress:.0%} done)")
        self.task_id = task_id
        self.timeout = timeout
        self.progress = progress


#: Fault detail (the server's error name) -> the exception the client raises.
FAULT_TYPES: dict[str, type[ServiceFault]] = {
    "InvalidTaskId": InvalidTaskIdFault,
    "TaskNotFound": TaskNotFoundFault,
    "ResultNotReady": ResultNotReadyFault,
    "StoreUnavailable": StoreUnavailableFault,
    "ShuttingDown": ShuttingDownFault,
    "TaskFailed": TaskFailedFault,
    "TaskLost": TaskLostFault,
}


def make_fault(message: str, code: str = "", detail: str = "", task_id: str = "") -> ServiceFault:
    """The :class:`ServiceFault` (subclass) for a fault with this detail."""
    fault_type = FAULT_TYPES.get(detail, ServiceFault)
    return fault_type(message.strip(), code, detail, task_id)


@dataclass(frozen=True)
class TaskProgress:
    """What ``<method>_progress`` answered. Times are seconds since the epoch, 0.0 = not yet;
    ``state`` is a :class:`~ladon_tasks.TaskState` value (``state == TaskState.FAILED``
    works); ``error`` is ``""`` unless the task failed or was lost."""

    task_id: str
    state: str
    done: bool
    progress: float
    duration: float
    starttime: float
    createtime: float
    endtime: float
    error: str

    @classmethod
    def from_answer(cls, answer: Any) -> TaskProgress:
        """Build from a JSON-WSP dict or a zeep object."""
        return cls(
            task_id=str(_field(answer, "task_id") or ""),
            state=str(_field(answer, "state") or ""),
            done=bool(_field(answer, "done")),
            progress=float(_field(answer, "progress") or 0.0),
            duration=float(_field(answer, "duration") or 0.0),
            starttime=float(_field(answer, "starttime") or 0.0),
            createtime=float(_field(answer, "createtime") or 0.0),
            endtime=float(_field(answer, "endtime") or 0.0),
            error=str(_field(answer, "error") or ""),
        )

    @property
    def succeeded(self) -> bool:
        return self.state == TaskState.SUCCEEDED


def _field(answer: Any, name: str) -> Any:
    """A field of a JSON-WSP dict or a zeep object, under its name or its SOAP spelling."""
    for key in (name, name.replace("_", "-")):
        if isinstance(answer, Mapping):
            if key in answer:
                return answer[key]
        else:
            try:
                return answer[key]
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
    return None


def plain_value(value: Any) -> Any:
    """A copy of a result made of dicts, lists, str, int, float, bool and None.

    zeep objects become dicts, Decimals floats and bytes text (UTF-8, else latin-1).
    """
    if hasattr(value, "__values__") and hasattr(value, "__iter__") and not isinstance(value, Mapping):
        value = dict(value.__values__)
    if isinstance(value, Mapping):
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return value


class _JsonWsp:
    """JSON-WSP over urllib: POST ``{"methodname", "args"}`` to ``<service>/jsonwsp``."""

    def __init__(self, service_url: str, timeout: float) -> None:
        self.endpoint = f"{service_url}/jsonwsp"
        self.timeout = timeout
        self._description: dict | None = None

    def description(self) -> dict:
        if self._description is None:
            description = self._request(f"{self.endpoint}/description", None)
            if not isinstance(description, dict) or "methods" not in description:
                raise TransportError(f"{self.endpoint}/description is not a JSON-WSP description")
            self._description = description
        return self._description

    def start(self, method: str, args: tuple, kwargs: dict) -> Any:
        info = self.description()["methods"].get(method)
        if info is None:
            raise ClientError(f"{self.endpoint} has no method {method!r}")
        if (info.get("ret_info") or {}).get("type") != TASK_INFO_TYPE:
            raise ClientError(f"{method!r} is not a task method: it does not return a {TASK_INFO_TYPE}")
        params = info.get("params") or {}
        names = sorted(params, key=lambda name: params[name].get("def_order", 0))
        required = [name for name in names if not params[name].get("optional")]
        return self.call(method, bind_arguments(method, names, args, kwargs, required))

    def call(self, method: str, args: dict, task_id: str = "") -> Any:
        answer = self._request(self.endpoint, {"methodname": method, "args": args}, task_id)
        kind = answer.get("type") if isinstance(answer, dict) else None
        if kind == "jsonwsp/fault":
            raise self._fault(answer, task_id)
        if kind != "jsonwsp/response":
            raise TransportError(f"{self.endpoint} answered {method} with something that is not JSON-WSP")
        return answer.get("result")

    def _request(self, url: str, payload: dict | None, task_id: str = "") -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=data, headers={
            "Content-Type": "application/json; charset=utf-8", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            body = error.read()
            answer = _json_or_none(body)
            if isinstance(answer, dict) and answer.get("type") == "jsonwsp/fault":
                raise self._fault(answer, task_id) from None
            first_line = body.decode("utf-8", "replace").strip().splitlines()[:1]
            raise TransportError(
                f"{url} answered HTTP {error.code} {error.reason}"
                + (f": {first_line[0][:200]}" if first_line else "")) from None
        except urllib.error.URLError as error:
            reason = getattr(error.reason, "strerror", None) or error.reason
            raise TransportError(f"cannot reach {url}: {reason}") from None
        except TimeoutError:
            raise TransportError(f"no answer from {url} within {self.timeout:g} s") from None
        except OSError as error:
            raise TransportError(f"cannot reach {url}: {error.strerror or error}") from None
        answer = _json_or_none(body)
        if answer is None:
            raise TransportError(f"{url} did not answer JSON")
        return answer

    @staticmethod
    def _fault(answer: dict, task_id: str) -> ServiceFault:
        fault = answer.get("fault") or {}
        detail = fault.get("detail") or ""
        if isinstance(detail, list):
            detail = " ".join(str(line) for line in detail)
        return make_fault(str(fault.get("string") or "fault without a message"),
                          str(fault.get("code") or ""), str(detail).strip(), task_id)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def bind_arguments(method: str, names: list[str], args: tuple, kwargs: dict,
                   required: list[str] | None = None) -> dict:
    """Name positional arguments after the method's parameters, like a Python call would;
    ``required`` (default: all ``names``) must all be given."""
    if len(args) > len(names):
        raise ClientError(f"{method} takes {len(names)} arguments ({', '.join(names)}), "
                          f"{len(args)} given")
    bound = dict(zip(names, args, strict=False))
    for name, value in kwargs.items():
        if name not in names:
            raise ClientError(f"{method} has no parameter {name!r} (it has: {', '.join(names) or 'none'})")
        if name in bound:
            raise ClientError(f"{method} got {name!r} both by position and by name")
        bound[name] = value
    missing = [name for name in (names if required is None else required) if name not in bound]
    if missing:
        raise ClientError(f"{method} is missing {', '.join(missing)}")
    return bound


class _Soap:
    """SOAP 1.1 through zeep, on the service's ``soap11`` interface."""

    def __init__(self, service_url: str, timeout: float) -> None:
        try:
            import zeep  # noqa: F401
        except ImportError:
            raise ClientError(
                "protocol 'soap' needs zeep: pip install 'ladon_tasks[client]'") from None
        self.wsdl = f"{service_url}/soap11/description"
        self.timeout = timeout
        self._client: Any = None

    def _service(self) -> Any:
        if self._client is None:
            import zeep

            transport = zeep.Transport(timeout=self.timeout, operation_timeout=self.timeout)
            self._client = self._guard(lambda: zeep.Client(self.wsdl, transport=transport), "")
        return self._client.service

    def start(self, method: str, args: tuple, kwargs: dict) -> Any:
        service = self._service()
        for name in (method, f"{method}_progress"):
            try:
                service[name]
            except AttributeError:
                problem = "has no method" if name == method else "has no task method"
                raise ClientError(f"{self.wsdl} {problem} {method!r}") from None
        kwargs = {name.replace("_", "-"): value for name, value in kwargs.items()}
        return self._guard(lambda: service[method](*args, **kwargs), "", method)

    def call(self, method: str, args: dict, task_id: str = "") -> Any:
        service = self._service()
        try:
            operation = service[method]
        except AttributeError:
            raise ClientError(f"{self.wsdl} has no method {method!r}") from None
        kwargs = {name.replace("_", "-"): value for name, value in args.items()}
        return self._guard(lambda: operation(**kwargs), task_id, method)

    def _guard(self, call: Callable[[], Any], task_id: str, label: str = "SOAP call") -> Any:
        """Run a zeep call, turning zeep's and requests' errors into ours."""
        import requests
        import zeep.exceptions

        try:
            return call()
        except zeep.exceptions.Fault as fault:
            detail = "" if fault.detail is None else "".join(fault.detail.itertext())
            raise make_fault(str(fault.message or "fault without a message"), str(fault.code or ""),
                             detail.strip(), task_id) from None
        except zeep.exceptions.TransportError as error:
            reason = (str(error.message or "").strip().splitlines() or [""])[0][:200]
            raise TransportError(f"{self.wsdl}: HTTP {error.status_code}: {reason}") from None
        except requests.Timeout:
            raise TransportError(f"no answer from {self.wsdl} within {self.timeout:g} s") from None
        except requests.ConnectionError as error:
            raise TransportError(f"cannot reach {self.wsdl}: {_root_cause(error)}") from None
        except requests.HTTPError as error:
            status = getattr(error.response, "status_code", "error")
            raise TransportError(f"{self.wsdl} answered HTTP {status}") from None
        except requests.RequestException as error:
            raise TransportError(f"{self.wsdl}: {error}") from None
        except (zeep.exceptions.Error, TypeError) as error:
            raise ClientError(f"{label}: {error}") from None


def _root_cause(error: BaseException) -> str:
    """The innermost reason of a requests error: 'Connection refused' rather than a pool repr."""
    while True:
        inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        error = reason
    return getattr(error, "strerror", None) or str(error)


class TaskClient:
    """Start and follow the task methods of one Ladon service.

    ``service_url`` is the service's address, like ``http://host:8080/TaskService``.
    ``protocol`` is ``"jsonwsp"`` or ``"soap"``; ``timeout`` bounds each HTTP request
    in seconds. Nothing is fetched until the first call; the JSON-WSP description (to
    name positional arguments) and the SOAP WSDL are fetched once and kept.
    """

    def __init__(self, service_url: str, protocol: str = "jsonwsp", timeout: float = 30.0) -> None:
        if protocol not in PROTOCOLS:
            raise ClientError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
        self.service_url = service_url.rstrip("/")
        self.protocol = protocol
        self.timeout = timeout
        backend = _JsonWsp if protocol == "jsonwsp" else _Soap
        self._backend: _JsonWsp | _Soap = backend(self.service_url, timeout)

    def __repr__(self) -> str:
        return f"TaskClient({self.service_url!r}, protocol={self.protocol!r})"

    def start(self, method: str, *args: Any, **kwargs: Any) -> str:
        """Start task method ``method`` and return its task id."""
        answer = self._backend.start(method, args, kwargs)
        task_id = answer if isinstance(answer, str) else _field(answer, "task_id")
        if not task_id:
            raise ClientError(f"{method} answered no task id: is it a task method?")
        return str(task_id)

    def progress(self, method: str, task_id: str) -> TaskProgress:
        """Where task ``task_id`` of ``method`` is (``<method>_progress``)."""
        answer = self._backend.call(f"{method}_progress", {"task_id": task_id}, task_id)
        return TaskProgress.from_answer(answer)

    def result(self, method: str, task_id: str) -> Any:
        """The result of a task that succeeded (``<method>_result``).

        Raises :class:`ResultNotReadyFault` while it runs, :class:`TaskFailedFault` or
        :class:`TaskLostFault` if it did not succeed.
        """
        return self._backend.call(f"{method}_result", {"task_id": task_id}, task_id)

    def join(
        self,
        method: str,
        task_id: str,
        progress_callback: Callable[[TaskProgress], Any] | None = None,
        timeout: float | None = None,
        poll_interval: float = 0.1,
        max_interval: float = 2.0,
        backoff: float = 1.5,
    ) -> Any:
        """Wait for the task to end and return its result, or raise its error.

        Polls ``<method>_progress`` first every ``poll_interval`` seconds, then
        ``backoff`` times longer after each poll, up to ``max_interval``; calls
        ``progress_callback(progress)`` after each poll, the last one included.
        Raises :class:`JoinTimeout` after ``timeout`` seconds (None: wait for ever),
        :class:`TaskFailedFault` / :class:`TaskLostFault` if the task did not succeed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll_interval
        while True:
            progress = self.progress(method, task_id)
            if progress_callback is not None:
                progress_callback(progress)
            if progress.done:
                # A failed or lost task answers its result with the fault we raise.
                return self.result(method, task_id)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JoinTimeout(task_id, timeout or 0.0, progress)
                time.sleep(min(interval, remaining))
            else:
                time.sleep(interval)
            interval = min(interval * backoff, max_interval)
