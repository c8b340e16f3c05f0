"""Decisions computed the natural casbin way: ``Enforcer.enforce`` scanning every row.

The yardstick the indexed evaluator is tested against and the benchmarks' baseline; it never
serves decisions, its cost grows with the number of rows (docs/design/engine.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from cnm_policy.engine.casbin_backend import CasbinReference
from cnm_policy.engine.evaluate import in_scope, make_env
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import ConditionError
from cnm_policy.model import Resource
from cnm_policy.policy import Scope
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["Outcome", "build_reference", "reference_allowed", "reference_outcome"]

Outcome = Literal["allow", "deny", "default deny"]


def build_reference(snapshot: PolicySnapshot, *, allows_only: bool = False) -> CasbinReference:
    """A casbin enforcer over `snapshot`'s rows (only its allow rows if `allows_only`)."""
    rules = {rule.id: rule for rule in snapshot.bundle.rules}

    def scope_matches(scope: str, tenants: str, principal: Any, resource: Any) -> bool:
        return in_scope(Scope(scope), tuple(tenants.split()), principal, resource.tenant)

    def holds(rule_id: str, env: EvalEnv) -> bool:
        rule = rules[rule_id]
        if rule.condition is not None and not rule.condition.evaluate(env):
            return False
        # An allow asked above its limit is still in play (its limit decides the deny).
        return allows_only or all(limit.exceeded(env) is None for limit in rule.limits)

    rows = [row for row in snapshot.casbin_rows() if not allows_only or row[-1] == "allow"]
    return CasbinReference(rows, snapshot.casbin_links(), scope_matches, holds)


def _enforce(
    snapshot: PolicySnapshot,
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
    *,
    allows_only: bool = False,
) -> bool | None:
    """casbin's answer over every row (or the allow rows only); None if a condition failed."""
    if principal.mixed_sides:
        return False
    env = make_env(principal, action, resource, context, now)
    try:
        return snapshot.reference(allows_only=allows_only).enforce(
            tuple(principal.principal.roles), resource.kind, action, principal, resource, env
        )
    except ConditionError:
        return None


def reference_allowed(
    snapshot: PolicySnapshot,
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
) -> bool:
    """casbin's verdict for one validated request; condition errors deny (fail closed)."""
    return _enforce(snapshot, principal, action, resource, context, now) is True


def reference_outcome(
    snapshot: PolicySnapshot,
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
) -> Outcome:
    """casbin's verdict, and whether any allow was in play (else the default deny decided)."""
    request = (snapshot, principal, action, resource, context, now)
    # None counts as in play: an allow whose condition failed was there, and its error decides.
    if _enforce(*request, allows_only=True) is False:
        return "default deny"
    return "allow" if _enforce(*request) is True else "deny"
