"""A closed-loop HTTP load generator: one thread, ``selectors``, ``concurrency`` clients.

Each client sends one request, waits for the whole answer, then sends the next one,
so at most ``concurrency`` requests are in flight. A single event loop is cheaper
per request than client threads fighting over the GIL, which keeps the generator
well ahead of the Python servers it measures. Connections are kept open when the
server allows it (HTTP/1.1 persistent connections, one per client: gunicorn does);
werkzeug's development server answers ``Connection: close``, so there every request
pays for a new TCP connection (and a new server thread), the same for every server
measured. ``LoadResult.connections`` says how many connections a run opened. Latency
is measured from the first byte of work on a request (the connect, when there is one)
to the last byte of its answer.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

_FAULT_MARK = b"jsonwsp/fault"


class LoadError(RuntimeError):
    """The server could not be driven (refused connections, malformed answers, hang)."""


@dataclass
class LoadResult:
    """What one load run measured."""

    requests: int
    errors: int
    elapsed: float
    latencies: list[float]
    client_cpu: float
    bodies: list[bytes] = field(default_factory=list)
    first_error: bytes = b""
    #: TCP connections opened: ``requests`` without keep-alive, ``concurrency`` with it.
    connections: int = 0

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """Latency in seconds below which ``fraction`` of the requests finished."""
        return percentile(self.latencies, fraction)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


def post_request(host: str, port: int, path: str, body: bytes, content_type: str) -> bytes:
    """The bytes of one POST of ``body`` to ``path``."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def jsonwsp_request(host: str, port: int, service: str, body: bytes) -> bytes:
    """The bytes of one JSON-WSP POST."""
    return post_request(host, port, f"/{service}/jsonwsp", body, "application/json; charset=UTF-8")


class _Client:
    __slots__ = ("sock", "buffer", "request", "started", "reused", "retried")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.request = b""
        self.started = 0.0
        self.reused = False
        self.retried = False


def _parse(buffer: bytearray) -> tuple[int, bytes, bool] | None:
    """``(status, body, keep_alive)`` once ``buffer`` holds a whole answer, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    marker = head.find(b"\r\ncontent-length:")
    if marker < 0:
        raise LoadError("answer without Content-Length (chunked answers are not supported)")
    value_end = head.find(b"\r\n", marker + 2)
    length = int(head[marker + 17:value_end if value_end > 0 else None])
    if len(buffer) < end + 4 + length:
        return None
    keep_alive = b"\r\nconnection: close" not in head and head.startswith(b"http/1.1")
    return int(head[9:12]), bytes(buffer[end + 4:end + 4 + length]), keep_alive


def run_load(
    host: str,
    port: int,
    requests: Iterable[bytes],
    concurrency: int,
    *,
    keep_bodies: bool = False,
    timeout: float = 600.0,
) -> LoadResult:
    """Send every request of ``requests`` (full HTTP requests) with ``concurrency`` clients.

    Answers that are not ``200`` or that carry a JSON-WSP fault count as errors.
    """
    source: Iterator[bytes] = iter(requests)
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    bodies: list[bytes] = []
    errors = 0
    first_error = b""
    active = 0
    connections = 0
    clock = time.perf_counter
    address = (host, port)

    def begin(client: _Client) -> bool:
        try:
            client.request = next(source)
        except StopIteration:
            return False
        client.started = clock()
        client.retried = False
        send(client)
        return True

    def send(client: _Client) -> None:
        nonlocal connections
        client.buffer.clear()
        if client.sock is not None:
            client.reused = True
            client.sock.sendall(client.request)
            selector.modify(client.sock, selectors.EVENT_READ, client)
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            raise LoadError(f"cannot connect to {host}:{port}: {errno.errorcode.get(code, code)}")
        client.sock, client.reused = sock, False
        connections += 1
        selector.register(sock, selectors.EVENT_WRITE, client)

    def drop(client: _Client) -> None:
        if client.sock is not None:
            selector.unregister(client.sock)
            client.sock.close()
            client.sock = None

    clients = [_Client() for _ in range(concurrency)]
    cpu_started = time.process_time()
    started = clock()
    for client in clients:
        if begin(client):
            active += 1
    deadline = time.monotonic() + timeout
    while active:
        events = selector.select(timeout=1.0)
        if not events and time.monotonic() > deadline:
            raise LoadError(f"no answer from {host}:{port} within {timeout:.0f} s")
        for key, mask in events:
            client: _Client = key.data
            sock = client.sock
            assert sock is not None
            if mask & selectors.EVENT_WRITE:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    drop(client)
                    raise LoadError(f"cannot connect to {host}:{port}: {errno.errorcode.get(code, code)}")
                sock.setblocking(True)
                sock.sendall(client.request)
                sock.setblocking(False)
                selector.modify(sock, selectors.EVENT_READ, client)
                continue
            try:
                chunk = sock.recv(262144)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                # A kept-alive connection the server closed meanwhile: retry once afresh.
                if client.reused and not client.buffer and not client.retried:
                    drop(client)
                    client.retried = True
                    send(client)
                    continue
                drop(client)
                raise LoadError(f"{host}:{port} closed the connection before answering")
            client.buffer += chunk
            answer = _parse(client.buffer)
            if answer is None:
                continue
            status, body, keep_alive = answer
            latencies.append(clock() - client.started)
            if status != 200 or _FAULT_MARK in body:
                errors += 1
                first_error = first_error or body[:500]
            if keep_bodies:
                bodies.append(body)
            if not keep_alive:
                drop(client)
            if not begin(client):
                drop(client)
                active -= 1
    elapsed = clock() - started
    selector.close()
    return LoadResult(requests=len(latencies), errors=errors, elapsed=elapsed, latencies=latencies,
                      client_cpu=time.process_time() - cpu_started, bodies=bodies,
                      first_error=first_error, connections=connections)
