"""Decisions computed the natural casbin way: ``Enforcer.enforce`` scanning every row.

The yardstick the indexed evaluator is tested against and the benchmarks' baseline; it never
serves decisions, its cost grows with the number of rows (docs/design/engine.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from cnm_policy.engine._governance import (
    actor_refusal,
    barrier_between,
    break_glass_justified,
    side_refusal,
)
from cnm_policy.engine.casbin_backend import CasbinReference
from cnm_policy.engine.evaluate import in_scope, make_env
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import ConditionError
from cnm_policy.model import Resource
from cnm_policy.policy import RuleDef, Scope
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
        if not _governed(rule, env, snapshot.bundle.self_managed):
            return False
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
    actor: PreparedPrincipal | None = None,
    *,
    allows_only: bool = False,
) -> bool | None:
    """casbin's answer over every row (or the allow rows only); None if a condition failed."""
    bundle = snapshot.bundle
    if side_refusal("principal", principal, bundle.internal_tenants) is not None or (
        actor is not None
        and actor_refusal(actor, resource.tenant, bundle.internal_tenants, bundle.self_managed)
    ):
        return False
    env = make_env(principal, action, resource, context, now, actor)
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
    actor: PreparedPrincipal | None = None,
) -> bool:
    """casbin's verdict for one validated request; condition errors deny (fail closed)."""
    return _enforce(snapshot, principal, action, resource, context, now, actor) is True


def reference_outcome(
    snapshot: PolicySnapshot,
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
    actor: PreparedPrincipal | None = None,
) -> Outcome:
    """casbin's verdict, and whether any allow was in play (else the default deny decided)."""
    request = (snapshot, principal, action, resource, context, now, actor)
    # None counts as in play: an allow whose condition failed was there, and its error decides.
    if _enforce(*request, allows_only=True) is False:
        return "default deny"
    return "allow" if _enforce(*request) is True else "deny"


def _governed(rule: RuleDef, env: EvalEnv, barriers: frozenset[str]) -> bool:
    """The rule's actor requirement, self-managed barriers and break-glass justification."""
    if rule.actor is not None and (rule.actor == "required") is (not env.actor):
        return False
    home, tenant = env.principal["tenant"], env.resource["tenant"]
    if (
        rule.scope is Scope.SUBTREE
        and not rule.crosses_self_managed
        and barrier_between(tenant, home, barriers)
    ):
        return False
    return rule.break_glass is None or break_glass_justified(env.context)
