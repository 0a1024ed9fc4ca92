"""Answers holding a TaskProgressResponse over JSON-WSP and JSON-RPC, encoded in one step.

Every poll and every wait of a task gets one, so it is the answer a watched task costs
its server most often. Its fields all hold values of fixed JSON types
(:meth:`TaskProgressResponse.of` keeps them so), which lets the whole envelope go to
orjson at once: no field-by-field conversion by Ladon, no ``json.dumps``. That takes
about 8 us off a poll that costs about 50 us inside the application.

The answer says what Ladon's own path would say; only the JSON's spacing, the way a
float is written (``6.4e-05`` or ``0.000064``) and the order of the envelope's members
differ. In a charset other than UTF-8, or where orjson refuses the document (a
``mirror`` or ``id`` holding an integer beyond 64 bits, a message holding a lone
surrogate), it is written by ``json.dumps`` with every character beyond ASCII escaped,
so any text reaches the caller in any charset (Ladon's path fails on a character the
charset cannot hold). SOAP answers, and requests logged with their response
(``LOG_RESPONSE_DICT``), take Ladon's path as before.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import orjson

from ladon_tasks.ladon_glue.replies import jsonrpc_document
from ladon_tasks.ladon_glue.request_readers import Reply

#: The JSON-WSP version our answers say (Ladon's).
JSONWSP_VERSION = "1.0"


def progress_answer(interface: str, method: Any, result: Any, reply: Reply, encoding: str) -> bytes | None:
    """The encoded answer to a call of ``method`` that returned ``result``, or None if it
    is not a TaskProgressResponse over JSON-WSP or JSON-RPC (Ladon's path then makes it)."""
    values = getattr(result, "_values", None)
    if values is None:
        return None
    if interface == "jsonwsp":
        sinfo = method.sinfo
        document: dict[str, Any] = {
            "type": "jsonwsp/response", "version": JSONWSP_VERSION, "servicename": sinfo.servicename,
            "servicenumber": sinfo.servicenumber, "methodname": method.name(), "result": values,
        }
        if reply.reflection is not None:
            document["reflection"] = reply.reflection
    elif interface == "jsonrpc10":
        document = jsonrpc_document(values, reply)
    else:
        return None
    if is_utf8(encoding):
        try:
            return orjson.dumps(document)
        except orjson.JSONEncodeError:
            pass  # said below, as every other charset
    return json.dumps(document).encode(encoding)


def is_utf8(encoding: str) -> bool:
    """Whether ``encoding`` names UTF-8 (orjson writes nothing else). Not cached here: the
    name is the client's, in any spelling, and codecs caches what it looks up."""
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False
