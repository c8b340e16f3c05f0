"""Decisions computed the natural casbin way: ``Enforcer.enforce`` scanning every row.

This is the semantic yardstick for the indexed evaluator (property tests assert both agree on
every generated request) and the baseline the benchmarks measure against. It is not used to
serve decisions: its cost grows linearly with the number of rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnm_policy.engine.casbin_backend import CasbinReference
from cnm_policy.engine.evaluate import in_scope, make_env
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.model import Resource
from cnm_policy.policy import ConditionError, Scope
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["build_reference", "reference_allowed"]


def build_reference(snapshot: PolicySnapshot) -> CasbinReference:
    """A casbin enforcer over `snapshot`'s rows, wired to the engine's own predicates."""
    rules = {rule.id: rule for rule in snapshot.bundle.rules}

    def scope_matches(scope: str, tenants: str, principal: Any, resource: Any) -> bool:
        return in_scope(Scope(scope), tuple(tenants.split()), principal, resource.tenant)

    def holds(rule_id: str, env: EvalEnv) -> bool:
        condition = rules[rule_id].condition
        return True if condition is None else condition.evaluate(env)

    return CasbinReference(snapshot.casbin_rows(), snapshot.casbin_links(), scope_matches, holds)


def reference_allowed(
    snapshot: PolicySnapshot,
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
) -> bool:
    """casbin's verdict for one validated request; condition errors deny (fail closed)."""
    if principal.mixed_sides:
        return False
    env = make_env(principal, action, resource, context, now)
    try:
        return snapshot.reference().enforce(
            tuple(principal.principal.roles), resource.kind, action, principal, resource, env
        )
    except ConditionError:
        return False
