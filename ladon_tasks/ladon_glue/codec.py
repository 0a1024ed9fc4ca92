"""Values of Ladon types to and from JSON-able data, for arguments and results that
cross a process boundary (multiprocessing mode) or live in Redis."""

from __future__ import annotations

from typing import Any

from ladon.types import get_type_info
from ladon.types.attachment import attachment
from ladon.types.ladontype import LadonType

from ladon_tasks.exceptions import LadonTasksError

_PRIMITIVES = (int, float, bool, str)


class NotEncodable(LadonTasksError, TypeError):
    """A value that does not match its declared Ladon type, or cannot cross a process
    boundary (an attachment argument of a process-mode task)."""


def _is_ladontype(typ: Any) -> bool:
    return isinstance(typ, type) and issubclass(typ, LadonType)


def encode(value: Any, typ: Any, encoding: str = "UTF-8", where: str = "result") -> Any:
    """``value`` of Ladon type ``typ`` as JSON-able data; raises NotEncodable on a mismatch."""
    if isinstance(typ, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise NotEncodable(f"{where}: expected a list, got {type(value).__name__}")
        return [encode(item, typ[0], encoding, f"{where}[{i}]") for i, item in enumerate(value)]
    if _is_ladontype(typ):
        if not isinstance(value, typ):
            raise NotEncodable(f"{where}: expected {typ.__name__}, got {type(value).__name__}")
        data: dict[str, Any] = {}
        for name, attr_type, _props in _attributes(typ):
            attr_value = getattr(value, name, None)
            if attr_value is None or attr_value is getattr(typ, name, None):
                continue  # never set on the instance
            data[name] = encode(attr_value, attr_type, encoding, f"{where}.{name}")
        return data
    if typ is attachment:
        raise NotEncodable(f"{where}: attachments cannot cross a process boundary")
    if typ is bytes:
        if not isinstance(value, bytes):
            raise NotEncodable(f"{where}: expected bytes, got {type(value).__name__}")
        return value.decode(encoding)
    if typ in _PRIMITIVES:
        if type(value) is not typ:
            raise NotEncodable(f"{where}: expected {typ.__name__}, got {type(value).__name__}")
        return value
    raise NotEncodable(f"{where}: type {typ!r} is not a Ladon type")


def decode(data: Any, typ: Any, encoding: str = "UTF-8") -> Any:
    """The inverse of :func:`encode`: JSON-able data back to a value of ``typ``."""
    if isinstance(typ, (list, tuple)):
        return [decode(item, typ[0], encoding) for item in data or []]
    if _is_ladontype(typ):
        value = typ()
        for name, attr_type, _props in _attributes(typ):
            if name in data:
                setattr(value, name, decode(data[name], attr_type, encoding))
        return value
    if typ is bytes:
        return data.encode(encoding)
    if typ is float:
        return float(data)
    return data


def _attributes(typ: type) -> list:
    info = get_type_info(typ)
    if info is None:
        raise NotEncodable(f"{typ.__name__} is not known to Ladon (is it used by a ladonized method?)")
    return info["attributes"]
