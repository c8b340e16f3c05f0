"""Decisions computed the natural casbin way: ``Enforcer.enforce`` scanning every row.

This is the semantic yardstick for the indexed evaluator (property tests assert both agree on
every generated request, down to whether the default deny or a deny rule decided) and the
baseline the benchmarks measure against. It is not used to serve decisions: its cost grows
linearly with the number of rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from cnm_policy.engine.casbin_backend import CasbinReference
from cnm_policy.engine.evaluate import in_scope, make_env
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.model import Resource
from cnm_policy.policy import ConditionError, Scope
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["Outcome", "build_reference", "reference_allowed", "reference_outcome"]

Outcome = Literal["allow", "deny", "default deny"]


def build_reference(snapshot: PolicySnapshot, *, allows_only: bool = False) -> CasbinReference:
    """A casbin enforcer over `snapshot`'s rows (only its allow rows if `allows_only`)."""
    rules = {rule.id: rule for rule in snapshot.bundle.rules}

    def scope_matches(scope: str, tenants: str, principal: Any, resource: Any) -> bool:
        return in_scope(Scope(scope), tuple(tenants.split()), principal, resource.tenant)

    def holds(rule_id: str, env: EvalEnv) -> bool:
        condition = rules[rule_id].condition
        return True if condition is None else condition.evaluate(env)

    rows = [row for row in snapshot.casbin_rows() if not allows_only or row[-1] == "allow"]
    return CasbinReference(rows, snapshot.casbin_links(), scope_matches, holds)


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


def reference_outcome(
    snapshot: PolicySnapshot,
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
) -> Outcome:
    """casbin's verdict, and whether any allow was in play (else the default deny decided)."""
    if principal.mixed_sides:
        return "default deny"
    env = make_env(principal, action, resource, context, now)
    try:
        in_play = snapshot.reference(allows_only=True).enforce(
            tuple(principal.principal.roles), resource.kind, action, principal, resource, env
        )
    except ConditionError:
        in_play = True  # an allow whose condition failed was in play: its error decides
    if not in_play:
        return "default deny"
    return (
        "allow"
        if reference_allowed(snapshot, principal, action, resource, context, now)
        else "deny"
    )
