"""Process-mode jobs: a task call as JSON-able data, and its reconstruction in a worker."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from ladon.ladonizer.collection import global_service_collection
from ladon.types.typeconverter import TypeConverter

from ladon_tasks.ladon_glue import codec
from ladon_tasks.ladon_glue.spec import TaskMethodSpec

#: What the worker imports to turn a payload into ``(call, encode)``.
ENTRY = "ladon_tasks.ladon_glue.jobs:prepare"

#: Ladon keywords that cross the process boundary as they are.
_PLAIN_KEYWORDS = ("LADON_METHOD_NAME", "LADON_ACCEPT_LANGUAGES")


def encoded_arguments(spec: TaskMethodSpec, args: tuple) -> list:
    """The call's arguments as JSON-able data, by their declared types."""
    lmi = spec.lmi
    return [codec.encode(value, arg_type, lmi._encoding, where=f"argument {name}")
            for value, arg_type, name in zip(args, lmi._arg_types, lmi._arg_names, strict=True)]


def unique_key(spec: TaskMethodSpec, encoded_args: list, caller: str | None) -> str:
    """What identifies a unique method's task: a hash of the method, its arguments (as
    encoded: equal values, equal keys) and its caller."""
    text = json.dumps([spec.qualified_name, caller or "", encoded_args], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_job(spec: TaskMethodSpec, args: tuple, kw: dict) -> dict:
    """The worker job for one call: arguments encoded as JSON by their declared types.

    Keywords that cannot cross a process boundary stay behind: ``LADON_METHOD_TC`` and
    ``LADON_RTYPE`` are made again in the worker; of the WSGI environ only string values
    go (``wsgi.input``, attachments and other objects do not).
    """
    lmi = spec.lmi
    encoded_args = encoded_arguments(spec, args)
    environ = {key: value for key, value in kw.items()
               if isinstance(value, str) and key not in _PLAIN_KEYWORDS}
    plain = {key: kw[key] for key in _PLAIN_KEYWORDS if key in kw}
    return {
        "entry": ENTRY,
        "payload": {
            "module": lmi.sinfo.modulename,
            "service": lmi.sinfo.servicename,
            "method": spec.name,
            "args": encoded_args,
            "keywords": plain,
            "environ": environ,
        },
    }


def find_spec(module: str, service: str, method: str) -> TaskMethodSpec:
    """The task method ``service.method`` of ``module``, importing the module if needed."""
    from ladon_tasks.ladon_glue.services import import_service_modules

    import_service_modules([module])
    for sinfo in global_service_collection().services.values():
        if sinfo.modulename == module and sinfo.servicename == service:
            lmi = sinfo.method(method)
            spec = getattr(lmi, "_ladon_tasks_spec", None)
            if spec is not None:
                return spec
    raise LookupError(f"{module}.{service}.{method} is not a task method")


def prepare(payload: dict) -> tuple[Callable, Callable]:
    """Worker entry: ``(call, encode)`` for one job payload."""
    from ladon_tasks.ladon_glue.endpoints import check_result, make_call

    spec = find_spec(payload["module"], payload["service"], payload["method"])
    lmi = spec.lmi
    args = tuple(codec.decode(value, arg_type, lmi._encoding)
                 for value, arg_type in zip(payload["args"], lmi._arg_types, strict=True))
    kw: dict[str, Any] = dict(payload["environ"])
    kw.update(payload["keywords"])
    kw["LADON_METHOD_TC"] = TypeConverter(
        encoding=lmi._encoding,
        allow_unsafe_conversion=lmi._allow_unsafe_conversion,
        only_strings_to_unicode=True,
    )
    kw["LADON_RTYPE"] = spec.rtype
    instance = getattr(__import__(spec.lmi.sinfo.modulename, fromlist=["*"]), spec.lmi.sinfo.servicename)()
    call = make_call(spec, instance, args, kw)

    def encode(value: Any) -> Any:
        return codec.encode(check_result(spec, value), spec.rtype, lmi._encoding)

    return call, encode
