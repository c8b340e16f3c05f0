"""``google.protobuf.Struct`` <-> plain JSON-like Python, with the depth limit applied on the way.

Attributes and context are free-form, so they travel as Structs; policies read them as plain
dicts, lists and scalars. Two wire quirks are settled here, once: Struct carries every number
as a double, so integral values within the exact range of a double become ``int`` (``{"level":
3}`` then means the same over gRPC as in a JSON file), and NaN or infinities are rejected.
Every error names the offending value's path (``context.a.b[2]``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.struct_pb2 import NULL_VALUE, ListValue, Struct, Value

from cnm_policy.errors import InvalidRequestError, LimitExceededError

__all__ = ["NO_DEPTH_LIMIT", "dict_to_struct", "struct_to_dict", "wire_number"]

# Largest magnitude at which every integer is exactly representable as a double.
_MAX_EXACT_INT = 2**53
NO_DEPTH_LIMIT = 1 << 30


def struct_to_dict(
    struct: Struct, field: str, *, max_depth: int = NO_DEPTH_LIMIT
) -> dict[str, Any]:
    """Convert a Struct to JSON-like Python, failing on values nested deeper than `max_depth`.

    `field` is the dotted path of `struct` in the request; errors extend it to the bad value.
    This runs for every attribute of every request, so its scalars are converted inline (the
    fast path; docs/design/sidecar-wire.md measures it) and any other value goes the general
    way, `_value_to_python`, which spells out a value's path only for an error or to descend.
    """
    fields = struct.fields
    if not fields:  # the common case
        return {}
    result: dict[str, Any] = {}
    # By key: the map's `items()` view iterates in Python, and the order is the same.
    for key in fields:
        value = fields[key]
        # A oneof member not set reads as its default, so a non-empty string, or true, can only
        # be the Value's kind; both reads cost less than asking `WhichOneof`.
        text = value.string_value
        if text:
            result[key] = text
        elif value.bool_value:
            result[key] = True
        else:
            result[key] = _value_to_python(value, field, key, 1, max_depth)
    return result


def _value_to_python(value: Value, parent: str, key: str | int, depth: int, max_depth: int) -> Any:
    """The general path: any value, at any depth, by its `WhichOneof` kind."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) <= _MAX_EXACT_INT:  # the common case, inline
            return int(number)
        return wire_number(number, parent, key)
    if kind == "struct_value":
        field = _path(parent, key)
        _check_depth(field, depth, max_depth)
        return {
            name: _value_to_python(item, field, name, depth + 1, max_depth)
            for name, item in value.struct_value.fields.items()
        }
    if kind == "list_value":
        field = _path(parent, key)
        _check_depth(field, depth, max_depth)
        return [
            _value_to_python(item, field, index, depth + 1, max_depth)
            for index, item in enumerate(value.list_value.values)
        ]
    # `null_value`, or a Value with no kind set: JSON null either way.
    return None


def wire_number(number: float, parent: str, key: str | int) -> int | float:
    """A number as policies see it: integral values within a double's exact range as ``int``,
    other finite ones as ``float``; NaN and infinities refused (the JSON request form's rule)."""
    if number.is_integer() and abs(number) <= _MAX_EXACT_INT:
        return int(number)
    if not math.isfinite(number):
        raise InvalidRequestError(_path(parent, key), "must be a finite number")
    return number


def _path(parent: str, key: str | int) -> str:
    """``context.a`` for a key, ``context.a[2]`` for a list index."""
    return f"{parent}[{key}]" if isinstance(key, int) else f"{parent}.{key}"


def _check_depth(field: str, depth: int, max_depth: int) -> None:
    if depth >= max_depth:
        raise LimitExceededError(field, f"values nest deeper than {max_depth} levels")


def dict_to_struct(data: Mapping[str, Any], field: str = "attributes") -> Struct:
    """Build a Struct from JSON-like Python; raises `InvalidRequestError` for anything else."""
    struct = Struct()
    for key, item in data.items():
        if not isinstance(key, str):
            raise InvalidRequestError(field, f"keys must be strings, not `{key!r}`")
        _fill_value(struct.fields[key], item, f"{field}.{key}")
    return struct


def _fill_value(target: Value, item: Any, field: str) -> None:
    # bool before int/float: bool is a subclass of int.
    if item is None:
        target.null_value = NULL_VALUE
    elif isinstance(item, bool):
        target.bool_value = item
    elif isinstance(item, int | float):
        try:
            target.number_value = float(item)
        except OverflowError:  # an int beyond any double
            raise InvalidRequestError(field, "is too large for a number") from None
    elif isinstance(item, str):
        target.string_value = item
    elif isinstance(item, Mapping):
        target.struct_value.SetInParent()  # an empty object is still an object, not null
        target.struct_value.CopyFrom(dict_to_struct(item, field))
    elif isinstance(item, list | tuple):
        target.list_value.SetInParent()  # likewise an empty list
        _fill_list(target.list_value, item, field)
    else:
        raise InvalidRequestError(field, f"unsupported value type `{type(item).__name__}`")


def _fill_list(target: ListValue, items: Sequence[Any], field: str) -> None:
    for index, item in enumerate(items):
        _fill_value(target.values.add(), item, f"{field}[{index}]")
