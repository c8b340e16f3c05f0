"""Parameterised limits: an allow that holds only up to a value the rule computes.

"A customer may change a circuit's bandwidth up to its contracted rate" is one rule with
``limits: {bandwidth_mbps: principal.attributes.contracted_mbps}``; the request asks for a value
in ``context.bandwidth_mbps``. Asking above the limit is a deny that says so (TM Forum TMF672
models permissions with such limits); semantics in docs/design/obligations.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cnm_policy.errors import ConditionError, ConditionSyntaxError
from cnm_policy.policy._condition_runtime import MISSING, EvalEnv, describe
from cnm_policy.policy._fields import IDENT, Report, excerpt
from cnm_policy.policy._yaml import LineDict
from cnm_policy.policy.bundle import Effect
from cnm_policy.policy.conditions import compile_condition

__all__ = ["LimitDef", "parse_limits"]

MAX_LIMITS: Final = 8  # per rule


@dataclass(frozen=True, slots=True)
class LimitDef:
    """One limit: its name (also the context field carrying the asked value) and its bound."""

    name: str
    source: str  # as written, for review output
    bound: Callable[[EvalEnv], Any]

    def exceeded(self, env: EvalEnv) -> tuple[float, float] | None:
        """``(limit, asked)`` when the request asks above the limit, else ``None``;
        raises ConditionError when either is not a number (the rule then fails closed)."""
        try:
            bound = self.bound(env)
        except (TypeError, ValueError, KeyError, OverflowError, RecursionError) as exc:
            raise ConditionError(f"limit `{self.name}` failed: {exc}") from exc
        limit = _number(bound, f"limit `{self.name}` ({self.source})")
        asked = env.context.get(self.name, MISSING)
        if asked is MISSING or asked is None:
            raise ConditionError(
                f"limit `{self.name}`: the request carries no `context.{self.name}`"
            )
        value = _number(asked, f"asked `context.{self.name}`")
        return (limit, value) if value > limit else None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConditionError(f"{what} must be a finite number, got {describe(value)}")
    return float(value)


def parse_limits(
    node: LineDict, rule_id: str, effect: Effect | None, file: str, report: Report
) -> tuple[LimitDef, ...] | None:
    """The `limits` of a rule, or ``None`` after reporting what is wrong with them."""
    value = node.get("limits", {})
    line = node.line_of("limits")
    if not isinstance(value, dict) or len(value) > MAX_LIMITS:
        report.error(
            "invalid_type",
            f"`limits` of rule `{rule_id}` must be a mapping of at most {MAX_LIMITS} names",
            file,
            line,
        )
        return None
    if value and effect is Effect.DENY:
        report.error("invalid_limit", f"rule `{rule_id}`: limits belong on allow rules", file, line)
        return None
    limits: list[LimitDef] = []
    for name, bound in value.items():
        limit = _limit(name, bound, file, line, report)
        if limit is None:
            return None
        limits.append(limit)
    return tuple(limits)


def _limit(name: Any, bound: Any, file: str, line: int, report: Report) -> LimitDef | None:
    if not isinstance(name, str) or not IDENT.fullmatch(name):
        report.error("invalid_limit", f"limit name `{excerpt(name)}` is not a name", file, line)
        return None
    if isinstance(bound, int | float) and not isinstance(bound, bool) and math.isfinite(bound):
        constant = float(bound)
        return LimitDef(name, str(bound), lambda env: constant)
    if not isinstance(bound, str):
        report.error(
            "invalid_limit",
            f"limit `{name}` must be a number or an expression, got `{excerpt(bound)}`",
            file,
            line,
        )
        return None
    try:
        compiled = compile_condition(bound)
    except ConditionSyntaxError as exc:
        report.error(exc.code, f"limit `{name}` `{excerpt(bound)}` {exc}", file, line)
        return None
    return LimitDef(name, bound, compiled.evaluate_fn)
