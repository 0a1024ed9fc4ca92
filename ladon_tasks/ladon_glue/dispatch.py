"""The one place that owns request errors: Ladon's dispatcher, with every way a request
can go wrong answered as a fault of the caller's own protocol.

Ladon 1.0.7's ``Dispatcher.dispatch_request`` reads ``req_dict`` in its ``except``
clause, so a body its parser rejects ends in an ``UnboundLocalError`` and a plain-text
HTTP 500 with a traceback. :class:`TaskDispatcher` replaces that method for requests
served by TaskWSGIApplication: it reads the request (``request_readers``), converts the
arguments (``arguments``), calls the method, and answers every fault in the protocol's
format (``replies``). A poll that gives the one string task id takes a short way to its
endpoint (``quick_calls``). Client mistakes are logged in one line at INFO; anything else at
ERROR with its traceback, and the caller gets a short server fault instead (with debug
on, the traceback goes to the caller too, as Ladon does).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sys
import time
import traceback
from typing import Any

from ladon.exceptions.ladonizer import ReturnTypeMismatch
from ladon.exceptions.service import ClientFault, ServiceFault
from ladon.server import (
    LOG_EXECUTION_TIME,
    LOG_JSON_FORMAT,
    LOG_REQUEST_ACCESS,
    LOG_REQUEST_DICT,
    LOG_RESPONSE_DICT,
)
from ladon.server.customresponse import CustomResponse
from ladon.server.dispatcher import Dispatcher, get_client_address
from ladon.tools.multiparthandler import AttachmentHandler
from ladon.types.typeconverter import TypeConverter

from ladon_tasks.constants import ENVIRON_DEBUG_KEY, ENVIRON_FAULT_STATUS_KEY
from ladon_tasks.ladon_glue.arguments import ArgumentConverter, type_name
from ladon_tasks.ladon_glue.guard import known_charset
from ladon_tasks.ladon_glue.progress_answers import progress_answer
from ladon_tasks.ladon_glue.quick_calls import quick_answer_of, sole_task_id
from ladon_tasks.ladon_glue.replies import FAULT_FORMATS, FaultParts, jsonrpc_answer
from ladon_tasks.ladon_glue.request_faults import InternalError, UnknownMethod, shown
from ladon_tasks.ladon_glue.request_readers import READERS, Reply, Request

log = logging.getLogger("ladon_tasks.faults")
access_log = logging.getLogger("ladon_tasks.access")

#: The detail of a server fault whose cause only the server log should tell.
IN_THE_LOG = "details are in the server log"


class TaskDispatcher(Dispatcher):
    """Ladon's dispatcher for requests served by TaskWSGIApplication; others (an
    application built on Ladon's own LadonWSGIApplication in the same process) are
    dispatched by Ladon's code as before."""

    def dispatch_request(self, request_data: Any, export_dict: dict) -> Any:
        debug = export_dict.get(ENVIRON_DEBUG_KEY)
        interface = _protocol_of(type(self.iface))
        if debug is None or interface is None:
            return super().dispatch_request(request_data, export_dict)
        if not known_charset(self.response_encoding):
            self.response_encoding = "UTF-8"
        reply = Reply()
        log_line: dict = {}
        try:
            export_dict["response_attachments"] = AttachmentHandler()
            request = READERS[interface](self.iface, request_data, self.response_encoding, reply)
            method = self._method(request)
            tc = TypeConverter(encoding=method._encoding,
                               allow_unsafe_conversion=method._allow_unsafe_conversion,
                               only_strings_to_unicode=(not self.iface.stringify_res_dict()))
            quick = None if self.logging else quick_answer_of(method)
            task_id = None if quick is None else sole_task_id(request)
            if quick is not None and task_id is not None:
                result = quick(task_id, export_dict)
            else:
                converter = ArgumentConverter(method, tc, export_dict, self.response_encoding, interface)
                args = converter.convert(request)
                result = self._call(method, args, tc, export_dict, log_line)
            return self._answer(interface, method, result, tc, export_dict, reply, log_line)
        except ServiceFault as fault:
            unexpected = not isinstance(fault, ClientFault) and not fault.detail
            return self._fault(interface, fault, reply, export_dict, unexpected)
        except Exception as error:  # noqa: BLE001 - the caller gets a fault, the log the traceback
            fault = InternalError(str(error) or type(error).__name__)
            return self._fault(interface, fault, reply, export_dict, unexpected=True)

    def _method(self, request: Request) -> Any:
        method = self.sinst.method(request.method)
        if method is None:
            raise UnknownMethod(f"{self.sinst.servicename} has no method named {shown(request.method)}")
        return method

    def _call(self, method: Any, args: list, tc: Any, export_dict: dict, log_line: dict) -> Any:
        """Call the service method as Ladon does: a fresh service instance, and Ladon's
        keywords for methods that take ``**kw``."""
        module = sys.modules.get(method.sinfo.modulename) or importlib.import_module(method.sinfo.modulename)
        instance = getattr(module, method.sinfo.servicename)()
        bound = getattr(instance, method.name())
        if self.logging & LOG_REQUEST_ACCESS:
            log_line["Method"] = f"{method.sinfo.servicename}.{method.name()}"
        if self.logging & LOG_REQUEST_DICT:
            log_line["RequestDict"] = {"methodname": method.name(), "args": args}
        started = time.time()
        kw: dict = {}
        if method._has_keywords:
            kw = {"LADON_METHOD_TC": tc, "LADON_METHOD_NAME": method.name(),
                  "LADON_ACCEPT_LANGUAGES": self.languages, "LADON_RTYPE": getattr(method, "_rtype", None)}
            kw.update(export_dict)
        try:
            result = bound(*args, **kw)
        except ReturnTypeMismatch as error:
            raise InternalError(f"{method.name()} returned {type_name(error.recieved_rtype)}, not "
                                f"{type_name(error.expected_rtype)} (its rtype)") from error
        if self.logging & LOG_EXECUTION_TIME:
            log_line["ExecutionTime"] = time.time() - started
        return result

    def _answer(self, interface: str, method: Any, result: Any, tc: Any, export_dict: dict,
                reply: Reply, log_line: dict) -> Any:
        if isinstance(result, CustomResponse):
            return result
        if not self.logging & LOG_RESPONSE_DICT:
            encoded = progress_answer(interface, method, result, reply, self.response_encoding)
            if encoded is not None:
                self._log_access(log_line, export_dict)
                return encoded
        try:
            res_dict = self.result_to_dict(method, result, tc, export_dict["response_attachments"],
                                           log_line=log_line)
        except ServiceFault:
            raise
        except Exception as error:  # noqa: BLE001 - Ladon's encoders say it in words no caller can use
            raise InternalError(f"{method.name()} returned a value that is not "
                                f"{type_name(method._rtype)}") from error
        self._log_access(log_line, export_dict)
        if interface == "jsonrpc10":
            return jsonrpc_answer(res_dict["result"], reply, self.response_encoding)
        if reply.reflection is not None:
            res_dict["reflection"] = reply.reflection
        return self.iface.build_response(res_dict, encoding=self.response_encoding)

    def _fault(self, interface: str, fault: ServiceFault, reply: Reply, export_dict: dict,
               unexpected: bool) -> bytes:
        if unexpected:
            log_unexpected(fault, interface, reply)
            fault.detail = traceback.format_exc() if export_dict.get(ENVIRON_DEBUG_KEY) else IN_THE_LOG
        elif isinstance(fault, ClientFault):
            log.info("client fault answered on %s/%s%s: %s", self.sinst.servicename, interface,
                     _method_note(reply), _one_line(fault.faultstring))
        fault_format = FAULT_FORMATS[interface]
        if fault_format.status:
            export_dict[ENVIRON_FAULT_STATUS_KEY] = fault_format.status
        return fault_format.build(fault, FaultParts.of(fault), reply, self.response_encoding)

    def _log_access(self, log_line: dict, export_dict: dict) -> None:
        if not self.logging or not log_line:
            return
        if self.logging & LOG_JSON_FORMAT:
            log_line["remote_addr"] = get_client_address(export_dict)
            access_log.info(json.dumps(log_line, ensure_ascii=False, default=str))
        else:
            access_log.info("\t".join(f"{key}:{value}" for key, value in log_line.items()))


def log_unexpected(fault: ServiceFault, interface: str, reply: Reply) -> None:
    """An error of ours or of the service (not the caller's): ERROR, with the traceback."""
    log.error("fault answered on %s%s: %s", interface, _method_note(reply), _one_line(fault.faultstring),
              exc_info=True)


def install_dispatcher() -> None:
    """Make Ladon's WSGI application build TaskDispatchers (idempotent)."""
    import ladon.server.wsgi_application as wsgi_application

    wsgi_application.Dispatcher = TaskDispatcher  # type: ignore[misc]


@functools.cache
def _protocol_of(iface_class: type) -> str | None:
    """The name under which our readers know an interface class (Ladon's document/literal
    SOAP interface has two names), or None for an interface we do not know."""
    names = iface_class._interface_name()  # type: ignore[attr-defined]
    for name in [names] if isinstance(names, str) else names:
        if name in READERS:
            return name
    return None


def _method_note(reply: Reply) -> str:
    return f" ({shown(reply.method)})" if reply.method else ""


def _one_line(text: Any, limit: int = 300) -> str:
    """``text`` on one line, cut if long (a client may send anything)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


