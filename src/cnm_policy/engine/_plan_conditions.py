"""A rule condition, partially evaluated: what is known at plan time folds, the rest is nodes.

Each condition's source is compiled once into closures that, given the principal, action,
context and instant, return a pair of filter nodes: where the condition is true, and where it
would raise (so the plan can fail closed exactly as the decision does; docs/design/plans.md).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cnm_policy.engine._plan_fields import field_relation
from cnm_policy.engine._plan_nodes import (
    Field,
    Node,
    Unplannable,
    all_of,
    any_of,
    compare,
    is_type,
    negate,
    present,
)
from cnm_policy.errors import ConditionError
from cnm_policy.policy._condition_runtime import (
    COMPARATORS,
    FUNCTIONS,
    MISSING,
    EvalEnv,
    read_step,
)
from cnm_policy.policy.conditions import LITERAL_NAMES

__all__ = ["ERROR", "Pred", "as_pred", "partial_condition", "partial_expression", "settled"]

_EVAL_ERRORS = (ConditionError, TypeError, ValueError, KeyError, OverflowError, RecursionError)


@dataclass(frozen=True, slots=True)
class Pred:
    """A three-valued verdict over resources: `true` where it holds, `error` where it raises."""

    true: Node
    error: Node

    @property
    def false(self) -> Node:
        """Where it evaluates, without error, to false."""
        return all_of(negate(self.true), negate(self.error))


ERROR: Any = object()  # a value whose evaluation raised at plan time, for every resource
_RAISES = Pred(False, True)
_Fn = Callable[[EvalEnv], Any]


@lru_cache(maxsize=4096)
def partial_condition(source: str) -> Callable[[EvalEnv], Pred]:
    """The partial evaluator of a condition (memoised: conditions repeat across plans)."""
    body = partial_expression(source)
    return lambda env: as_pred(body(env))


@lru_cache(maxsize=4096)
def partial_expression(source: str) -> _Fn:
    """The partial evaluator of an expression: a value, a :class:`Field`, ERROR or a Pred."""
    try:
        return _compile(ast.parse(source.strip(), mode="eval").body)
    except Unplannable as exc:
        problem = exc.reason

        def unplannable(env: EvalEnv) -> Any:
            raise Unplannable(problem)

        return unplannable


def as_pred(value: Any) -> Pred:
    """A value in a boolean position: only a real boolean is one (as the runtime insists)."""
    if isinstance(value, Pred):
        return value
    if isinstance(value, Field):
        return Pred(compare("eq", value.name, True), negate(is_type(value.name, "boolean")))
    if isinstance(value, bool):
        return Pred(value, False)
    return _RAISES


def settled(value: Any) -> Any:
    """A verdict that no longer depends on the resource, as a plain value (or ERROR)."""
    if isinstance(value, Pred) and isinstance(value.true, bool) and isinstance(value.error, bool):
        return ERROR if value.error else value.true
    return value


def _compile(node: ast.expr) -> _Fn:
    handler = _HANDLERS.get(type(node))
    if handler is None:
        raise Unplannable(f"`{ast.unparse(node)}` is not supported in a plan")
    return handler(node)


def _constant(node: ast.Constant) -> _Fn:
    value = node.value
    return lambda env: value


def _name(node: ast.Name) -> _Fn:
    if node.id in LITERAL_NAMES:
        value = LITERAL_NAMES[node.id]
        return lambda env: value
    if node.id == "action":
        return lambda env: env.action
    if node.id == "context":
        return lambda env: env.context
    raise Unplannable(f"`{node.id}` is not a value")


def _path_keys(node: ast.expr) -> tuple[str, tuple[str | int, ...]]:
    keys: list[str | int] = []
    current = node
    while isinstance(current, ast.Attribute | ast.Subscript):
        if isinstance(current, ast.Attribute):
            keys.append(current.attr)
        else:
            index = current.slice
            if not isinstance(index, ast.Constant) or not isinstance(index.value, str | int):
                raise Unplannable(f"`{ast.unparse(current)}` is not a field path")
            keys.append(index.value)
        current = current.value
    if not isinstance(current, ast.Name):
        raise Unplannable(f"`{ast.unparse(node)}` is not a field path")
    keys.reverse()
    return current.id, tuple(keys)


def _resource_field(keys: tuple[str | int, ...], source: str) -> Any:
    """`Field`, or the kind's name marker, for a resource path; deeper paths are unplannable."""
    if keys in (("tenant",), ("id",)):
        return Field(str(keys[0]))
    if keys == ("kind",):
        return "kind"
    if len(keys) == 2 and keys[0] == "attributes" and isinstance(keys[1], str):
        return Field(f"attributes.{keys[1]}")
    raise Unplannable(
        f"`{source}`: plans read `resource.tenant`, `.id`, `.kind` or `.attributes.x`"
    )


