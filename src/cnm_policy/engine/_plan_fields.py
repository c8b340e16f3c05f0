"""Comparisons between a resource field and a value known at plan time, as filter nodes.

Each returns (where it is true, where it raises), following the runtime's typed comparisons:
null equals only null, a type mismatch raises, ordering needs two numbers or two strings.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from cnm_policy.engine._plan_nodes import (
    FIELD_TYPES,
    Field,
    Node,
    Unplannable,
    all_of,
    any_of,
    compare,
    is_null,
    is_type,
    negate,
    one_of,
)
from cnm_policy.policy._condition_runtime import MISSING, type_of

__all__ = ["field_relation"]

_MIRROR: Mapping[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
    ast.Lt: ast.Gt,
    ast.LtE: ast.GtE,
    ast.Gt: ast.Lt,
    ast.GtE: ast.LtE,
}
_ORDER = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}
_SCALARS = frozenset({"boolean", "number", "string"})


def field_relation(op: type[ast.cmpop], left: Any, right: Any) -> tuple[Node, Node]:
    """`left op right` where at least one side is a resource :class:`Field`."""
    if isinstance(left, Field) and isinstance(right, Field):
        raise Unplannable("comparing two resource fields is not supported in a plan")
    if isinstance(left, Field):
        field, value = left.name, _norm(right)
    else:
        if op in (ast.In, ast.NotIn):
            if right.name in ("tenant", "id"):
                return False, True  # `in` a string raises, whatever the item
            raise Unplannable("`in` a resource attribute is not supported in a plan")
        field, value, op = right.name, _norm(left), _MIRROR[op]
    if op in (ast.Eq, ast.NotEq):
        true, error = _equal(field, value)
        return (true, error) if op is ast.Eq else (_otherwise(true, error), error)
    if op in (ast.In, ast.NotIn):
        true, error = _member(field, value)
        return (true, error) if op is ast.In else (_otherwise(true, error), error)
    kind = type_of(value)
    if kind not in ("number", "string"):
        return False, True  # ordering against anything else raises, whatever the field holds
    return compare(_ORDER[op], field, value), negate(is_type(field, kind))


def _norm(value: Any) -> Any:
    return None if value is MISSING else value


def _otherwise(true: Node, error: Node) -> Node:
    return all_of(negate(true), negate(error))


def _equal(field: str, value: Any) -> tuple[Node, Node]:
    if value is None:
        return is_null(field), False
    kind = type_of(value)
    if kind in ("list", "object"):
        raise Unplannable("comparing a resource field with a list or object is not supported")
    if kind not in _SCALARS:
        return False, negate(is_null(field))
    return compare("eq", field, value), all_of(negate(is_null(field)), negate(is_type(field, kind)))


def _member(field: str, container: Any) -> tuple[Node, Node]:
    if isinstance(container, list | tuple):
        candidates = [_norm(c) for c in container]
        kinds = {type_of(c) for c in candidates if c is not None}
        if kinds & {"list", "object"}:
            raise Unplannable("`in` a list holding lists or objects is not supported in a plan")
        groups: dict[str, list[Any]] = {}
        for candidate in candidates:
            if candidate is not None:
                group = groups.setdefault(type_of(candidate), [])
                if candidate not in group:
                    group.append(candidate)
        true = any_of(
            is_null(field) if None in candidates else False,
            *(one_of(field, values) for kind, values in groups.items() if kind in _SCALARS),
        )
        (only,) = kinds if len(kinds) == 1 else ("",)
        typed = is_type(field, only) if only in FIELD_TYPES else not kinds
        return true, all_of(negate(is_null(field)), negate(typed))
    if isinstance(container, Mapping):
        keys = [key for key in container if isinstance(key, str)]
        true = all_of(is_type(field, "string"), one_of(field, keys))
        return true, all_of(negate(is_null(field)), negate(is_type(field, "string")))
    return False, True  # `in` anything else raises, whatever the item
