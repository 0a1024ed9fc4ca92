"""A client of the console's JSON API (``<application root>/_tasks/api/``), for
administrators: list tasks, look one up, cancel one."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

from ladon_tasks.client.errors import ServiceFault, TransportError


class ConsoleRefused(ServiceFault):
    """The console answered with an error: ``status`` is its HTTP status, ``detail`` its
    code (``Forbidden``, ``InvalidQuery``, ``TaskNotFound``, ...)."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message, code="client" if status < 500 else "server", detail=detail)
        self.status = status


class ConsoleClient:
    """The console of the application at ``url`` (its root, not a service's URL).
    ``headers`` go with every request (a token the application's ``admin`` checks);
    ``user`` (``name:password``) adds HTTP basic authentication."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, user: str | None = None,
                 timeout: float = 30.0) -> None:
        self.api = url.rstrip("/") + "/_tasks/api/"
        self.headers = dict(headers or {})
        if user is not None:
            self.headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
        self.timeout = timeout

    def list_tasks(self, state: str | None = None, method: str | None = None, owner: str | None = None,
                   limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page: ``{"tasks": [row, ...], "next_cursor": str | None}``, newest first.
        ``owner=""`` asks for the tasks started without an identity."""
        query = {name: value for name, value in (("state", state), ("method", method), ("owner", owner),
                                                 ("limit", limit), ("cursor", cursor))
                 if value is not None}
        return self._ask("GET", "tasks" + ("?" + urllib.parse.urlencode(query) if query else ""))

    def iter_tasks(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every matching task's row, newest first, page after page."""
        cursor = None
        while True:
            page = self.list_tasks(cursor=cursor, **filters)
            yield from page["tasks"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def task(self, task_id: str) -> dict[str, Any]:
        """One task's row."""
        return self._ask("GET", "tasks/" + urllib.parse.quote(task_id, safe=""))

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel a task, whoever started it; its row as it is now."""
        return self._ask("POST", "tasks/" + urllib.parse.quote(task_id, safe="") + "/cancel")

    def _ask(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.api + path, method=method, headers=self.headers,
                                         data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise _refusal(error) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise TransportError(f"cannot reach the console at {self.api}: {reason}") from None


def _refusal(error: urllib.error.HTTPError) -> ConsoleRefused:
    try:
        body = json.loads(error.read())
        code, message = body["error"]["code"], body["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        code, message = "HTTPError", "the server answered with no console error"
    return ConsoleRefused(f"{error.code} {code}: {message}", error.code, code)
