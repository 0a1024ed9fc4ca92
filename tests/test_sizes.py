"""ladon_tasks.sizes: a value's JSON size, counted cheaply, and the ResultTooLarge message."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ladon_tasks import ResultTooLarge
from ladon_tasks.sizes import describe_size, json_size, too_large


class Part:
    """Like a LadonType result: a plain object with attributes."""

    def __init__(self, name: str, weight: float, codes: list[int]) -> None:
        self.name = name
        self.weight = weight
        self.codes = codes


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


@pytest.mark.parametrize("value", [
    None, True, False, 0, 7, -12345, 2**63, 3**100, -(3**100), 1.5, -0.25, 1e-300,
    "", "plain", "héllo wörld ✓ 𝄞", [], [1], [1, 2, 3], (4, 5), {}, {"a": 1},
    {"name": "x", "items": [1, 2.5, True, None], "nested": {"k": "ü", "l": [[], {}]}},
    [[1, [2, [3, [4]]]], {"deep": {"deeper": ["x"]}}],
])
def test_the_size_of_json_values_is_their_encoded_length(value):
    assert json_size(value) == _json_bytes(value)


def test_objects_count_as_their_attributes_and_bytes_as_text():
    part = Part("main", 1.5, [1, 2])
    assert json_size(part) == _json_bytes(vars(part))
    assert json_size([part, part]) == _json_bytes([vars(part), vars(part)])
    assert json_size(b"abc") == len('"abc"')
    assert json_size({1: "x", None: "y"}) == _json_bytes({"1": "x", "None": "y"})


def test_ladon_types_count_as_their_attributes():
    from calc_service import Assembly
    from calc_service import Part as LadonPart

    assembly = Assembly()
    assembly.label, assembly.count, assembly.ok = "kit", 2, True
    assembly.main = LadonPart()
    assembly.main.name, assembly.main.weight = "main", 1.5
    assembly.parts, assembly.codes = [assembly.main], [1, 2]
    main = {"name": "main", "weight": 1.5}
    expected = {"label": "kit", "count": 2, "ok": True, "main": main, "parts": [main], "codes": [1, 2]}
    assert json_size(assembly) == _json_bytes(expected)
    unset = LadonPart()  # its declared attributes were never set: not counted
    unset.name = "only"
    assert json_size(unset) == _json_bytes({"name": "only"})
    assert "__slotnames__" not in vars(LadonPart)  # counting changed nothing Ladon reads


def test_an_object_without_attributes_is_an_empty_object():
    assert json_size(Part.__new__(Part)) == len("{}")


def test_other_objects_count_as_their_str():
    class Opaque:
        __slots__ = ()

        def __str__(self) -> str:
            return "opaque!"

    assert json_size(Opaque()) == len('"opaque!"')
    assert json_size(Part) == len(str(Part)) + 2  # a class is not walked


def test_a_container_inside_itself_is_not_counted_again():
    loop: list[Any] = [1]
    loop.append(loop)
    assert json_size(loop) == len("[1, ]")
    shared = [1, 2]
    assert json_size([shared, shared]) == _json_bytes([shared, shared])  # not a cycle: twice


@pytest.mark.parametrize("value", [
    "x" * 5000, "é" * 5000, list(range(2000)), {str(i): i for i in range(1000)},
    [Part("p", 1.0, [])] * 200, [["abc"] * 100] * 100,
])
def test_past_the_limit_it_stops_with_a_lower_bound_above_it(value):
    size = json_size(value, limit=1000)
    assert 1000 < size <= _json_bytes(_plain(value))


def _plain(value: Any) -> Any:
    """``value`` with its objects as dicts, for json.dumps."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Part):
        return vars(value)
    return value


def test_under_the_limit_it_counts_everything():
    value = {"items": list(range(100)), "text": "abc" * 100}
    assert json_size(value, limit=_json_bytes(value)) == _json_bytes(value)


def test_a_huge_result_is_refused_from_its_length_alone():
    huge_list = [0] * 25_000_000  # 75 MB as JSON
    huge_text = "é" * 40_000_000  # 80 MB as UTF-8
    began = time.perf_counter()
    assert json_size(huge_list, limit=64 * 2**20) > 64 * 2**20
    assert json_size(huge_text, limit=64 * 2**20) > 64 * 2**20
    assert json_size({"a": [huge_list]}, limit=64 * 2**20) > 64 * 2**20
    assert time.perf_counter() - began < 1.0


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1024, "1 KiB"), (1500, "1.5 kB"),
    (64 * 2**20, "64 MiB"), (70_200_000, "70.2 MB"), (3 * 2**30, "3 GiB"), (2_500_000_000, "2.5 GB"),
])
def test_describe_size(size, text):
    assert describe_size(size) == text


def test_too_large_is_the_task_error_message():
    error = too_large(70_200_000, 64 * 2**20)
    assert isinstance(error, ResultTooLarge) and isinstance(error, ValueError)
    assert str(error) == ("ResultTooLarge: the result is 70.2 MB as JSON; the limit is 64 MiB "
                          "(max_result_bytes)")
    assert str(too_large(2000, 1000, "Redis's proto-max-bulk-len", at_least=True)) == (
        "ResultTooLarge: the result is at least 2.0 kB as JSON; the limit is 1.0 kB "
        "(Redis's proto-max-bulk-len)")
