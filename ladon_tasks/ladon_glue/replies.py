"""Answers and faults in each protocol's own format.

Faults carry the fault's text, ``client`` or ``server``, and its ``detail`` (for
ladon_tasks' faults the error's name, ``TaskNotFound``); never the file name and line
number of our code that Ladon 1.0.7 sends.

- JSON-WSP: ``{"type": "jsonwsp/fault", "fault": {"code", "string", "detail", "hint"}}``.
- JSON-RPC: the request's ``id`` echoed with its JSON type, and an error object with an
  integer ``code`` and a ``message`` (the members generic JSON-RPC clients read), plus
  ``data`` with our fault code and detail, and Ladon's ``string`` and ``detail`` (a list of
  lines) for callers written against Ladon 1.0.7. A
  request that says ``"jsonrpc": "2.0"`` is answered in 2.0's shape, others in 1.0's.
- SOAP 1.1: a SOAP Fault envelope, ``faultcode`` ``SOAP-ENV:Client`` or ``SOAP-ENV:Server``,
  sent with HTTP 500 as SOAP 1.1 asks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable
from xml.sax.saxutils import escape

from ladon.exceptions.service import ServiceFault

from ladon_tasks.ladon_glue import request_faults as rf
from ladon_tasks.ladon_glue.request_readers import Reply

#: JSON-RPC error codes: the protocol's own for request mistakes and for an unexpected
#: error, then application codes (outside JSON-RPC's reserved range, so that clients
#: hand their ``data`` on) for the faults the service answers: a client fault (a bad task
#: id, a result asked for too early, ...) and a server fault (the task failed, ...).
JSONRPC_CODES: dict[type, int] = {
    rf.InternalError: -32603,
    rf.MalformedRequest: -32700,
    rf.InvalidRequest: -32600,
    rf.UnknownMethod: -32601,
    rf.MissingArgument: -32602,
    rf.UnexpectedArgument: -32602,
    rf.InvalidArgument: -32602,
}
JSONRPC_CLIENT_FAULT = 1000
JSONRPC_SERVER_FAULT = 2000

SOAP_FAULT_STATUS = "500 Internal Server Error"
#: Characters XML 1.0 cannot carry at all (a client may send any in a name we echo).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FaultParts:
    """A fault reduced to what every protocol sends."""

    code: str  # "client" or "server"
    string: str
    detail: str
    hint: str

    @classmethod
    def of(cls, fault: ServiceFault) -> FaultParts:
        return cls(str(fault.faultcode), str(fault.faultstring), str(fault.detail or ""),
                   str(fault.hint or ""))


def jsonwsp_fault(fault: ServiceFault, parts: FaultParts, reply: Reply, encoding: str) -> bytes:
    document: dict[str, Any] = {
        "type": "jsonwsp/fault",
        "version": "1.0",
        "fault": {"code": parts.code, "string": parts.string, "detail": _lines(parts.detail),
                  "hint": parts.hint},
    }
    if reply.reflection is not None:
        document["reflection"] = reply.reflection
    return _json(document, encoding)


def jsonrpc_fault(fault: ServiceFault, parts: FaultParts, reply: Reply, encoding: str) -> bytes:
    code = JSONRPC_CODES.get(type(fault))
    if code is None:
        code = JSONRPC_CLIENT_FAULT if parts.code == "client" else JSONRPC_SERVER_FAULT
    error = {"code": code, "message": parts.string,
             "data": {"faultcode": parts.code, "detail": parts.detail},
             "string": parts.string, "detail": _lines(parts.detail)}
    if reply.jsonrpc2:
        return _json({"jsonrpc": "2.0", "error": error, "id": reply.request_id}, encoding)
    return _json({"result": None, "error": error, "id": reply.request_id}, encoding)


def jsonrpc_answer(result: Any, reply: Reply, encoding: str) -> bytes:
    return _json(jsonrpc_document(result, reply), encoding)


def jsonrpc_document(result: Any, reply: Reply) -> dict:
    """The JSON-RPC answer carrying ``result``, in the shape of the request's version."""
    if reply.jsonrpc2:
        return {"jsonrpc": "2.0", "result": result, "id": reply.request_id}
    return {"result": result, "error": None, "id": reply.request_id}


def soap_fault(fault: ServiceFault, parts: FaultParts, reply: Reply, encoding: str) -> bytes:
    faultcode = "SOAP-ENV:Client" if parts.code == "client" else "SOAP-ENV:Server"
    detail = parts.detail + ("\n" + parts.hint if parts.hint else "")
    envelope = (
        f"<?xml version=\"1.0\" encoding=\"{encoding}\"?>"
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">"
        "<SOAP-ENV:Body><SOAP-ENV:Fault>"
        f"<faultcode>{faultcode}</faultcode>"
        f"<faultstring>{_xml_text(parts.string)}</faultstring>"
        f"<detail>{_xml_text(detail)}</detail>"
        "</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    return envelope.encode(encoding, "xmlcharrefreplace")


FaultBuilder = Callable[[ServiceFault, FaultParts, Reply, str], bytes]


@dataclass(frozen=True)
class FaultFormat:
    """How one interface sends a fault: the body, and the HTTP status it goes with."""

    build: FaultBuilder
    status: str | None = None  # None: the status Ladon gives (200)


#: Each of Ladon's interfaces' fault format, by interface name.
FAULT_FORMATS: dict[str, FaultFormat] = {
    "jsonwsp": FaultFormat(jsonwsp_fault),
    "jsonrpc10": FaultFormat(jsonrpc_fault),
    "soap11": FaultFormat(soap_fault, SOAP_FAULT_STATUS),
    "soap": FaultFormat(soap_fault, SOAP_FAULT_STATUS),
}


def _lines(text: str) -> list[str]:
    """A detail as Ladon's JSON faults send it: a list of lines."""
    return text.replace("\r\n", "\n").split("\n")


def _json(document: dict, encoding: str) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode(encoding, "backslashreplace")


def _xml_text(text: str) -> str:
    """Text as XML character data that reads back as sent (a raw CR would come back as LF)."""
    return escape(_NOT_XML.sub("\ufffd", text)).replace("\r", "&#13;")
