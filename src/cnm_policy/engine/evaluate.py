"""Snapshot x request -> Decision: the hot path.

One request reads the partition for (kind, action) and the principal's effective roles, applies
scope then condition to those rows, and combines their effects as casbin does. A condition that
cannot be evaluated on an applicable rule denies (fail closed; docs/design/decision-semantics.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cnm_policy.engine import casbin_backend
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import ConditionError
from cnm_policy.model import Decision, LimitExceeded, Obligation, Resource
from cnm_policy.policy import Effect, RuleDef, Scope, is_within
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["decide", "in_scope", "make_env", "tenant_ancestors"]


def in_scope(
    scope: Scope, tenants: tuple[str, ...], principal: PreparedPrincipal, resource_tenant: str
) -> bool:
    """Whether `resource_tenant` is inside the reach `scope` (and pins) give this principal."""
    if tenants and not any(is_within(resource_tenant, t) for t in tenants):
        return False
    if scope is Scope.SUBTREE:
        return is_within(resource_tenant, principal.principal.tenant)
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
) -> EvalEnv:
    """The read-only view of a request that conditions evaluate against."""
    resource_view = {
        "kind": resource.kind,
        "id": resource.id,
        "tenant": resource.tenant,
        "attributes": resource.attributes,
    }
    return EvalEnv(principal.view, action, resource_view, context, now)


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
) -> Decision:
    """The decision for one validated request against one snapshot."""
    if principal.mixed_sides:
        return _deny(snapshot, "principal holds both customer-side and internal-side roles")
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
    for rule in candidates.values():
        if not in_scope(rule.scope, rule.tenants, principal, resource.tenant):
            continue
        if rule.condition is not None or rule.limits:
            if env is None:
                env = make_env(principal, action, resource, context, now)
            try:
                if rule.condition is not None and not rule.condition.evaluate(env):
                    continue
                if rule.limits and _over_limits(rule, env, over):
                    continue
            except ConditionError as exc:
                failed.append(rule.id)
                allow_failed = allow_failed or rule.effect is Effect.ALLOW
                errors.append(f"rule `{rule.id}`: {exc}")
                continue
        (denies if rule.effect is Effect.DENY else allows).append(rule.id)
    allowed = casbin_backend.final_allowed(bool(allows), bool(denies or failed))
    in_play = bool(allows) or allow_failed or bool(over)
    ids, reason = _attribution(allowed, in_play, allows, denies, failed, action, resource.kind)
    if not allowed and over and not (denies or failed):
        ids, reason = tuple(sorted({o.rule_id for o in over})), _limit_reason(over)
    obligations = (
        _obligations(candidates, ids, resource.tenant)
        if allowed or (in_play and denies and not failed)
        else ()
    )
    return Decision(
        allowed=allowed,
        rule_ids=ids,
        reason=reason,
        policy_name=snapshot.name,
        policy_version=snapshot.version,
        policy_digest=snapshot.digest,
        errors=tuple(errors),
        valid_until=env.valid_until if env is not None else None,
        matched_denies=tuple(sorted(denies)),
        obligations=obligations,
        limits_exceeded=tuple(over) if not allowed else (),
    )


def _over_limits(rule: RuleDef, env: EvalEnv, over: list[LimitExceeded]) -> bool:
    """Whether the request asks above one of `rule`'s limits (each one noted in `over`)."""
    exceeded = False
    for limit in rule.limits:
        found = limit.exceeded(env)
        if found is not None:
            over.append(LimitExceeded(rule.id, limit.name, *found))
            exceeded = True
    return exceeded


def _limit_reason(over: list[LimitExceeded]) -> str:
    first = over[0]
    return (
        f"limit_exceeded: `{first.name}` asked {first.asked:g}, "
        f"limit {first.limit:g} (rule `{first.rule_id}`)"
    )


def _obligations(
    rules: Mapping[str, RuleDef], ids: tuple[str, ...], tenant: str
) -> tuple[Obligation, ...]:
    """What the deciding rules oblige: every allow's notifications; for a deny, the step-ups,
    but only when every deciding deny can be lifted by one (docs/design/obligations.md)."""
    found: list[Obligation] = []
    for rule_id in ids:
        declared = rules[rule_id].obligations
        if not declared:
            if rules[rule_id].effect is Effect.DENY:
                return ()  # a deny no step-up lifts: stronger authentication would not help
            continue
        for obligation in declared:
            params = obligation.params
            if obligation.type == "notify":
                params = (*params, ("tenant", tenant))
            found.append(Obligation(obligation.type, rule_id, params))
    return tuple(found)


def _attribution(
    allowed: bool,
    in_play: bool,
    allows: list[str],
    denies: list[str],
    failed: list[str],
    action: str,
    kind: str,
) -> tuple[tuple[str, ...], str]:
    """The rules that decided, and the reason (see docs/design/decision-semantics.md)."""
    if allowed:
        ids = tuple(sorted(allows))
        return ids, f"allowed by {_rule_list(ids)}"
    if not in_play:
        # No allow could apply: the default deny decided, whatever deny rules matched too.
        return (), f"no rule allows `{action}` on `{kind}` here"
    if failed:
        reason = f"denied: a condition could not be evaluated ({_rule_list(tuple(sorted(failed)))})"
        return tuple(sorted(failed + denies)), reason
    ids = tuple(sorted(denies))
    return ids, f"denied by {_rule_list(ids)}"


def _rule_list(ids: tuple[str, ...]) -> str:
    label = "rule" if len(ids) == 1 else "rules"
    return f"{label} " + ", ".join(f"`{rule_id}`" for rule_id in ids)


def _no_rules_reason(snapshot: PolicySnapshot, action: str, resource: Resource) -> str:
    kind = snapshot.bundle.kinds.get(resource.kind)
    if kind is None:
        return f"unknown resource kind `{resource.kind}`"
    if action not in kind.actions:
        return f"action `{action}` is not defined for `{resource.kind}`"
    return f"no rule allows `{action}` on `{resource.kind}`"


def _deny(snapshot: PolicySnapshot, reason: str) -> Decision:
    return Decision(
        allowed=False,
        rule_ids=(),
        reason=reason,
        policy_name=snapshot.name,
        policy_version=snapshot.version,
        policy_digest=snapshot.digest,
    )
