"""A request body read into the call it asks for, one reader per protocol.

Each reader checks the shape of the request and raises a
:class:`~ladon_tasks.ladon_glue.request_faults.RequestFault` that says what is wrong,
where Ladon 1.0.7 failed with an ``UnboundLocalError`` or a ``KeyError``. What the
answer must echo (a JSON-RPC ``id``, a JSON-WSP ``mirror``) goes into the
:class:`Reply` as soon as it is known, so that even a fault carries it.

Argument values come out as Ladon's type converter expects them: JSON numbers as their
text, strings as strings, and lists and objects as lists and dicts. Everything else (a
JSON-RPC ``id``, a JSON-WSP ``mirror``) keeps its JSON type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ladon_tasks.ladon_glue.request_faults import InvalidRequest, MalformedRequest


@dataclass
class Reply:
    """What the answer to a request must carry back, learned while reading it."""

    #: JSON-RPC: the request's ``id`` as sent (None if it had none).
    request_id: Any = None
    #: JSON-RPC: the request said ``"jsonrpc": "2.0"``, so it is answered in 2.0's shape.
    jsonrpc2: bool = False
    #: JSON-WSP: the request's ``mirror``, sent back as ``reflection``.
    reflection: Any = None
    #: The method name, once the request names one.
    method: str | None = None


@dataclass
class Request:
    """The call a request asks for: a method name and its arguments."""

    method: str
    #: Arguments given by name.
    named: dict[str, Any] = field(default_factory=dict)
    #: Arguments given by position (JSON-RPC ``params`` as a list), or None.
    positional: list[Any] | None = None


Reader = Callable[[Any, bytes, str, Reply], Request]


def read_jsonwsp(iface: Any, body: bytes, encoding: str, reply: Reply) -> Request:
    """A JSON-WSP request: ``{"methodname": ..., "args": {...}, "mirror": ...}``."""
    document = _load_json(body, encoding)
    if not isinstance(document, dict):
        raise InvalidRequest(f"a JSON-WSP request is a JSON object with \"methodname\" and \"args\"; "
                             f"this body is {_json_kind(document)}")
    reply.reflection = document.get("mirror")
    method = _method_name(document.get("methodname"), "methodname")
    reply.method = method
    args = document.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise InvalidRequest(f"\"args\" must be an object of argument names and values, "
                             f"not {_json_kind(args)}")
    return Request(method, named={name: _as_text_numbers(value) for name, value in args.items()})


def read_jsonrpc(iface: Any, body: bytes, encoding: str, reply: Reply) -> Request:
    """A JSON-RPC 1.0 (or 2.0) request: ``{"method": ..., "params": [...] or {...}, "id": ...}``."""
    document = _load_json(body, encoding)
    if isinstance(document, list):
        raise InvalidRequest("batch requests (a JSON array of calls) are not supported: "
                             "send one call per request")
    if not isinstance(document, dict):
        raise InvalidRequest(f"a JSON-RPC request is a JSON object with \"method\", \"params\" and \"id\"; "
                             f"this body is {_json_kind(document)}")
    reply.request_id = document.get("id")
    reply.jsonrpc2 = document.get("jsonrpc") == "2.0"
    method = _method_name(document.get("method"), "method")
    reply.method = method
    params = document.get("params")
    if params is None:
        return Request(method)
    if isinstance(params, list):
        return Request(method, positional=[_as_text_numbers(value) for value in params])
    if isinstance(params, dict):
        return Request(method, named={name: _as_text_numbers(value) for name, value in params.items()})
    raise InvalidRequest(f"\"params\" must be a list (by position) or an object (by name), "
                         f"not {_json_kind(params)}")


def read_soap(iface: Any, body: bytes, encoding: str, reply: Reply) -> Request:
    """A SOAP 1.1 envelope, read by the interface's own (defused) parser."""
    if not body.strip():
        raise MalformedRequest("the body is empty; a SOAP call is an XML envelope")
    try:
        parsed = iface.parse_request(body, encoding=encoding)
    except Exception as error:  # noqa: BLE001 - whatever the parser says, the body is at fault
        raise MalformedRequest(f"the body is not a SOAP envelope that can be read: "
                               f"{_reason(error)}") from None
    method = parsed.get("methodname") if isinstance(parsed, dict) else None
    if not isinstance(method, str) or not method:
        raise InvalidRequest("the SOAP body names no operation")
    reply.method = method
    args = parsed.get("args") or {}
    if not isinstance(args, dict):
        raise InvalidRequest("the operation's arguments cannot be read")
    return Request(method, named=args)


#: The reader of each of Ladon's interfaces, by interface name.
READERS: dict[str, Reader] = {
    "jsonwsp": read_jsonwsp,
    "jsonrpc10": read_jsonrpc,
    "soap11": read_soap,
    "soap": read_soap,
}


#: One decoder for every request (``json.loads`` with an option builds a new one per call).
#: NaN and Infinity, which JSON does not have, are read as the text they are.
_DECODER = json.JSONDecoder(parse_constant=str)


def _load_json(body: bytes, encoding: str) -> Any:
    try:
        text = body.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        raise MalformedRequest(f"the body is not {_shown_encoding(encoding)} text") from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark, which RFC 8259 lets a reader ignore
    if not text.strip():
        raise MalformedRequest("the body is empty; a call is a JSON object")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise MalformedRequest("the body nests too deeply to be read") from None
    except ValueError as error:
        raise MalformedRequest(f"the body is not valid JSON: {error}") from None


def _method_name(value: Any, key: str) -> str:
    if value is None:
        raise InvalidRequest(f"the request has no \"{key}\" (the name of the method to call)")
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"\"{key}\" must be a method name (a string), not {_json_kind(value)}")
    return value


def _as_text_numbers(value: Any) -> Any:
    """A JSON value with its numbers as text, as Ladon's converters take them."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return [_as_text_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_text_numbers(item) for key, item in value.items()}
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return "a number"


def _shown_encoding(encoding: str) -> str:
    return encoding if len(encoding) <= 40 and encoding.isprintable() else "the declared charset's"


def _reason(error: BaseException) -> str:
    """One short line from a parser's error."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."
