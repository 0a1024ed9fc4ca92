"""Shims for Ladon 1.0.7's two SOAP interfaces, ``/soap11`` (rpc/encoded) and ``/soap``
(document/literal): hostile XML refused, string arguments as sent, a ``/soap`` WSDL
that clients can load.

Like those of :mod:`ladon_tasks.compat`, each shim answers one bug, is applied once and
is marked ``_ladon_tasks_shim``; :func:`apply` is idempotent.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable

from defusedxml.expatreader import DefusedExpatParser

_applied = False
_lock = threading.Lock()

#: A tag (not a comment, CDATA section or processing instruction) whose name runs past
#: MAX_XML_NAME characters. No SOAP operation or field is named so; such a name is an
#: attack on the parser, which copies a name several times over.
MAX_XML_NAME = 1023
_LONG_NAME = re.compile(rb"<[^\s>!?][^\s>]{%d}" % MAX_XML_NAME)

#: Declared types whose SOAP text is taken exactly as sent.
_STRING_TYPES = (str, bytes)


def defused_parser() -> DefusedExpatParser:
    """A SAX parser that refuses any DTD, entity declaration or external reference."""
    return DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)


def _request_parser(content_handler: type) -> Callable[..., dict]:
    """``parse_request`` for a SOAP request handler: Ladon's content handler fed by a
    defused parser, arguments settled by their declared types."""

    def parse_request(self: Any, soap_body: bytes, sinfo: Any, encoding: str) -> dict:
        if len(soap_body) > MAX_XML_NAME and _LONG_NAME.search(soap_body):
            raise ValueError(f"an XML name in the body is longer than {MAX_XML_NAME} characters")
        parser = defused_parser()
        handler = content_handler(parser)
        parser.setContentHandler(handler)
        # One feed of the whole body (it is in memory already): read in 64 kB pieces,
        # expat re-buffers a token that spans them, and a huge element name costs
        # several times its size.
        parser.feed(soap_body)
        parser.close()
        return settle_text(handler.req_dict, sinfo)

    parse_request._ladon_tasks_shim = True  # type: ignore[attr-defined]
    return parse_request


def _patch_soap_parsers() -> None:
    """Both SOAP request handlers parse with ``xml.sax.make_parser()``: a 1 kB
    billion-laughs body costs minutes of CPU, and external entities are resolved. A DTD,
    an entity or an external reference now ends the parse at once with an exception."""
    from ladon.interfaces.soap import SOAPContentHandler, SOAPRequestHandler
    from ladon.interfaces.soap11 import SOAP11ContentHandler, SOAP11RequestHandler

    for request_handler, content_handler in ((SOAP11RequestHandler, SOAP11ContentHandler),
                                             (SOAPRequestHandler, SOAPContentHandler)):
        if not getattr(request_handler.parse_request, "_ladon_tasks_shim", False):
            request_handler.parse_request = _request_parser(content_handler)


def _pickup_get(self: Any) -> str:
    chunks = self.__dict__.get("_text_chunks")
    if not chunks:
        return ""
    if len(chunks) > 1:
        chunks[:] = ["".join(chunks)]
    return chunks[0]


def _pickup_set(self: Any, value: str) -> None:
    self.__dict__["_text_chunks"] = [value] if value else []


def _characters(self: Any, content: str) -> None:
    """Keep an argument's text chunks as sent; they are joined once, when read."""
    if self.state == self.ARGS_IN or self.cur_id_val:
        self.__dict__.setdefault("_text_chunks", []).append(content)


_characters._ladon_tasks_shim = True  # type: ignore[attr-defined]


def _patch_soap_text() -> None:
    """Both SOAP content handlers strip every text chunk (``" a <b "`` arrives as
    ``"a<b"``) and append chunks to a string (quadratic on long texts). Their
    ``pickup_content`` becomes a list of chunks joined once, and text is kept whole;
    :func:`settle_text` strips what is not a string."""
    from ladon.interfaces.soap import SOAPContentHandler
    from ladon.interfaces.soap11 import SOAP11ContentHandler

    for content_handler in (SOAP11ContentHandler, SOAPContentHandler):
        if getattr(content_handler.characters, "_ladon_tasks_shim", False):
            continue
        content_handler.pickup_content = property(_pickup_get, _pickup_set)
        content_handler.characters = _characters


