"""Struct -> Python: the scalar fast path gives exactly what the general per-value walk gives."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf.struct_pb2 import NULL_VALUE, Struct, Value
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.errors import InvalidRequestError, LimitExceededError
from cnm_policy.server.wire.structs import _value_to_python, struct_to_dict
from tests.strategies import json_like

_EDGE = 2**53
UNSET = object()  # a Value with no kind set

edge_numbers = st.sampled_from(
    [float(n) for n in (_EDGE - 1, _EDGE, _EDGE + 2, -_EDGE + 1, -_EDGE, -_EDGE - 2)]
    + [0.0, -0.0, 0.5, -1.5, 1e300, math.nan, math.inf, -math.inf]
)
leaves = (
    st.none()
    | st.just(UNSET)
    | st.booleans()
    | st.text(max_size=4)
    | st.just("")
    | edge_numbers
    | st.floats()
    | st.integers(min_value=-(2**60), max_value=2**60).map(float)
)
values = json_like(leaves, max_leaves=10)
structs = st.dictionaries(st.text(max_size=4), values, max_size=5)


def _fill(target: Value, item: Any) -> None:
    """Set `target` to `item` as a client could, including a Value with no kind."""
    if item is UNSET:
        return
    if item is None:
        target.null_value = NULL_VALUE
    elif isinstance(item, bool):
        target.bool_value = item
    elif isinstance(item, float):
        target.number_value = item
    elif isinstance(item, str):
        target.string_value = item
    elif isinstance(item, dict):
        target.struct_value.SetInParent()
        for key, child in item.items():
            _fill(target.struct_value.fields[key], child)
    else:
        target.list_value.SetInParent()
        for child in item:
            _fill(target.list_value.values.add(), child)


def _struct(data: dict[str, Any]) -> Struct:
    struct = Struct()
    for key, item in data.items():
        _fill(struct.fields[key], item)
    return struct


def _typed(value: Any) -> Any:
    """`value` with every type, float sign and key order made part of what `==` compares."""
    if isinstance(value, dict):
        return ("dict", [(key, _typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(item) for item in value])
    return (type(value).__name__, repr(value))


def _outcome(convert: Any) -> Any:
    try:
        return _typed(convert())
    except (InvalidRequestError, LimitExceededError) as error:
        return (type(error).__name__, error.code, error.field, error.message)


def _general(struct: Struct, field: str, max_depth: int) -> dict[str, Any]:
    """The general path over every entry, in the map's ``items()`` order."""
    return {
        key: _value_to_python(value, field, key, 1, max_depth)
        for key, value in struct.fields.items()
    }


@given(structs, st.integers(min_value=1, max_value=4))
def test_the_fast_path_equals_the_general_path(data: dict[str, Any], max_depth: int) -> None:
    """Same values, types, key order and errors (class, code, path, message) on any Struct."""
    struct = _struct(data)
    expected = _outcome(lambda: _general(struct, "context", max_depth))
    assert expected == _outcome(lambda: struct_to_dict(struct, "context", max_depth=max_depth))


@pytest.mark.parametrize(
    ("number", "expected"),
    [(float(_EDGE), _EDGE), (-float(_EDGE), -_EDGE), (-0.0, 0), (float(_EDGE + 2), _EDGE + 2.0)],
)
def test_numbers_at_the_edges_keep_their_rules(number: float, expected: int | float) -> None:
    """Integral within 2**53 (negative zero too) is an int; beyond, the double stays a float."""
    converted = struct_to_dict(_struct({"n": number}), "context")["n"]
    assert (type(expected), expected) == (type(converted), converted)


@pytest.mark.parametrize("kind", ["null", "unset", "number", "false", "empty", "struct", "list"])
def test_a_value_of_another_kind_reads_as_empty_string_and_false(kind: str) -> None:
    """Pins the protobuf behaviour the fast path relies on: unset oneof members read as defaults."""
    item = {
        "null": None,
        "unset": UNSET,
        "number": 1.0,
        "false": False,
        "empty": "",
        "struct": {"a": "x"},
        "list": ["x", True],
    }[kind]
    value = Value()
    _fill(value, item)
    assert (value.string_value, value.bool_value) == ("", False)


def test_reading_by_key_iterates_in_the_items_order() -> None:
    """Pins the other reliance: iterating the map's keys visits entries as ``items()`` does."""
    struct = _struct({f"k{n}": str(n) for n in range(50)})
    assert [key for key, _ in struct.fields.items()] == list(struct.fields)
