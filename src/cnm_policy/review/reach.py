"""How far a rule reaches, and when one reach contains another: the order lint and diff share.

"Does this still apply wherever that applied?" (lint) and "did access get wider?" (diff) both
reduce to one partial order on :class:`Reach` (scope, tenant pins, condition), defined here.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass

from cnm_policy.policy import Condition, RuleDef, Scope, is_within

__all__ = [
    "Reach",
    "condition_text",
    "rule_reach",
    "scope_covers",
    "tenants_cover",
]

# Which scopes contain which, for the same principal: own within subtree within any, and
# assigned within any. `assigned` and own/subtree are incomparable (different tenant sets).
_WITHIN: Mapping[Scope, frozenset[Scope]] = {
    Scope.OWN: frozenset({Scope.OWN}),
    Scope.SUBTREE: frozenset({Scope.OWN, Scope.SUBTREE}),
    Scope.ASSIGNED: frozenset({Scope.ASSIGNED}),
    Scope.ANY: frozenset(Scope),
}


def scope_covers(outer: Scope, inner: Scope) -> bool:
    """True when every tenant `inner` reaches is also reached by `outer`, for any principal."""
    return inner in _WITHIN[outer]


def tenants_cover(outer: tuple[str, ...], inner: tuple[str, ...]) -> bool:
    """True when tenant pins `outer` admit every resource tenant that pins `inner` admit.

    No pins means every tenant; a pinned reach never covers an unpinned one.
    """
    if not outer:
        return True
    if not inner:
        return False
    return all(any(is_within(tenant, root) for root in outer) for tenant in inner)


def condition_text(condition: Condition | None) -> str | None:
    """A condition's canonical text, so whitespace or redundant parentheses are no change."""
    if condition is None:
        return None
    # INVARIANT: the condition compiled, so its source is a valid Python expression.
    return ast.unparse(ast.parse(condition.source, mode="eval"))


@dataclass(frozen=True, slots=True)
class Reach:
    """Where and when a grant applies: scope, optional tenant pins, optional condition."""

    scope: Scope
    tenants: tuple[str, ...] = ()
    condition: str | None = None
    crosses: bool = False  # subtree reach that also enters self-managed tenants

    def covers(self, other: Reach) -> bool:
        """True when this reach applies to every request `other` applies to.

        Conditions are compared as text: no condition covers any condition, and a condition
        covers only itself (two different expressions are treated as unrelated).
        """
        return (
            scope_covers(self.scope, other.scope)
            and tenants_cover(self.tenants, other.tenants)
            and (self.condition is None or self.condition == other.condition)
            and (self.crosses or not other.crosses or self.scope is not Scope.SUBTREE)
        )

    def describe_scope(self) -> str:
        """``subtree``, or ``any within `acme`, `beta``` when pinned to tenants."""
        scope = self.scope.value + (" crossing self-managed tenants" if self.crosses else "")
        if not self.tenants:
            return scope
        pins = ", ".join(f"`{tenant}`" for tenant in self.tenants)
        return f"{scope} within {pins}"

    def sort_key(self) -> tuple[str, tuple[str, ...], str]:
        """A total order for stable output (``None`` conditions first)."""
        return (self.scope.value, self.tenants, self.condition or "")


BREAK_GLASS_TERM = "break_glass_justified(context)"  # how review output names the requirement


def rule_reach(rule: RuleDef) -> Reach:
    """The reach of one rule, with its condition in canonical text; an actor requirement or
    a break-glass justification counts as part of the condition."""
    parts = [condition_text(rule.condition), *_governance_terms(rule)]
    condition = " and ".join(f"({p})" if " or " in p else p for p in parts if p) or None
    crosses = rule.crosses_self_managed and rule.scope is Scope.SUBTREE
    return Reach(rule.scope, tuple(sorted(rule.tenants)), condition, crosses)


def conditional(rule: RuleDef) -> bool:
    """Whether the rule applies only to some requests of its grants (not always)."""
    return rule.condition is not None or any(_governance_terms(rule))


def _governance_terms(rule: RuleDef) -> list[str]:
    terms = []
    if rule.actor is not None:
        terms.append("has(actor.id)" if rule.actor == "required" else "not has(actor.id)")
    if rule.break_glass is not None:
        terms.append(BREAK_GLASS_TERM)
    terms.extend(f"context.{limit.name} <= {limit.source}" for limit in rule.limits)
    return terms
