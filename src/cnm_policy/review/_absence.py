"""Which request fields, left out (or null), decide a condition without an error.

Comparing mismatched types is an error, and an error forces a deny, so the one value a caller
can send to skip a deny rule (or meet an allow's negated test) quietly is *nothing*: a missing
attribute reads as null, and null only equals null. Lint asks this module which fields make a
condition false (or true) that way, and which fields the condition tests for absence itself
(``has(x)``, ``x == null``, ``x != null``), which states that absence was considered.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["Absence", "absence_of"]

# Only these fields can be missing from a request; ids, tenants and roles are always present.
_OPTIONAL_ROOTS = ("principal.attributes", "resource.attributes", "context")


@dataclass(frozen=True, slots=True)
class Absence:
    """Fields whose absence makes the condition false (`skips`) or true (`grants`), minus the
    fields it tests for absence itself (`tested`)."""

    skips: tuple[str, ...]
    grants: tuple[str, ...] = ()
    tested: frozenset[str] = field(default_factory=frozenset)


def absence_of(source: str) -> Absence:
    """Analyse a condition that already compiled (so it parses); best effort, never raises."""
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, RecursionError, ValueError):
        return Absence(())
    tested: set[str] = set()
    try:
        false_when, true_when = _walk(tree.body, tested)
    except RecursionError:
        return Absence(())
    return Absence(
        tuple(sorted(false_when - tested)), tuple(sorted(true_when - tested)), frozenset(tested)
    )


def _optional_path(node: ast.expr) -> str | None:
    """The dotted text of a request field that may be absent, else None."""
    if not isinstance(node, ast.Attribute | ast.Subscript):
        return None
    text = ast.unparse(node)
    return text if text.startswith(_OPTIONAL_ROOTS) else None


def _is_null(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and node.value is None) or (
        isinstance(node, ast.Name) and node.id in ("null", "None")
    )


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id in ("true", "false", "null", "True", "False", "None")
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.operand, ast.Constant)
    return False


Sets = tuple[set[str], set[str]]  # (absent makes it false, absent makes it true)


def _walk(node: ast.expr, tested: set[str]) -> Sets:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        false_when, true_when = _walk(node.operand, tested)
        return true_when, false_when
    if isinstance(node, ast.BoolOp):
        parts = [_walk(value, tested) for value in node.values]
        falses = [p[0] for p in parts]
        trues = [p[1] for p in parts]
        if isinstance(node.op, ast.And):
            return set().union(*falses), set.intersection(*trues)
        return set.intersection(*falses), set().union(*trues)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return _compare(node.left, node.ops[0], node.comparators[0], tested)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        path = _optional_path(node.args[0])
        if path is not None and node.func.id == "has":
            tested.add(path)
            return {path}, set()
        if path is not None and node.func.id == "within_window":
            return {path}, set()  # no window given reads as "not inside one"
    return set(), set()


def _compare(left: ast.expr, op: ast.cmpop, right: ast.expr, tested: set[str]) -> Sets:
    path = _optional_path(left)
    other = right
    if path is None and isinstance(op, ast.Eq | ast.NotEq):
        path, other = _optional_path(right), left
    if path is None:
        return set(), set()
    if isinstance(op, ast.Eq | ast.NotEq) and _is_literal(other):
        equal_when_absent = _is_null(other)
        if equal_when_absent:
            tested.add(path)
        holds_when_absent = equal_when_absent == isinstance(op, ast.Eq)
    elif isinstance(op, ast.In | ast.NotIn) and isinstance(other, ast.List | ast.Tuple):
        listed = any(_is_null(item) for item in other.elts)
        holds_when_absent = listed == isinstance(op, ast.In)
    else:
        return set(), set()  # ordering and `in` an absent container are errors, not skips
    return (set(), {path}) if holds_when_absent else ({path}, set())
