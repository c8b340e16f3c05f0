"""The rule condition language: small, total, and compiled once when a bundle loads.

A strict subset of Python expression syntax, parsed with :mod:`ast` and compiled node by node
into closures (never ``eval``); request values are only data. Semantics that fail closed and
the reasons for them: docs/design/policy-language.md.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cnm_policy.errors import ConditionError, ConditionSyntaxError
from cnm_policy.policy._condition_runtime import (
    ARITY,
    CLOCK_FUNCTIONS,
    COMPARATORS,
    FUNCTIONS,
    MISSING,
    EvalEnv,
    as_bool,
    describe,
    read_step,
)
from cnm_policy.policy._network import check_literal_networks

__all__ = [
    "LITERAL_NAMES",
    "MAX_CONDITION_DEPTH",
    "MAX_CONDITION_LENGTH",
    "Condition",
    "EvalEnv",
    "compile_condition",
]


MAX_CONDITION_LENGTH = 4096  # characters; the default bundle's longest is under 200
MAX_CONDITION_DEPTH = 32  # nested expressions; the compiler recurses once per level


_Fn = Callable[[EvalEnv], Any]


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: its source text (for review output) and its evaluator."""

    source: str
    evaluate_fn: _Fn
    uses_clock: bool

    def evaluate(self, env: EvalEnv) -> bool:
        """The condition's verdict; raises ConditionError when it cannot be decided."""
        try:
            result = self.evaluate_fn(env)
        except ConditionError:
            raise
        except (TypeError, ValueError, KeyError, OverflowError, RecursionError) as exc:
            raise ConditionError(f"condition failed: {exc}") from exc
        if not isinstance(result, bool):
            raise ConditionError(f"condition gave {describe(result)}, not a boolean")
        return result


def compile_condition(source: str) -> Condition:
    """Parse and compile `source`; raises ConditionSyntaxError with a readable message."""
    if not isinstance(source, str) or not source.strip():
        raise ConditionSyntaxError("condition must be a non-empty string")
    if len(source) > MAX_CONDITION_LENGTH:
        message = f"is longer than {MAX_CONDITION_LENGTH} characters"
        raise ConditionSyntaxError(message, "condition_too_long")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        if "too many nested" in str(exc.msg):
            raise _too_deep() from None
        raise ConditionSyntaxError(f"does not parse: {exc.msg} at column {exc.offset}") from exc
    except (RecursionError, MemoryError):
        raise _too_deep() from None
    _check_depth(tree.body)
    compiler = _Compiler()
    fn = compiler.compile(tree.body)
    return Condition(source=source.strip(), evaluate_fn=fn, uses_clock=compiler.uses_clock)


def _too_deep() -> ConditionSyntaxError:
    message = f"is nested more than {MAX_CONDITION_DEPTH} levels deep"
    return ConditionSyntaxError(message, "condition_too_deep")


