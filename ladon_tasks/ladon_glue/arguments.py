"""A request's arguments made into the method's declared types, or a client fault that
names the argument and what it should have been.

Ladon 1.0.7 answers a wrong argument with a *server* fault whose text is a Python type
repr run into the converter's message (``...attribute: Noneinvalid literal...``), and
ignores arguments the method does not take. Here every such mistake is the caller's, in
plain words: :class:`MissingArgument`, :class:`UnexpectedArgument`,
:class:`InvalidArgument`. Values are still converted by Ladon's own type converter and
LadonType priming, so what a method receives is unchanged.
"""

from __future__ import annotations

from typing import Any, Iterator

from ladon.exceptions.service import ServiceFault
from ladon.exceptions.types import (
    LadonTypePrimerMismatch,
    LadonTypePrimingException,
    ListAttributeMismatch,
    MandatoryAttributeMissing,
)
from ladon.types import get_type_info
from ladon.types.attachment import attachment, extract_attachment_reference

from ladon_tasks.ladon_glue.request_faults import (
    InvalidArgument,
    MissingArgument,
    UnexpectedArgument,
    shown,
)
from ladon_tasks.ladon_glue.request_readers import Request

#: How a primitive type is named to a caller.
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "a boolean", str: "a string", bytes: "a string"}
#: Ladon's converter names the attribute only inside its message text.
_ATTRIBUTE_MARKER = "While handling attribute: "
#: A list argument may come as nothing at all from SOAP (an empty or nil element).
_EMPTY = (None, "", {})


def type_name(declared: Any) -> str:
    """``int`` -> "an integer", ``[int]`` -> "a list of integers", ``Order`` -> "an Order object"."""
    if isinstance(declared, (list, tuple)):
        return "a list of " + type_name(declared[0]).split(" ", 1)[1] + "s"
    if declared is attachment:
        return "an attachment"
    if declared in _TYPE_NAMES:
        return _TYPE_NAMES[declared]
    name = getattr(declared, "__name__", str(declared))
    return ("an " if name[:1].upper() in "AEIOU" else "a ") + name + " object"


def _fields(declared: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """``(name, declared type)`` of every field of a LadonType and of the ones it nests."""
    info = get_type_info(_item_type(declared))
    if not info or depth > 8:
        return
    for name, field_type, _props in info["attributes"]:
        yield name, field_type
        yield from _fields(field_type, depth + 1)


def _field_named_in(declared: Any, text: str) -> tuple[str, Any] | None:
    """The field Ladon's converter names in ``text`` (it runs the name into the next
    words: "attribute: weightcould not convert"), and its type."""
    marker = _ATTRIBUTE_MARKER
    if marker not in text:
        return None
    after = text.split(marker, 1)[1]
    named = [(name, field_type) for name, field_type in _fields(declared) if after.startswith(name)]
    return max(named, key=lambda field: len(field[0])) if named else None


class ArgumentConverter:
    """Converts the arguments of calls to one method of one service."""

    def __init__(self, method: Any, tc: Any, export_dict: dict, encoding: str, iface_name: str) -> None:
        self.method = method
        self.tc = tc
        self.export_dict = export_dict
        self.encoding = encoding
        self.iface_name = iface_name
        self.declared = method.args()

    def convert(self, request: Request) -> list[Any]:
        """The method's positional arguments, in declared order."""
        given = self._by_name(request)
        names = [arg["name"] for arg in self.declared]
        for name in given:
            if name not in names:
                takes = ", ".join(names) if names else "no arguments"
                raise UnexpectedArgument(f"{self._where()} takes no argument named {shown(name)} "
                                         f"(it takes {takes})")
        values = []
        for arg in self.declared:
            if arg["name"] in given:
                values.append(self._value(arg, given[arg["name"]]))
            elif "default" in arg:
                values.append(arg["default"])
            else:
                raise MissingArgument(f"{self._where()} needs argument \"{arg['name']}\" "
                                      f"({type_name(arg['type'])})")
        return values

    def _by_name(self, request: Request) -> dict[str, Any]:
        if request.positional is None:
            return request.named
        if len(request.positional) > len(self.declared):
            raise UnexpectedArgument(f"{self._where()} takes at most {len(self.declared)} arguments, "
                                     f"{len(request.positional)} were given")
        return {arg["name"]: value for arg, value in zip(self.declared, request.positional, strict=False)}

    def _where(self) -> str:
        return self.method.name()

    def _value(self, arg: dict, value: Any) -> Any:
        declared = arg["type"]
        if not isinstance(declared, (list, tuple)):
            return self._checked(arg, declared, value, f"argument \"{arg['name']}\"")
        if value in _EMPTY:
            return []
        if not isinstance(value, list):
            raise InvalidArgument(self._wrong(f"argument \"{arg['name']}\"", declared, value))
        return [self._checked(arg, declared[0], item, f"item {index} of argument \"{arg['name']}\"")
                for index, item in enumerate(value, 1)]

    def _checked(self, arg: dict, declared: Any, value: Any, what: str) -> Any:
        try:
            return self._one(declared, value)
        except ServiceFault:
            raise
        except _WrongShape:
            raise InvalidArgument(self._wrong(what, declared, value)) from None
        except LadonTypePrimingException as error:
            raise InvalidArgument(f"{what} of {self._where()}: {_field_problem(error)}") from None
        except Exception as error:  # noqa: BLE001 - Ladon's converters raise many kinds
            field = _field_named_in(declared, str(error))
            if field is not None:
                raise InvalidArgument(f"{what} of {self._where()}: field \"{field[0]}\" must be "
                                      f"{type_name(field[1])}") from None
            raise InvalidArgument(self._wrong(what, declared, value)) from None

    def _one(self, declared: Any, value: Any) -> Any:
        if declared is str and type(value) is str:
            return value  # what Ladon's converter gives a string without filters, sooner
        if get_type_info(declared):
            if value == "":
                value = {}  # an empty SOAP element for an object of optional fields
            if not isinstance(value, dict):
                raise _WrongShape
            return declared(prime_dict=value, tc=self.tc, export_dict=self.export_dict)
        if declared is attachment:
            return extract_attachment_reference(value, self.export_dict, self.encoding, self.iface_name,
                                                self.method.sinfo.servicename)
        if isinstance(value, (dict, list)):
            raise _WrongShape
        return self.tc.from_unicode_string(value, declared)

    def _wrong(self, what: str, declared: Any, value: Any) -> str:
        return f"{what} of {self._where()} must be {type_name(declared)}; got {shown(value)}"


def _field_problem(error: LadonTypePrimingException) -> str:
    owner = type(error.ladon_inst).__name__
    field = f"{owner}.{error.attr_name}" if error.attr_name else owner
    if isinstance(error, MandatoryAttributeMissing):
        return f"field {field} is missing"
    if isinstance(error, ListAttributeMismatch):
        return f"field {field} must be a list"
    if isinstance(error, LadonTypePrimerMismatch):
        return f"{owner} must be an object of fields"
    return f"field {field} has an item of the wrong type"


class _WrongShape(Exception):
    """A value of the wrong JSON/XML shape (a list for a number, a string for an object)."""


def _item_type(declared: Any) -> Any:
    return declared[0] if isinstance(declared, (list, tuple)) else declared
