"""What a request must be before Ladon reads it: for a known service and interface, a
call posted with a body of bounded size.

Ladon 1.0.7 answers an unknown service or interface with HTTP 500 and reads a call's
whole body, however large, before it looks at it. The guard answers those requests
itself, in plain HTTP, before any byte of the body is parsed: 404 for an unknown service
or interface (or a withdrawn one, with the reason), 405 (with ``Allow``) for a call that
is not a POST, 415 for a charset no codec reads, 411 for a body of unknown length that
cannot be counted, 400 for a bad ``Content-Length`` and 413 for a body over
``max_request_bytes``. A chunked body (no ``Content-Length``) is read up to
the limit and handed on with its length, since Ladon needs one.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("ladon_tasks.requests")

#: Ladon's own first path segments that name no service (its static skin data).
_RESERVED_ROOTS = frozenset({"skins"})
#: The path segment after the interface that asks for a description, not a call.
_DESCRIPTION = "description"
#: Bytes read at a time from a body without ``Content-Length``.
_CHUNK = 64 * 1024
#: Entries at most in each of the guard's caches of paths and Content-Type values.
_CACHED = 1024
#: Interfaces Ladon has that TaskWSGIApplication neither lists nor serves, and why.
WITHDRAWN_INTERFACES = {
    "xmlrpc": "XML-RPC is not served here: Ladon 1.0.7's XML-RPC interface was never ported to "
              "Python 3 (it fails on every call). Use soap11, soap, jsonwsp or jsonrpc10.",
}
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\s;\"]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    """An answer the guard gives instead of Ladon."""

    status: str
    message: str
    headers: tuple[tuple[str, str], ...] = field(default=())

    def respond(self, start_response: Callable) -> list[bytes]:
        body = (self.message + "\n").encode("utf-8")
        start_response(self.status, [("Content-Type", "text/plain; charset=UTF-8"),
                                     ("Content-Length", str(len(body))), *self.headers])
        return [body]


@dataclass(frozen=True)
class RequestGuard:
    """Checks each request against the services and interfaces there are."""

    max_request_bytes: int
    #: ``known_service(name)``: whether a service of that name is served.
    known_service: Callable[[str], bool]
    #: ``known_interface(name)``: whether Ladon has an interface of that name.
    known_interface: Callable[[str], bool]

    #: Paths already found good: path -> whether it is a call (not a page or description).
    _good_paths: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)
    #: Content-Type values already looked at: value -> its refusal (None: a known charset).
    _content_types: dict[str, Refusal | None] = field(default_factory=dict, compare=False, repr=False)

    def check(self, environ: dict) -> Refusal | None:
        """The refusal for this request, or None to let Ladon answer it. A chunked body
        within the limit is read here and put back with its ``Content-Length``."""
        path = environ.get("PATH_INFO", "")
        is_call = self._good_paths.get(path)
        refusal = None
        if is_call is None:
            refusal, is_call = self._route(path)
            if refusal is None:
                _remember(self._good_paths, path, is_call)
        if refusal is None and is_call:
            refusal = self._check_call(environ)
        if refusal is not None:
            log.info("refused %s %s: %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                     refusal.status, refusal.message)
        return refusal

    def _route(self, path: str) -> tuple[Refusal | None, bool]:
        """``(refusal, is_call)`` of a path, from its parts alone."""
        parts = [part for part in path.split("/") if part.strip()]
        if not parts or parts[0] in _RESERVED_ROOTS:
            return None, False
        refusal = self._check_path(parts)
        return refusal, len(parts) > 1 and (len(parts) < 3 or parts[2] != _DESCRIPTION)

    def _check_path(self, parts: list[str]) -> Refusal | None:
        service = parts[0]
        if not self.known_service(service):
            return Refusal("404 Not Found", f"no service named {_shown(service)} is served here")
        if len(parts) > 1 and parts[1] in WITHDRAWN_INTERFACES:
            return Refusal("404 Not Found", WITHDRAWN_INTERFACES[parts[1]])
        if len(parts) > 1 and not self.known_interface(parts[1]):
            return Refusal("404 Not Found", f"service {service} has no interface named {_shown(parts[1])}")
        return None

    def _check_call(self, environ: dict) -> Refusal | None:
        if environ.get("REQUEST_METHOD") != "POST":
            return Refusal("405 Method Not Allowed", "a call must be POSTed to the interface's URL "
                           "(its description is at .../description)", (("Allow", "POST"),))
        content_type = environ.get("CONTENT_TYPE", "")
        try:
            refusal = self._content_types[content_type]
        except KeyError:
            refusal = _check_charset(content_type)
            _remember(self._content_types, content_type, refusal)
        if refusal is not None:
            return refusal
        raw_length = environ.get("CONTENT_LENGTH", "").strip()
        if raw_length:
            return self._check_length(raw_length)
        if environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", ""):
            return self._read_bounded(environ)
        return Refusal("411 Length Required", "a call needs a Content-Length (or a chunked body)")

    def _check_length(self, raw_length: str) -> Refusal | None:
        if not raw_length.isdigit():
            return Refusal("400 Bad Request", f"Content-Length {_shown(raw_length)} is not a number of bytes")
        if int(raw_length) > self.max_request_bytes:
            return self._too_large(f"{int(raw_length):,} bytes")
        return None

    def _read_bounded(self, environ: dict) -> Refusal | None:
        """Read a body of unknown length, at most one byte past the limit."""
        stream, chunks, size = environ["wsgi.input"], [], 0
        while size <= self.max_request_bytes:
            chunk = stream.read(min(_CHUNK, self.max_request_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > self.max_request_bytes:
            return self._too_large("more")
        body = b"".join(chunks)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return None

    def _too_large(self, size: str) -> Refusal:
        return Refusal("413 Content Too Large", f"the request body is {size}; this server takes at most "
                       f"{self.max_request_bytes:,} bytes (max_request_bytes)")


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut if long (a client may send anything)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check_charset(content_type: str) -> Refusal | None:
    charset = _CHARSET.search(content_type)
    if charset and not known_charset(charset.group(1)):
        return Refusal("415 Unsupported Media Type",
                       f"the body's charset {_shown(charset.group(1))} is not one this server knows")
    return None


def _remember(cache: dict, key: str, value: object) -> None:
    """Keep ``value`` for ``key``, in a cache that a client sending ever new keys cannot grow
    past _CACHED entries."""
    if len(cache) >= _CACHED:
        cache.clear()
    cache[key] = value


def known_charset(name: str) -> bool:
    """Whether a codec reads text in the charset ``name`` (not one of the bytes-to-bytes or
    text-to-text codecs such as ``base64`` or ``rot13``, which no body or answer is in)."""
    try:
        info = codecs.lookup(name)
    except (LookupError, TypeError, ValueError):
        return False
    return getattr(info, "_is_text_encoding", True)


def withdraw_interfaces() -> None:
    """Take the withdrawn interfaces out of Ladon's registry, so that no service page
    lists them (idempotent; the guard answers their URLs with 404 and the reason)."""
    from ladon.interfaces import _interfaces

    for name in WITHDRAWN_INTERFACES:
        _interfaces.pop(name, None)
