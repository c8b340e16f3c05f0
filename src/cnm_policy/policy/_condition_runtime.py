"""Run-time semantics of the condition language: field reads, comparisons, functions.

Kept apart from the compiler so the rules of evaluation (null for missing attributes, strict
booleans, typed comparisons where a type mismatch is an error, clock functions that record
expiry) can be read in one place.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from cnm_policy.errors import ConditionError
from cnm_policy.policy._network import NETWORK_FUNCTIONS

__all__ = [
    "ARITY",
    "CLOCK_FUNCTIONS",
    "COMPARATORS",
    "FUNCTIONS",
    "MISSING",
    "EvalEnv",
    "as_bool",
    "describe",
    "read_step",
    "type_of",
]


class _Missing:
    """Marker for an attribute the request did not carry; compares equal to ``null`` only."""

    def __repr__(self) -> str:
        return "null"


MISSING: Any = _Missing()
_NOBODY: Mapping[str, Any] = {}


class EvalEnv:
    """The request as seen by conditions, plus when a time-based answer stops being valid."""

    __slots__ = ("action", "actor", "context", "now", "principal", "resource", "valid_until")

    def __init__(
        self,
        principal: Mapping[str, Any],
        action: str,
        resource: Mapping[str, Any],
        context: Mapping[str, Any],
        now: float,
        *,
        actor: Mapping[str, Any] = _NOBODY,
    ) -> None:
        self.principal = principal
        self.actor = actor  # who acts on the principal's behalf; empty when nobody does
        self.action = action
        self.resource = resource
        self.context = context
        self.now = now
        self.valid_until: float | None = None

    def expires_at(self, moment: float) -> None:
        """Record that the answer being computed may change at `moment` (epoch seconds)."""
        if moment > self.now and (self.valid_until is None or moment < self.valid_until):
            self.valid_until = moment


def read_step(value: Any, key: str | int) -> Any:
    if value is MISSING or value is None:
        return MISSING
    if isinstance(value, Mapping):
        return value.get(key, MISSING) if isinstance(key, str) else MISSING
    if isinstance(value, list | tuple) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else MISSING
    raise ConditionError(f"cannot read `{key}` of {describe(value)}")


_ARTICLES = {
    "null": "null",
    "boolean": "a boolean",
    "number": "a number",
    "string": "a string",
    "list": "a list",
    "object": "an object",
    "unsupported": "an unsupported value",
}


def type_of(value: Any) -> str:
    """The condition language's type name; int and float are one `number`, a bool is none."""
    if value is MISSING or value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return "unsupported"


def describe(value: Any) -> str:
    return _ARTICLES[type_of(value)]


def as_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConditionError(f"`{where}` needs booleans, got {describe(value)}")
    return value


def _norm(value: Any) -> Any:
    return None if value is MISSING else value


_SCALARS = frozenset({bool, int, float, str})


def _equal(left: Any, right: Any, where: str = "==") -> bool:
    """Typed equality: null equals only null; any other type mismatch is an error."""
    if type(left) is type(right) and type(left) in _SCALARS:
        return bool(left == right)  # the common case: two plain values of one type
    left, right = _norm(left), _norm(right)
    if left is None or right is None:
        return left is right
    kind = type_of(left)
    # INVARIANT: two non-null values of different types never compare silently, at any depth:
    # every position both sides fill is compared (raising on a mismatch) before lengths or key
    # sets answer, so a list or object of another shape is unequal only when no pair disagrees.
    if kind != type_of(right) or kind == "unsupported":
        raise ConditionError(f"`{where}` compares {describe(left)} with {describe(right)}")
    if kind == "list":
        pairs = _all_equal(zip(left, right, strict=False), where)
        return pairs and len(left) == len(right)
    if kind == "object":
        pairs = _all_equal(((left[key], right[key]) for key in left if key in right), where)
        return pairs and left.keys() == right.keys()
    return bool(left == right)


def _all_equal(pairs: Iterable[tuple[Any, Any]], where: str) -> bool:
    # Every pair is compared, so a type mismatch errors wherever it sits.
    results = [_equal(a, b, where) for a, b in pairs]
    return all(results)


