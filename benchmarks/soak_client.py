"""The soak's HTTP client: one keep-alive JSON-WSP connection per thread (http.client),
every request's latency and answer recorded."""

from __future__ import annotations

import http.client
import json
import select
import time
from collections import Counter
from typing import Any

from soak_common import SERVICE

#: A connection idle this long is reopened before use, well before Apache's keep-alive
#: timeout (10 s, set by soak_apache) closes it under a request.
IDLE_REOPEN = 4.0
#: One request: endpoint (start, progress, result), sent and answered (monotonic), outcome.
Event = tuple[str, float, float, str]
#: The outcome of a request answered with a result.
OK = "ok"
#: How a kept connection that Apache closed under a request fails: no answer at all.
STALE = ("connection RemoteDisconnected", "connection BrokenPipeError", "connection ConnectionResetError")


class JsonWsp:
    """One HTTP/1.1 keep-alive connection to Apache; every call is recorded in ``events``.

    Like urllib3, a kept connection the server has closed meanwhile (readable while idle) is
    replaced before use. A request that still meets a closed kept connection (Apache closed
    it as the request went out: no answer at all) is recorded as ``stale connection ...
    (retried)`` and sent once more on a new connection; any other connection error is not.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None
        self.last_used = 0.0
        self.events: list[Event] = []
        self.daemons: Counter = Counter()

    def call(self, endpoint: str, method: str, **args: Any) -> tuple[str, Any]:
        """(outcome, value): ``ok`` and the result, ``server fault StoreUnavailable`` and the
        fault, ``HTTP 503``, ``connection ConnectionRefusedError``, ... and None."""
        body = json.dumps({"methodname": method, "args": args}).encode()
        while True:
            sent = time.monotonic()
            reused = self._ready(sent)
            outcome, value = self._send(body)
            self.last_used = time.monotonic()
            if reused and outcome in STALE:
                self.events.append((endpoint, sent, self.last_used, f"stale {outcome} (retried)"))
                continue
            self.events.append((endpoint, sent, self.last_used, outcome))
            return outcome, value

    def _ready(self, now: float) -> bool:
        """Make sure there is a connection; True if it is a kept one (used before)."""
        connection = self.connection
        if connection is not None and connection.sock is not None and now - self.last_used < IDLE_REOPEN:
            readable, _, _ = select.select([connection.sock], [], [], 0)
            if not readable:
                return True
        self.close()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=90)
        return False

    def _send(self, body: bytes) -> tuple[str, Any]:
        """POST ``body`` once; its outcome and value (see :meth:`call`)."""
        assert self.connection is not None
        try:
            self.connection.request("POST", f"/{SERVICE}/jsonwsp", body,
                                    {"Content-Type": "application/json; charset=UTF-8"})
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return f"connection {type(error).__name__}", None
        self.daemons[response.getheader("X-Daemon-Pid", "?")] += 1
        return _answer(response.status, data)

    def close(self) -> None:
        """Close the connection, if any (the next call opens a new one)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _answer(status: int, data: bytes) -> tuple[str, Any]:
    """The outcome and value of one JSON-WSP answer."""
    try:
        answer = json.loads(data)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("type") == "jsonwsp/fault":
        fault = answer.get("fault") or {}
        detail = fault.get("detail") or ["?"]
        name = (detail[0] if isinstance(detail, list) else str(detail)).strip() or "?"
        return f"{fault.get('code', '?')} fault {name}", fault
    if status != 200:
        return f"HTTP {status}", None
    if isinstance(answer, dict) and answer.get("type") == "jsonwsp/response":
        return OK, answer.get("result")
    return "bad answer", None