def _path(node: ast.expr) -> _Fn:
    root, keys = _path_keys(node)
    if root == "resource":
        field = _resource_field(keys, ast.unparse(node))
        if field == "kind":
            return lambda env: env.resource["kind"]
        return lambda env: field

    def read(env: EvalEnv) -> Any:
        try:
            value: Any = getattr(env, root)
            for step in keys:
                value = read_step(value, step)
        except _EVAL_ERRORS:
            return ERROR
        return value

    return read


def _has(node: ast.expr) -> _Fn:
    root, keys = _path_keys(node)
    if root == "resource":
        if keys == ("attributes",):
            return lambda env: True
        field = _resource_field(keys, ast.unparse(node))
        if field == "kind":
            return lambda env: True
        return lambda env: Pred(present(field.name), False)
    read = _path(node)
    return lambda env: ERROR if (value := read(env)) is ERROR else value is not MISSING


def _sequence(node: ast.List | ast.Tuple) -> _Fn:
    items = [_compile(item) for item in node.elts]

    def build(env: EvalEnv) -> Any:
        values = [settled(item(env)) for item in items]
        if any(isinstance(value, Field | Pred) for value in values):
            raise Unplannable("a list holding resource fields is not supported in a plan")
        return ERROR if any(value is ERROR for value in values) else values

    return build


def _boolop(node: ast.BoolOp) -> _Fn:
    parts = [_compile(value) for value in node.values]
    conjunction = isinstance(node.op, ast.And)

    def combine(env: EvalEnv) -> Pred:
        result = as_pred(parts[0](env))
        for part in parts[1:]:
            # Left to right, short-circuiting as the runtime's all()/any() does.
            if result.true is (not conjunction) or result.error is True:
                return result
            following = as_pred(part(env))
            # The right side counts only where the left lets evaluation go on (docs/design).
            if conjunction:
                true = all_of(result.true, following.true)
                error = any_of(result.error, all_of(result.true, following.error))
            else:
                true = any_of(result.true, all_of(negate(result.error), following.true))
                error = any_of(result.error, all_of(negate(result.true), following.error))
            result = Pred(true, error)
        return result

    return combine


def _unaryop(node: ast.UnaryOp) -> _Fn:
    operand = _compile(node.operand)
    if isinstance(node.op, ast.Not):

        def invert(env: EvalEnv) -> Pred:
            inner = as_pred(operand(env))
            return Pred(inner.false, inner.error)

        return invert
    if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return lambda env: -value
    raise Unplannable(f"`{ast.unparse(node)}` is not supported in a plan")


def _compare(node: ast.Compare) -> _Fn:
    op_type = type(node.ops[0])
    op = COMPARATORS.get(op_type)
    if op is None or len(node.ops) != 1:
        raise Unplannable(f"`{ast.unparse(node)}` is not supported in a plan")
    left, right = _compile(node.left), _compile(node.comparators[0])

    def relate(env: EvalEnv) -> Any:
        a, b = settled(left(env)), settled(right(env))
        if a is ERROR or b is ERROR:
            return _RAISES
        if isinstance(a, Pred) or isinstance(b, Pred):
            raise Unplannable("comparing a resource-dependent test is not supported in a plan")
        if isinstance(a, Field) or isinstance(b, Field):
            true, error = field_relation(op_type, a, b)
            return Pred(true, error)
        try:
            return op(a, b)
        except _EVAL_ERRORS:
            return _RAISES

    return relate


def _call(node: ast.Call) -> _Fn:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or not node.args:
        raise Unplannable(f"`{ast.unparse(node)}` is not supported in a plan")
    name = node.func.id
    if name == "has":
        return _has(node.args[0])
    impl = FUNCTIONS[name]
    arguments = [_compile(argument) for argument in node.args]

    def call(env: EvalEnv) -> Any:
        values = [settled(argument(env)) for argument in arguments]
        if any(value is ERROR for value in values):
            return ERROR
        if any(isinstance(value, Field | Pred) for value in values):
            raise Unplannable(f"`{name}` of a resource field is not supported in a plan")
        try:
            return impl(env, *values)
        except _EVAL_ERRORS:
            return ERROR

    return call


_HANDLERS: Mapping[type[ast.expr], Callable[[Any], _Fn]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.Attribute: _path,
    ast.Subscript: _path,
    ast.List: _sequence,
    ast.Tuple: _sequence,
    ast.BoolOp: _boolop,
    ast.UnaryOp: _unaryop,
    ast.Compare: _compare,
    ast.Call: _call,
}
