"""The filter node set of a query plan: builders that fold constants, and the evaluator.

A node is ``True``, ``False`` or a JSON-ready dict with an ``op``; the set and its meaning are
specified in docs/design/plans.md, and :func:`holds` is that meaning, executable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnm_policy.errors import PlanUnsupportedError as Unplannable
from cnm_policy.model import Resource
from cnm_policy.policy._condition_runtime import MISSING, type_of

__all__ = [
    "COMPARISONS",
    "FIELD_TYPES",
    "Field",
    "Node",
    "Unplannable",
    "all_of",
    "any_of",
    "compare",
    "holds",
    "is_null",
    "is_type",
    "negate",
    "one_of",
    "present",
    "read_field",
    "within",
]

Node = bool | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Field:
    """A resource field left open at plan time (`tenant`, `id` or `attributes.<name>`)."""

    name: str


COMPARISONS = frozenset({"eq", "lt", "le", "gt", "ge"})
FIELD_TYPES = frozenset({"boolean", "number", "string", "list", "object"})
_ALWAYS_STRINGS = frozenset({"tenant", "id"})  # validated on every request: never null


def all_of(*nodes: Node) -> Node:
    """Conjunction, flattened, with ``True`` dropped and ``False`` absorbing."""
    args: list[Node] = []
    for node in nodes:
        if node is False:
            return False
        if node is True:
            continue
        if node["op"] == "and":
            args.extend(node["args"])
        else:
            args.append(node)
    if not args:
        return True
    return args[0] if len(args) == 1 else {"op": "and", "args": args}


def any_of(*nodes: Node) -> Node:
    """Disjunction, flattened, with ``False`` dropped and ``True`` absorbing."""
    args: list[Node] = []
    for node in nodes:
        if node is True:
            return True
        if node is False:
            continue
        if node["op"] == "or":
            args.extend(node["args"])
        else:
            args.append(node)
    if not args:
        return False
    return args[0] if len(args) == 1 else {"op": "or", "args": args}


def negate(node: Node) -> Node:
    """Negation; a double negation cancels."""
    if isinstance(node, bool):
        return not node
    if node["op"] == "not":
        inner: Node = node["arg"]
        return inner
    return {"op": "not", "arg": node}


def is_null(field: str) -> Node:
    """The field is absent or null."""
    return False if field in _ALWAYS_STRINGS else {"op": "is_null", "field": field}


def present(field: str) -> Node:
    """The field is present (possibly null): what ``has(...)`` tests."""
    return True if field in _ALWAYS_STRINGS else {"op": "present", "field": field}


def is_type(field: str, kind: str) -> Node:
    """The field holds a value of `kind` (one of FIELD_TYPES)."""
    if field in _ALWAYS_STRINGS:
        return kind == "string"
    if kind not in FIELD_TYPES:
        return False
    return {"op": "is_type", "field": field, "type": kind}


def compare(op: str, field: str, value: Any) -> Node:
    """The field has `value`'s type and stands in relation `op` to it (`value` a scalar)."""
    if field in _ALWAYS_STRINGS and type_of(value) != "string":
        return False
    return {"op": op, "field": field, "value": value}


def one_of(field: str, values: list[Any]) -> Node:
    """The field equals one of `values` (scalars of one type), compared with their type."""
    if not values:
        return False
    if len(values) == 1:
        return compare("eq", field, values[0])
    if field in _ALWAYS_STRINGS and type_of(values[0]) != "string":
        return False
    return {"op": "in", "field": field, "values": values}


def within(root: str) -> Node:
    """The resource's tenant is `root` or below it, segment-exact."""
    return {"op": "within", "field": "tenant", "root": root}


def read_field(resource: Resource, field: str) -> Any:
    """A field's value as the condition language reads it (``MISSING`` when absent)."""
    if field == "tenant":
        return resource.tenant
    if field == "id":
        return resource.id
    attributes: Mapping[str, Any] = resource.attributes
    return attributes.get(field[len("attributes.") :], MISSING)


def holds(node: Node, resource: Resource) -> bool:
    """Whether `resource` satisfies `node`: the node set's reference semantics."""
    if isinstance(node, bool):
        return node
    op = node["op"]
    if op == "and":
        return all(holds(arg, resource) for arg in node["args"])
    if op == "or":
        return any(holds(arg, resource) for arg in node["args"])
    if op == "not":
        return not holds(node["arg"], resource)
    value = read_field(resource, node["field"])
    if op == "is_null":
        return value is MISSING or value is None
    if op == "present":
        return value is not MISSING
    if op == "is_type":
        return bool(type_of(value) == node["type"])
    if op == "within":
        root: str = node["root"]
        return isinstance(value, str) and (value == root or value.startswith(root + "/"))
    if op == "in":
        return any(_related("eq", value, candidate) for candidate in node["values"])
    return _related(op, value, node["value"])


def _related(op: str, value: Any, constant: Any) -> bool:
    if type_of(value) != type_of(constant):
        return False
    if op == "eq":
        return bool(value == constant)
    if op == "lt":
        return bool(value < constant)
    if op == "le":
        return bool(value <= constant)
    if op == "gt":
        return bool(value > constant)
    return bool(value >= constant)