def settle_text(req_dict: dict, sinfo: Any) -> dict:
    """Give each argument of a parsed request the text Ladon's converters expect.

    The content handlers keep text as sent (:func:`_patch_soap_text`). A string argument
    (or field, or item) keeps it; any other value has its surrounding whitespace
    stripped, so that ``<arg>\\n</arg>`` for an object is empty, as before, and for a
    list is an empty list.
    """
    name = req_dict.get("methodname")
    method = sinfo.method(name) if isinstance(name, str) else None
    args = req_dict.get("args")
    if method is None or not isinstance(args, dict):
        return req_dict
    declared = {arg["name"]: arg["type"] for arg in method.args()}
    req_dict["args"] = {name: _settled(value, declared[name]) if name in declared else value
                        for name, value in args.items()}
    return req_dict


def _settled(value: Any, declared: Any) -> Any:
    from ladon.types import get_type_info

    if isinstance(declared, (list, tuple)):
        if isinstance(value, list):
            return [_settled(item, declared[0]) for item in value]
        if isinstance(value, str) and not value.strip():
            return []  # <tags/>: Ladon's LadonType refuses '' for a list field
    elif isinstance(value, dict) and get_type_info(declared):
        fields = {name: field_type for name, field_type, _props in get_type_info(declared)["attributes"]}
        return {name: _settled(item, fields[name]) if name in fields else item
                for name, item in value.items()}
    elif declared in _STRING_TYPES:
        return value
    return value.strip() if isinstance(value, str) else value


def _keeping_carriage_returns(build_response: Callable[..., bytes]) -> Callable[..., bytes]:
    def keep_carriage_returns(self: Any, res_dict: dict, sinfo: Any, encoding: str) -> bytes:
        xml = build_response(self, res_dict, sinfo, encoding)
        if b"\r" not in xml:  # a false alarm in UTF-16 and the like costs one decode
            return xml
        return xml.decode(encoding).replace("\r", "&#13;").encode(encoding)

    keep_carriage_returns._ladon_tasks_shim = True  # type: ignore[attr-defined]
    keep_carriage_returns._ladon_tasks_keeps_cr = True  # type: ignore[attr-defined]
    return keep_carriage_returns


def _patch_soap_carriage_returns() -> None:
    """Both SOAP response handlers write strings with minidom, which leaves a carriage
    return raw; the client's XML parser reads it as a newline (``"a\\r\\n"`` arrives as
    ``"a\\n"``). It is sent as ``&#13;``, the one way XML keeps it."""
    from ladon.interfaces.soap import SOAPResponseHandler
    from ladon.interfaces.soap11 import SOAP11ResponseHandler

    for response_handler in (SOAP11ResponseHandler, SOAPResponseHandler):
        if not getattr(response_handler.build_response, "_ladon_tasks_keeps_cr", False):
            response_handler.build_response = _keeping_carriage_returns(response_handler.build_response)


def _patch_soap_wsdl() -> None:
    """The ``/soap`` WSDL declares only the last field of each LadonType answer and puts
    its types in a namespace it never refers to: zeep cannot load it, suds cannot read a
    ``_progress`` answer. :mod:`ladon_tasks.soap_wsdl` writes it instead."""
    from ladon.interfaces.soap import SOAPServiceDescriptor

    from ladon_tasks import soap_wsdl

    if getattr(SOAPServiceDescriptor.generate, "_ladon_tasks_shim", False):
        return

    def generate(self: Any, servicename: str, servicenumber: int, typemanager: Any, methodlist: list,
                 service_url: str, encoding: str, **kw: Any) -> str:
        return soap_wsdl.describe(servicename, methodlist, service_url)

    generate._ladon_tasks_shim = True  # type: ignore[attr-defined]
    SOAPServiceDescriptor.generate = generate  # type: ignore[method-assign]


def apply() -> None:
    """Apply every SOAP shim once (Ladon's interfaces must be importable: call it from
    :func:`ladon_tasks.compat.apply`)."""
    global _applied
    if _applied:
        return
    with _lock:
        if _applied:
            return
        _patch_soap_parsers()
        _patch_soap_text()
        _patch_soap_carriage_returns()
        _patch_soap_wsdl()
        _applied = True
