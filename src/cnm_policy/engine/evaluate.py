"""Snapshot x request -> Decision: the hot path.

One request reads the partition for (kind, action) and the principal's effective roles, applies
scope then condition to those rows, and combines their effects as casbin does. A condition that
cannot be evaluated on an applicable rule denies (fail closed; docs/design/decision-semantics.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cnm_policy.engine._governance import (
    actor_refusal,
    barrier_between,
    break_glass_justified,
    side_refusal,
)
from cnm_policy.engine._outcome import conclude, over_limits
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import ConditionError
from cnm_policy.model import Decision, LimitExceeded, Resource
from cnm_policy.policy import Bundle, Effect, RuleDef, Scope, is_within
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["NO_BARRIERS", "decide", "in_scope", "make_env", "tenant_ancestors"]

NO_BARRIERS: frozenset[str] = frozenset()
NO_ACTOR: Mapping[str, Any] = {}  # what conditions read as `actor` when nobody acts for another


def in_scope(
    scope: Scope,
    tenants: tuple[str, ...],
    principal: PreparedPrincipal,
    resource_tenant: str,
    barriers: frozenset[str] = NO_BARRIERS,
) -> bool:
    """Whether `resource_tenant` is inside the reach `scope` (and pins) give this principal;
    subtree reach stops at the self-managed tenants in `barriers`."""
    if tenants and not any(is_within(resource_tenant, t) for t in tenants):
        return False
    if scope is Scope.SUBTREE:
        home = principal.principal.tenant
        if barriers and barrier_between(resource_tenant, home, barriers):
            return False
        return is_within(resource_tenant, home)
    if scope is Scope.OWN:
        return resource_tenant == principal.principal.tenant
    if scope is Scope.ASSIGNED:
        return any(is_within(resource_tenant, t) for t in principal.assigned)
    return scope is Scope.ANY


def tenant_ancestors(tenant: str) -> Iterator[str]:
    """`tenant` and each ancestor: ``a/b/c`` -> ``a/b/c``, ``a/b``, ``a``."""
    while True:
        yield tenant
        cut = tenant.rfind("/")
        if cut < 0:
            return
        tenant = tenant[:cut]


def make_env(
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
    actor: PreparedPrincipal | None = None,
) -> EvalEnv:
    """The read-only view of a request that conditions evaluate against."""
    resource_view = {
        "kind": resource.kind,
        "id": resource.id,
        "tenant": resource.tenant,
        "attributes": resource.attributes,
    }
    view = NO_ACTOR if actor is None else actor.view
    return EvalEnv(principal.view, action, resource_view, context, now, actor=view)


def _candidates(
    snapshot: PolicySnapshot, principal: PreparedPrincipal, action: str, resource: Resource
) -> dict[str, RuleDef] | None:
    """The rules that can apply, by id; ``None`` when (kind, action) has no rules at all."""
    by_role = snapshot.index.get((resource.kind, action))
    if by_role is None:
        return None
    found: dict[str, RuleDef] = {}
    for role in principal.roles:
        bucket = by_role.get(role)
        if bucket is None:
            continue
        for rule in bucket.general:
            found[rule.id] = rule
        if bucket.pinned:
            for tenant in tenant_ancestors(resource.tenant):
                for rule in bucket.pinned.get(tenant, ()):
                    found[rule.id] = rule
    return found


def decide(
    snapshot: PolicySnapshot,
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
    actor: PreparedPrincipal | None = None,
) -> Decision:
    """The decision for one validated request (acted by `actor`, if any) against one snapshot."""
    bundle = snapshot.bundle
    if principal.mixed_sides or bundle.internal_tenants or actor is not None:
        refusal = _refusal(bundle, principal, actor, resource.tenant)
        if refusal is not None:
            return _deny(snapshot, refusal)
    candidates = _candidates(snapshot, principal, action, resource)
    if candidates is None:
        return _deny(snapshot, _no_rules_reason(snapshot, action, resource))
    env: EvalEnv | None = None
    allows: list[str] = []
    denies: list[str] = []
    failed: list[str] = []
    allow_failed = False
    errors: list[str] = []
    over: list[LimitExceeded] = []
    glass: list[str] = []
    barriers = bundle.self_managed
    for rule in candidates.values():
        reach = barriers
        if rule.governed:  # actor, crossing, break-glass or limits: the slow path
            if rule.actor is not None and (rule.actor == "required") is (actor is None):
                continue
            if rule.crosses_self_managed:
                reach = NO_BARRIERS
        if not in_scope(rule.scope, rule.tenants, principal, resource.tenant, reach):
            continue
        if rule.condition is not None or rule.governed:
            if env is None:
                env = make_env(principal, action, resource, context, now, actor)
            try:
                if rule.break_glass is not None and not break_glass_justified(context):
                    continue
                if rule.condition is not None and not rule.condition.evaluate(env):
                    continue
                if rule.limits and over_limits(rule, env, over):
                    continue
            except ConditionError as exc:
                failed.append(rule.id)
                allow_failed = allow_failed or rule.effect is Effect.ALLOW
                errors.append(f"rule `{rule.id}`: {exc}")
                continue
        if rule.effect is Effect.DENY:
            denies.append(rule.id)
        elif rule.break_glass is None:
            allows.append(rule.id)
        else:
            glass.append(rule.id)
    tally = (allows, denies, failed, glass, over, errors, allow_failed)
    return conclude(snapshot, candidates, principal, action, resource, now, env, *tally)


def _refusal(
    bundle: Bundle,
    principal: PreparedPrincipal,
    actor: PreparedPrincipal | None,
    resource_tenant: str,
) -> str | None:
    """Why nobody's rules are even consulted: a principal or actor that may not act here."""
    refusal = side_refusal("principal", principal, bundle.internal_tenants)
    if refusal is None and actor is not None:
        refusal = actor_refusal(
            actor, resource_tenant, bundle.internal_tenants, bundle.self_managed
        )
    return refusal


def _no_rules_reason(snapshot: PolicySnapshot, action: str, resource: Resource) -> str:
    kind = snapshot.bundle.kinds.get(resource.kind)
    if kind is None:
        return f"unknown resource kind `{resource.kind}`"
    if action not in kind.actions:
        return f"action `{action}` is not defined for `{resource.kind}`"
    return f"no rule allows `{action}` on `{resource.kind}`"


def _deny(snapshot: PolicySnapshot, reason: str) -> Decision:
    return snapshot.decision(False, (), reason)
