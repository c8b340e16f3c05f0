"""A request's matching rules -> the Decision: attribution, obligations, limits, audit classes.

`evaluate.decide` finds which rules apply; this module says what that means for the caller
(docs/design/decision-semantics.md, obligations.md and governance.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from cnm_policy.engine import casbin_backend
from cnm_policy.engine._governance import barrier_between, expiry_obligation
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.model import Decision, LimitExceeded, Obligation, Resource
from cnm_policy.policy import Effect, RuleDef, Scope
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["conclude", "over_limits"]


def conclude(
    snapshot: PolicySnapshot,
    candidates: Mapping[str, RuleDef],
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    now: float,
    env: EvalEnv | None,
    allows: list[str],
    denies: list[str],
    failed: list[str],
    glass: list[str],
    over: list[LimitExceeded],
    errors: list[str],
    allow_failed: bool,
) -> Decision:
    """The decision the applicable rules make (`glass`: break-glass allows)."""
    bundle = snapshot.bundle
    barriers = bundle.self_managed
    glass_until = None
    if glass and not allows:  # break-glass only when no everyday grant applies
        allows = glass
        glass_until = now + min([candidates[r].break_glass or 0.0 for r in glass])
    allowed = casbin_backend.final_allowed(bool(allows), bool(denies or failed))
    in_play = bool(allows) or allow_failed or bool(over)
    ids, reason = _attribution(allowed, in_play, allows, denies, failed, action, resource.kind)
    if not allowed and over and not (denies or failed):
        ids, reason = tuple(sorted({o.rule_id for o in over})), _limit_reason(over)
    obligations = (
        _obligations(candidates, ids, resource.tenant)
        if bundle.obligated and (allowed or (in_play and denies and not failed))
        else ()
    )
    valid_until = env.valid_until if env is not None else None
    audit_class = None
    if allowed and glass_until is not None:
        valid_until = glass_until if valid_until is None else min(valid_until, glass_until)
        obligations = (*obligations, expiry_obligation(ids[0], glass_until))
        audit_class = "break_glass"
    elif allowed and barriers and _crossed(candidates, ids, principal, resource.tenant, barriers):
        audit_class = "self_managed_crossing"
    return snapshot.decision(
        allowed,
        ids,
        reason,
        tuple(errors),
        valid_until,
        tuple(sorted(denies)),
        obligations,
        tuple(over) if not allowed else (),
        audit_class,
    )


def _crossed(
    rules: Mapping[str, RuleDef],
    ids: tuple[str, ...],
    principal: PreparedPrincipal,
    resource_tenant: str,
    barriers: frozenset[str],
) -> bool:
    """Whether an allow crossed a self-managed barrier through a rule that may (audited)."""
    home = principal.principal.tenant
    return any(
        rules[r].crosses_self_managed and barrier_between(resource_tenant, home, barriers)
        for r in ids
        if rules[r].scope is Scope.SUBTREE
    )


def over_limits(rule: RuleDef, env: EvalEnv, over: list[LimitExceeded]) -> bool:
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