def _check_depth(root: ast.expr) -> None:
    """Refuse expressions nested past MAX_CONDITION_DEPTH before anything recurses over them."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_CONDITION_DEPTH:
            raise _too_deep()
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.expr)
        )


_ROOT_FIELDS: Mapping[str, frozenset[str]] = {
    "principal": frozenset({"id", "tenant", "roles", "attributes"}),
    "actor": frozenset({"id", "tenant", "roles", "attributes"}),  # null without an actor
    "resource": frozenset({"kind", "id", "tenant", "attributes"}),
}
_ROOTS_HINT = "names start at principal, actor, resource, context or action"
# The language's literals, in its own spelling and Python's.
LITERAL_NAMES: Mapping[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}


class _Compiler:
    """Turns an allow-listed AST into closures; any other node is a syntax error."""

    def __init__(self) -> None:
        self.uses_clock = False

    def compile(self, node: ast.expr) -> _Fn:
        handler = getattr(self, f"_{type(node).__name__.lower()}", None)
        if handler is None:
            raise ConditionSyntaxError(f"`{ast.unparse(node)}` is not allowed in a condition")
        fn: _Fn = handler(node)
        return fn

    def _constant(self, node: ast.Constant) -> _Fn:
        value = node.value
        if value is not None and not isinstance(value, bool | int | float | str):
            raise ConditionSyntaxError(f"literal `{ast.unparse(node)}` is not allowed")
        return lambda env: value

    def _list(self, node: ast.List | ast.Tuple) -> _Fn:
        items = [self.compile(item) for item in node.elts]
        return lambda env: [item(env) for item in items]

    _tuple = _list

    def _name(self, node: ast.Name) -> _Fn:
        if node.id in LITERAL_NAMES:
            value = LITERAL_NAMES[node.id]
            return lambda env: value
        if node.id == "action":
            return lambda env: env.action
        if node.id == "context":
            return lambda env: env.context
        if node.id in _ROOT_FIELDS:
            raise ConditionSyntaxError(
                f"`{node.id}` alone is not a value; use a field such as `{node.id}.attributes.x`"
            )
        raise ConditionSyntaxError(f"unknown name `{node.id}` ({_ROOTS_HINT})")

    def _attribute(self, node: ast.Attribute) -> _Fn:
        return self._path(node)

    def _subscript(self, node: ast.Subscript) -> _Fn:
        return self._path(node)

    def _path(self, node: ast.expr) -> _Fn:
        """A field path such as ``resource.attributes["vendor-id"]``: validated statically."""
        keys: list[str | int] = []
        current = node
        while isinstance(current, ast.Attribute | ast.Subscript):
            if isinstance(current, ast.Attribute):
                keys.append(current.attr)
            else:
                index = current.slice
                if not (
                    isinstance(index, ast.Constant)
                    and isinstance(index.value, str | int)
                    and not isinstance(index.value, bool)
                ):
                    raise ConditionSyntaxError(
                        f"`{ast.unparse(current)}`: only literal string or integer indexes"
                    )
                keys.append(index.value)
            current = current.value
        if not isinstance(current, ast.Name):
            raise ConditionSyntaxError(f"`{ast.unparse(node)}` is not a field path")
        keys.reverse()
        root = current.id
        if root in _ROOT_FIELDS:
            field = keys[0]
            if field not in _ROOT_FIELDS[root]:
                raise ConditionSyntaxError(_unknown_field(root, field))
            if field != "attributes" and len(keys) > 1:
                raise ConditionSyntaxError(f"`{root}.{field}` has no sub-fields")
        elif root != "context":
            raise ConditionSyntaxError(f"unknown name `{root}` ({_ROOTS_HINT})")
        steps = tuple(keys)

        def read(env: EvalEnv) -> Any:
            value: Any = getattr(env, root)
            for step in steps:
                value = read_step(value, step)
            return value

        return read

    def _boolop(self, node: ast.BoolOp) -> _Fn:
        parts = [self.compile(value) for value in node.values]
        if isinstance(node.op, ast.And):

            def all_of(env: EvalEnv) -> bool:
                return all(as_bool(part(env), "and") for part in parts)

            return all_of

        def any_of(env: EvalEnv) -> bool:
            return any(as_bool(part(env), "or") for part in parts)

        return any_of

    def _unaryop(self, node: ast.UnaryOp) -> _Fn:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not as_bool(operand(env), "not")
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value = node.operand.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return lambda env: -value
        raise ConditionSyntaxError(f"`{ast.unparse(node)}` is not allowed in a condition")

    def _compare(self, node: ast.Compare) -> _Fn:
        if len(node.ops) != 1:
            raise ConditionSyntaxError(
                f"`{ast.unparse(node)}`: chained comparisons are not allowed; join with `and`"
            )
        op = COMPARATORS.get(type(node.ops[0]))
        if op is None:
            raise ConditionSyntaxError(f"operator in `{ast.unparse(node)}` is not allowed")
        left = self.compile(node.left)
        right = self.compile(node.comparators[0])
        return lambda env: op(left(env), right(env))

    def _call(self, node: ast.Call) -> _Fn:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            names = ", ".join(sorted(FUNCTIONS))
            raise ConditionSyntaxError(
                f"unknown function `{ast.unparse(node.func)}` (available: {names})"
            )
        name = node.func.id
        arity = ARITY.get(name, 1)
        if node.keywords or len(node.args) != arity:
            count = "one argument" if arity == 1 else f"{arity} arguments"
            raise ConditionSyntaxError(f"`{name}` takes exactly {count}")
        if name == "has":
            if not isinstance(node.args[0], ast.Attribute | ast.Subscript):
                raise ConditionSyntaxError("`has` takes a field path such as `has(context.x)`")
            read = self._path(node.args[0])
            return lambda env: read(env) is not MISSING
        if name in CLOCK_FUNCTIONS:
            self.uses_clock = True
        impl = FUNCTIONS[name]
        if arity == 2:
            _check_literal_list(name, node.args[1])
            first, second = (self.compile(arg) for arg in node.args)
            return lambda env: impl(env, first(env), second(env))
        argument = self.compile(node.args[0])
        return lambda env: impl(env, argument(env))


def _check_literal_list(name: str, node: ast.expr) -> None:
    """Prefixes written into the condition are checked when the bundle loads."""
    if isinstance(node, ast.List | ast.Tuple | ast.Constant):
        items = node.elts if isinstance(node, ast.List | ast.Tuple) else [node]
        if all(isinstance(item, ast.Constant) for item in items):
            values = [item.value for item in items if isinstance(item, ast.Constant)]
            try:
                check_literal_networks(name, values)
            except ConditionError as exc:
                raise ConditionSyntaxError(str(exc)) from None


def _unknown_field(root: str, field: str | int) -> str:
    """A typo of a real field suggests it; anything else is probably an attribute."""
    if isinstance(field, int):
        return f"`{root}` cannot be indexed by a number"
    close = difflib.get_close_matches(field, sorted(_ROOT_FIELDS[root]), n=1)
    suggestion = f"`{close[0]}`" if close else f"`{root}.attributes.{field}`"
    return f"unknown field `{field}` of `{root}`; did you mean {suggestion}?"