def _not_equal(left: Any, right: Any) -> bool:
    return not _equal(left, right, "!=")


def _ordered(left: Any, right: Any, where: str) -> tuple[Any, Any]:
    numbers = (int, float)
    if (
        isinstance(left, numbers)
        and isinstance(right, numbers)
        and not isinstance(left, bool)
        and not isinstance(right, bool)
    ) or (isinstance(left, str) and isinstance(right, str)):
        return left, right
    raise ConditionError(f"`{where}` compares {describe(left)} with {describe(right)}")


def _contains(item: Any, container: Any, where: str = "in") -> bool:
    """`item in container`: list elements compare typed (all of them); object keys are strings."""
    item, container = _norm(item), _norm(container)
    if isinstance(container, list | tuple):
        return any([_equal(item, candidate, where) for candidate in container])
    if isinstance(container, Mapping):
        if item is None:
            return False
        if not isinstance(item, str):
            raise ConditionError(f"`{where}` looks up {describe(item)} among an object's keys")
        return item in container
    raise ConditionError(
        f"`{where}` needs a list or an object on the right, got {describe(container)}"
    )


def _not_contains(item: Any, container: Any) -> bool:
    return not _contains(item, container, "not in")


def _less(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b, "<")
    return bool(x < y)


def _less_equal(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b, "<=")
    return bool(x <= y)


def _greater(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b, ">")
    return bool(x > y)


def _greater_equal(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b, ">=")
    return bool(x >= y)


COMPARATORS: Mapping[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: _equal,
    ast.NotEq: _not_equal,
    ast.Lt: _less,
    ast.LtE: _less_equal,
    ast.Gt: _greater,
    ast.GtE: _greater_equal,
    ast.In: _contains,
    ast.NotIn: _not_contains,
}


def _timestamp(value: Any, what: str) -> float:
    """Epoch seconds from a number or an RFC 3339 string with an explicit offset."""
    value = _norm(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConditionError(f"{what} `{value}` is not an RFC 3339 timestamp") from None
        if parsed.tzinfo is None:
            raise ConditionError(f"{what} `{value}` has no time zone offset")
        return parsed.timestamp()
    raise ConditionError(f"{what} must be a timestamp, got {describe(value)}")


def _within_window(env: EvalEnv, window: Any) -> bool:
    """``now`` inside ``[start, end)``; the decision expires at the next boundary."""
    if not isinstance(window, Mapping):
        if _norm(window) is None:
            return False
        raise ConditionError(
            f"a window must be an object with start and end, got {describe(window)}"
        )
    start = _timestamp(window.get("start", MISSING), "window start")
    end = _timestamp(window.get("end", MISSING), "window end")
    if end <= start:
        raise ConditionError("window end must be after its start")
    if env.now < start:
        env.expires_at(start)
        return False
    if env.now < end:
        env.expires_at(end)
        return True
    return False


def _before(env: EvalEnv, moment: Any) -> bool:
    at = _timestamp(moment, "time")
    if env.now < at:
        env.expires_at(at)
        return True
    return False


def _after(env: EvalEnv, moment: Any) -> bool:
    at = _timestamp(moment, "time")
    if env.now >= at:
        return True
    env.expires_at(at)
    return False


def _lower(env: EvalEnv, value: Any) -> str:
    if not isinstance(value, str):
        raise ConditionError(f"`lower` needs a string, got {describe(value)}")
    return value.lower()


def _length(env: EvalEnv, value: Any) -> int:
    if not isinstance(value, str | list | tuple | Mapping):
        raise ConditionError(f"`len` needs a string, list or object, got {describe(value)}")
    return len(value)


CLOCK_FUNCTIONS = frozenset({"within_window", "before", "after"})
# Each takes the environment, then its arguments (one, unless ARITY says otherwise).
FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "within_window": _within_window,
    "before": _before,
    "after": _after,
    "lower": _lower,
    "len": _length,
    "has": lambda env, value: value is not MISSING,  # compiled specially; listed for help text
    **NETWORK_FUNCTIONS,
}
ARITY: Mapping[str, int] = {name: 2 for name in NETWORK_FUNCTIONS}
