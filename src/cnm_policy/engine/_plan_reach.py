"""Which tenants a rule reaches at plan time, and whether a break-glass rule may count at all.

Scope, tenant pins and self-managed barriers become tenant nodes met segment-wise, so a rule
that reaches nothing drops out; the break-glass justification is read from the context once.
Both follow `evaluate.in_scope` and `decide` (docs/design/plans.md, governance.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cnm_policy.engine._governance import break_glass_justified
from cnm_policy.engine._plan_conditions import Pred
from cnm_policy.engine._plan_nodes import Node, all_of, any_of, compare, negate, within
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.errors import ConditionError
from cnm_policy.policy import RuleDef, Scope, is_within

__all__ = ["barriers_below", "glass_gate", "reach"]

_SKIPPED = Pred(False, False)
_RAISES = Pred(False, True)


def barriers_below(home: str, self_managed: Iterable[str]) -> tuple[str, ...]:
    """The self-managed tenants strictly below `home`: where its subtree reach stops."""
    return tuple(sorted(t for t in self_managed if t != home and is_within(t, home)))


def reach(rule: RuleDef, principal: PreparedPrincipal, barriers: tuple[str, ...]) -> Node:
    """The tenants `rule`'s scope and pins reach for `principal` (False: none)."""
    own = principal.principal.tenant
    if rule.scope is Scope.ANY:
        roots: list[str] | None = None
    elif rule.scope is Scope.OWN:
        if rule.tenants and not any(is_within(own, pin) for pin in rule.tenants):
            return False
        return compare("eq", "tenant", own)
    elif rule.scope is Scope.SUBTREE:
        roots = [own]
    else:
        roots = list(principal.assigned)
    if not rule.tenants:
        found = True if roots is None else any_of(*(within(root) for root in roots))
    elif roots is None:
        found = any_of(*(within(pin) for pin in rule.tenants))
    else:
        met = {deeper for root in roots for pin in rule.tenants if (deeper := _deeper(root, pin))}
        found = any_of(*(within(root) for root in sorted(met)))
    if rule.scope is Scope.SUBTREE and barriers and not rule.crosses_self_managed:
        # INVARIANT: subtree reach stops at a self-managed tenant below home (barrier_between).
        return all_of(found, negate(any_of(*(within(barrier) for barrier in barriers))))
    return found


def glass_gate(rule: RuleDef, context: Mapping[str, Any]) -> Pred | None:
    """For a break-glass rule: skipped without a justification, raising for a bad one;
    ``None`` when the rule is evaluated as usual."""
    if rule.break_glass is None:
        return None
    try:
        return None if break_glass_justified(context) else _SKIPPED
    except ConditionError:
        return _RAISES


def _deeper(a: str, b: str) -> str | None:
    if is_within(a, b):
        return a
    return b if is_within(b, a) else None
