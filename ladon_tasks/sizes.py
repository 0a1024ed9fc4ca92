"""How large a value is as JSON, counted cheaply, and the ResultTooLarge message.

The count is approximate (no escapes; ``", "`` and ``": "`` separators) and stops as
soon as it passes its limit, so that refusing a huge result costs little: a long list
or string is refused from its length alone, without a look at its items.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Iterator

from ladon_tasks.exceptions import ResultTooLarge

#: Ends the items of one container on the walk.
_END = object()
#: Classes whose attribute names are kept (see :func:`_attributes`).
_CLASSES_KEPT = 256
#: Characters of a non-ASCII string encoded at a time to count its UTF-8 bytes.
_CHUNK = 1 << 20
#: Units of :func:`describe_size`: binary ones for exact multiples, else decimal ones.
_BINARY = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
_DECIMAL = (("GB", 10**9), ("MB", 10**6), ("kB", 10**3))


def json_size(value: Any, limit: int | None = None) -> int:
    """Roughly how many bytes ``value`` takes as JSON (UTF-8).

    Counts strings, bytes, numbers, bool and None, lists, tuples, sets, dicts, and
    objects with attributes as the dict of them (Ladon's LadonType results); any other
    object (a class, a date, an object without attributes) counts as its ``str()``. A
    container met again inside itself is not counted again. Once the count passes
    ``limit`` it stops and returns a lower bound above ``limit``.
    """
    budget = float("inf") if limit is None else limit
    total = 0
    levels: list[tuple[Iterator[Any], int]] = [(iter((value,)), 0)]
    inside: set[int] = set()  # the containers being walked: a cycle ends here
    while levels:
        items, owner = levels[-1]
        item = next(items, _END)
        if item is _END:
            levels.pop()
            inside.discard(owner)
            continue
        leaf = _LEAVES.get(type(item))
        if leaf is not None:
            size, children = leaf(item, budget - total), None
        else:
            size, children = _measure(item, budget - total, inside)
        total += size
        if total > budget:
            return total
        if children is not None:
            inside.add(id(item))
            levels.append((iter(children), id(item)))
    return total


def _measure(item: Any, room: float, inside: set[int]) -> tuple[int, Any]:
    """The bytes of ``item`` itself (above ``room``: a lower bound, and the walk stops)
    and the items inside it still to count, if any."""
    if item is None or item is True:
        return 4, None
    if item is False:
        return 5, None
    if isinstance(item, str):
        return _str_size(item, room), None
    if isinstance(item, (bytes, bytearray)):
        return len(item) + 2, None
    if isinstance(item, int):
        return _int_size(item), None
    if isinstance(item, float):
        return len(repr(item)), None
    if id(item) in inside:
        return 0, None
    if isinstance(item, (list, tuple, set, frozenset)):
        return _container(2 * len(item), len(item), room, item)
    if isinstance(item, dict):
        return _dict_size(item, room)
    attributes = None if isinstance(item, type) else _attributes(item)
    if attributes is None:
        return _str_size(str(item), room), None
    return _dict_size(attributes, room)


def _attributes(item: Any) -> dict | None:
    """The object's own attributes (None: it has no ``__dict__``). Where its class makes
    ``__dict__`` something else (Ladon's LadonType: a method), its public attributes
    that are not callables and were set (their value is not the class's own)."""
    try:
        attributes = vars(item)
    except TypeError:
        return None
    if isinstance(attributes, dict):
        return attributes
    cls, own = type(item), {}
    for name in _public_names(cls):
        try:
            value = getattr(item, name)
        except Exception:  # a property that fails: not part of the value
            continue
        if value is not getattr(cls, name, None) and not callable(value):
            own[name] = value
    return own


@lru_cache(maxsize=_CLASSES_KEPT)
def _public_names(cls: type) -> tuple[str, ...]:
    """The public attribute names a class declares (a LadonType: its attributes)."""
    return tuple(name for name in dir(cls) if not name.startswith("_"))


def _container(own: int, count: int, room: float, children: Any) -> tuple[int, Any]:
    """A container's brackets and separators (``own``: two bytes an item), and its
    items to walk; or, if ``count`` items of a byte at least cannot fit in ``room``,
    that lower bound and no walk."""
    own = own + 2 - 2 * (count > 0)
    if own + count > room:
        return own + count, None
    return own, children


def _dict_size(mapping: dict, room: float) -> tuple[int, Any]:
    # Each entry: its key (counted below), ': ', its value and ', '.
    size, children = _container(4 * len(mapping), len(mapping), room, mapping.values())
    if children is None:
        return size, None
    for key in mapping:
        size += _str_size(key if isinstance(key, str) else str(key), room - size)
        if size > room:
            return size, None
    return size, children


def _str_size(text: str, room: float) -> int:
    """Quotes and UTF-8 bytes; a non-ASCII string is encoded a chunk at a time, and only
    until its count passes ``room``."""
    size = len(text) + 2
    if text.isascii() or size > room:
        return size
    size = 2
    for start in range(0, len(text), _CHUNK):
        size += len(text[start:start + _CHUNK].encode("utf-8", "surrogatepass"))
        if size > room:
            break
    return size


def _int_size(number: int) -> int:
    """Its digits and sign; a huge number's from its bit length (within a digit, and no
    slow ``str()``, which Python refuses past 4300 digits anyway)."""
    bits = abs(number).bit_length()
    if bits <= 64:
        return len(str(number))
    return (bits - 1) * 30103 // 100000 + 1 + (number < 0)


#: The sizes of the most common leaves, by exact type: a shortcut of :func:`_measure`.
_LEAVES: dict[type, Callable[[Any, float], int]] = {
    str: _str_size,
    int: lambda number, room: _int_size(number),
    float: lambda number, room: len(repr(number)),
    bool: lambda flag, room: 4 if flag else 5,
    type(None): lambda none, room: 4,
}


def describe_size(size: int) -> str:
    """``size`` bytes for people: ``"64 MiB"`` for an exact multiple of a binary unit,
    else ``"70.2 MB"`` (or ``"512 B"``)."""
    for unit, scale in _BINARY:
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    for unit, scale in _DECIMAL:
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def too_large(size: int, limit: int, why: str = "max_result_bytes", *,
              at_least: bool = False) -> ResultTooLarge:
    """The ResultTooLarge of a result of ``size`` bytes (a lower bound if ``at_least``)
    over ``limit``; its message starts ``"ResultTooLarge: "``, as the task's error will."""
    measured = f"at least {describe_size(size)}" if at_least else describe_size(size)
    return ResultTooLarge(f"ResultTooLarge: the result is {measured} as JSON; the limit is "
                          f"{describe_size(limit)} ({why})")
