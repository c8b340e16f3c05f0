"""An allow rule's limits at plan time: the asked value is in the context, the bound may not be.

A rule over one of its limits does not allow; a limit that cannot be read (not a number, or
no asked value) fails the rule closed, as `evaluate._over_limits` does for one resource.
"""

from __future__ import annotations

import math
from typing import Any

from cnm_policy.engine._plan_conditions import ERROR, Pred, partial_expression, settled
from cnm_policy.engine._plan_nodes import (
    Field,
    Node,
    Unplannable,
    all_of,
    any_of,
    compare,
    is_type,
    negate,
)
from cnm_policy.policy import RuleDef
from cnm_policy.policy._condition_runtime import MISSING
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["limits_verdict"]

_RAISES = Pred(False, True)


def limits_verdict(rule: RuleDef, env: EvalEnv) -> Pred:
    """Where the request stays within every limit of `rule`, and where reading one raises."""
    within: list[Node] = []
    errors: list[Node] = []
    for limit in rule.limits:
        verdict = _one(limit.name, limit.source, env)
        within.append(verdict.true)
        errors.append(verdict.error)
    # Every limit is read (no short cut), so one that raises fails the rule wherever it raises.
    error = any_of(*errors)
    return Pred(all_of(*within, negate(error)), error)


def _one(name: str, source: str, env: EvalEnv) -> Pred:
    bound = settled(partial_expression(source)(env))
    if bound is ERROR:
        return _RAISES
    if isinstance(bound, Pred):
        raise Unplannable(f"limit `{name}` is a test, not a number")
    asked = _number(env.context.get(name, MISSING))
    if asked is None:
        return _RAISES
    if isinstance(bound, Field):
        # INVARIANT: a non-number bound raises in the decision, so it must block here too.
        return Pred(compare("ge", bound.name, asked), negate(is_type(bound.name, "number")))
    limit = _number(bound)
    if limit is None:
        return _RAISES
    return Pred(asked <= limit, False)


def _number(value: Any) -> float | None:
    """The value as the limit reads it, or ``None`` where reading it raises."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
