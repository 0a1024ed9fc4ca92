"""Answers about ended tasks, encoded once: a poll of a task that has ended gets the very
bytes the last poll of it got.

An ended task's TaskProgressResponse changes no more (only its method's expected duration
may, as other tasks end), so the answer is kept keyed by everything it says: the
protocol, the service and method, the encoding and every value of the response. A key
holds all the answer depends on, so a kept answer can never be stale; one whose values
differ is another key. Only JSON-WSP answers are kept (a JSON-RPC answer carries the
request's id, a SOAP envelope is made from more than the response), and only of requests
without a ``mirror`` (JSON-WSP echoes it into the answer).
"""

from __future__ import annotations

import threading
from typing import Any, Hashable

#: Answers kept at most; the oldest go first.
MAX_ANSWERS = 4096
#: The protocols whose answer depends on nothing but the response.
CACHED_INTERFACES = frozenset({"jsonwsp"})


class EndedAnswers:
    """A bounded map of answer keys to encoded answers."""

    def __init__(self, size: int = MAX_ANSWERS) -> None:
        self.size = size
        self._answers: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        return self._answers.get(key)

    def keep(self, key: Hashable, answer: Any) -> None:
        with self._lock:
            if len(self._answers) >= self.size:
                del self._answers[next(iter(self._answers))]  # the oldest (dicts keep order)
            self._answers[key] = answer


def answer_key(interface: str, service: str, method: str, encoding: str, result: Any) -> Hashable | None:
    """The key of the answer to ``result``, or None if it is not one to keep: only a
    TaskProgressResponse of an ended task, over JSON-WSP."""
    if interface not in CACHED_INTERFACES:
        return None
    values = getattr(result, "_values", None)
    if values is None or not values.get("done"):
        return None
    return (interface, service, method, encoding, tuple(values.values()))


#: The answers of this process.
ENDED_ANSWERS = EndedAnswers()
