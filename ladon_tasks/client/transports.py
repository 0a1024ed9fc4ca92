"""How the client talks to a service: JSON-WSP over plain HTTP, or SOAP 1.1 through zeep."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Callable

from ladon_tasks.client.errors import ClientError, ServiceFault, TransportError, make_fault

#: Type name of what a task method's start call returns, in the JSON-WSP description.
TASK_INFO_TYPE = "TaskInfoResponse"


class JsonWspTransport:
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

    def has_method(self, method: str) -> bool:
        """True if the service offers ``method``."""
        return method in self.description()["methods"]

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


class SoapTransport:
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

    def has_method(self, method: str) -> bool:
        """True if the service offers ``method``."""
        try:
            self._service()[method]
        except AttributeError:
            return False
        return True

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
