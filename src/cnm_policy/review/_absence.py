"""Which request fields, left out (or null), decide a condition without an error.

Absence is the one input that can quietly skip a deny (docs/design/policy-language.md); lint
asks which fields do so here, and which ones a condition already tests for absence.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from cnm_policy.policy.conditions import LITERAL_NAMES

__all__ = ["Absence", "Kind", "absence_of"]

# Only these fields can be missing from a request; ids, tenants and roles are always present.
_OPTIONAL_ROOTS = ("principal.attributes", "resource.attributes", "context")

# How absence decides, for lint's hint: against `true` / `false`, outside a literal list
# (`in [...]`), or any other way (a non-boolean literal, another field, a window).
Kind = Literal["true", "false", "list", "other"]
Found = dict[str, Kind]  # path -> how its absence decides
Sets = tuple[Found, Found]  # (absent makes it false, absent makes it true)


@dataclass(frozen=True, slots=True)
class Absence:
    """Fields whose absence makes the condition false (`skips`) or true (`grants`), untested."""

    skips: tuple[str, ...]
    grants: tuple[str, ...] = ()
    tested: frozenset[str] = field(default_factory=frozenset)
    skip_kind: Kind = "other"  # shared by every skip, else "other"
    grant_kind: Kind = "other"


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
    skips = {path: kind for path, kind in false_when.items() if path not in tested}
    grants = {path: kind for path, kind in true_when.items() if path not in tested}
    return Absence(
        tuple(sorted(skips)), tuple(sorted(grants)), frozenset(tested), _one(skips), _one(grants)
    )


def _one(found: Found) -> Kind:
    kinds = set(found.values())
    return kinds.pop() if len(kinds) == 1 else "other"


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


def _boolean(node: ast.expr) -> Kind:
    """`true` / `false` for a boolean literal, else `other`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return "true" if node.value else "false"
    if isinstance(node, ast.Name) and node.id in ("true", "True", "false", "False"):
        return "true" if node.id in ("true", "True") else "false"
    return "other"


def _is_field(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute | ast.Subscript) or (
        isinstance(node, ast.Name) and node.id not in LITERAL_NAMES
    )


def _union(parts: Iterable[Found]) -> Found:
    merged: Found = {}
    for part in parts:
        merged = part | merged  # the first operand's kind wins
    return merged


def _intersection(parts: list[Found]) -> Found:
    return {path: kind for path, kind in parts[0].items() if all(path in p for p in parts)}


def _walk(node: ast.expr, tested: set[str]) -> Sets:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        false_when, true_when = _walk(node.operand, tested)
        return true_when, false_when
    if isinstance(node, ast.BoolOp):
        parts = [_walk(value, tested) for value in node.values]
        falses = [p[0] for p in parts]
        trues = [p[1] for p in parts]
        if isinstance(node.op, ast.And):
            return _union(falses), _intersection(trues)
        return _intersection(falses), _union(trues)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        op, right = node.ops[0], node.comparators[0]
        if isinstance(op, ast.Eq | ast.NotEq):
            return _equality(node.left, isinstance(op, ast.Eq), right, tested)
        if isinstance(op, ast.In | ast.NotIn):
            return _membership(node.left, isinstance(op, ast.In), right)
        return {}, {}  # ordering an absent field is an error, not a skip
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        path = _optional_path(node.args[0])
        if path is not None and node.func.id == "has":
            tested.add(path)
            return {path: "other"}, {}
        if path is not None and node.func.id == "within_window":
            return {path: "other"}, {}  # no window given reads as "not inside one"
    return {}, {}


def _equality(left: ast.expr, equals: bool, right: ast.expr, tested: set[str]) -> Sets:
    """`==` / `!=`: an absent side is null, unequal to a literal or (present) field, no error."""
    false_when: Found = {}
    true_when: Found = {}
    for side, other in ((left, right), (right, left)):
        path = _optional_path(side)
        if path is None:
            continue
        if _is_null(other):
            tested.add(path)  # `x == null` / `x != null` states that absence was considered
            equal_when_absent = True
        else:
            equal_when_absent = False
        holds = equal_when_absent == equals
        (true_when if holds else false_when)[path] = _boolean(other)
    return false_when, true_when


def _membership(item: ast.expr, is_in: bool, container: ast.expr) -> Sets:
    """`in` / `not in`: an absent item is null; an absent container is an error, not a skip."""
    path = _optional_path(item)
    if path is None:
        return {}, {}
    kind: Kind = "other"
    if isinstance(container, ast.List | ast.Tuple):
        contained = any(_is_null(element) for element in container.elts)
        kind = "list" if is_in and not contained else "other"  # the remedy: list null
    elif _is_field(container):
        contained = False  # a list of values or an object's keys: null is neither, mostly
    else:
        return {}, {}  # `in` a string or a number is an error
    holds = contained == is_in
    return ({}, {path: kind}) if holds else ({path: kind}, {})
