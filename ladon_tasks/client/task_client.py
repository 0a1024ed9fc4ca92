"""TaskClient: start a task, follow it, fetch its result."""

from __future__ import annotations

import time
from typing import Any, Callable

from ladon_tasks.client.answers import TaskProgress, answer_field
from ladon_tasks.client.errors import ClientError, JoinTimeout
from ladon_tasks.client.transports import JsonWspTransport, SoapTransport

PROTOCOLS = ("jsonwsp", "soap")
#: Seconds one ``<method>_wait`` call asks for at most: below the servers' ``max_wait``.
WAIT_SLICE = 25.0
#: Seconds one wait asks for when each answer is shown (a progress callback).
SHOWN_WAIT_SLICE = 1.0


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
        backend = JsonWspTransport if protocol == "jsonwsp" else SoapTransport
        self._backend: JsonWspTransport | SoapTransport = backend(self.service_url, timeout)

    def __repr__(self) -> str:
        return f"TaskClient({self.service_url!r}, protocol={self.protocol!r})"

    def start(self, method: str, *args: Any, **kwargs: Any) -> str:
        """Start task method ``method`` and return its task id."""
        answer = self._backend.start(method, args, kwargs)
        task_id = answer if isinstance(answer, str) else answer_field(answer, "task_id")
        if not task_id:
            raise ClientError(f"{method} answered no task id: is it a task method?")
        return str(task_id)

    def progress(self, method: str, task_id: str) -> TaskProgress:
        """Where task ``task_id`` of ``method`` is (``<method>_progress``)."""
        return self._progress_call(f"{method}_progress", task_id)

    def cancel(self, method: str, task_id: str) -> TaskProgress:
        """Cancel task ``task_id`` of ``method`` (``<method>_cancel``); return where it is.

        A queued task answers ``cancelled`` at once. A running one answers ``running``
        with ``cancel_requested`` and ends ``cancelled`` soon after (:meth:`wait` for it).
        An ended task is left as it is and answers its state.
        """
        return self._progress_call(f"{method}_cancel", task_id)

    def dismiss(self, method: str, task_id: str) -> TaskProgress:
        """Forget task ``task_id`` of ``method`` (``<method>_dismiss``), cancelling it first
        if it has not ended; return its progress as it was when dismissed. From then on
        the service answers :class:`TaskDismissedFault` for this id."""
        return self._progress_call(f"{method}_dismiss", task_id)

    def result(self, method: str, task_id: str) -> Any:
        """The result of a task that succeeded (``<method>_result``).

        Raises :class:`ResultNotReadyFault` while it runs, :class:`TaskFailedFault`,
        :class:`TaskLostFault` or :class:`TaskCancelledFault` if it did not succeed.
        """
        return self._backend.call(f"{method}_result", {"task_id": task_id}, task_id)

    def wait(
        self,
        method: str,
        task_id: str,
        progress_callback: Callable[[TaskProgress], Any] | None = None,
        timeout: float | None = None,
        poll_interval: float = 0.1,
        max_interval: float = 2.0,
        backoff: float = 1.5,
    ) -> TaskProgress:
        """Wait for the task to end, whatever the outcome, and return its last progress.

        Where the service has ``<method>_wait``, waits there: each call returns as soon
        as the task ends (or after a slice of at most 25 s, 1 s with a
        ``progress_callback``, so that progress is shown). Otherwise polls
        ``<method>_progress``, pausing ``poll_after`` seconds as the service advises, or
        (a service that does not) ``poll_interval`` seconds, ``backoff`` times longer
        after each poll, up to ``max_interval``. Calls ``progress_callback(progress)``
        after each answer, the last one included. Raises :class:`JoinTimeout` after
        ``timeout`` seconds (None: wait for ever).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        waits = self._backend.has_method(f"{method}_wait")
        longest = SHOWN_WAIT_SLICE if progress_callback is not None else WAIT_SLICE
        longest = min(longest, self.timeout * 0.8)
        interval = poll_interval
        first = progress_callback is not None  # shown at once, before the first wait
        while True:
            asked = time.monotonic()
            if waits:
                left = longest if deadline is None else max(0.0, min(longest, deadline - asked))
                left, first = (0.0 if first else left), False
                progress = self._progress_call(f"{method}_wait", task_id, timeout=left)
            else:
                progress = self.progress(method, task_id)
            if progress_callback is not None:
                progress_callback(progress)
            if progress.done:
                return progress
            if waits and (left == 0 or time.monotonic() - asked >= 0.5 * left):
                pause = 0.0  # it waited (or was not asked to): ask again at once
            elif progress.poll_after > 0:
                pause = progress.poll_after  # the service says when (or it has too many waiters)
            else:
                pause, interval = interval, min(interval * backoff, max_interval)
            if deadline is not None:
                pause = min(pause, deadline - time.monotonic())
                if pause <= 0 and time.monotonic() >= deadline:
                    raise JoinTimeout(task_id, timeout or 0.0, progress)
            if pause > 0:
                time.sleep(pause)

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
        """Wait for the task to end (as :meth:`wait` does) and return its result, or raise
        its error: :class:`TaskFailedFault`, :class:`TaskLostFault` or
        :class:`TaskCancelledFault` if it did not succeed, :class:`JoinTimeout` after
        ``timeout`` seconds."""
        self.wait(method, task_id, progress_callback, timeout, poll_interval, max_interval, backoff)
        # A task that did not succeed answers its result with the fault we raise.
        return self.result(method, task_id)

    def _progress_call(self, operation: str, task_id: str, **more: Any) -> TaskProgress:
        answer = self._backend.call(operation, {"task_id": task_id, **more}, task_id)
        return TaskProgress.from_answer(answer)
