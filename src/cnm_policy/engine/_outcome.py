"""A request's matching rules -> the Decision: attribution, obligations, limits, audit classes.

`evaluate.decide` finds which rules apply; this module says what that means for the caller
(docs/design/decision-semantics.md, obligations.md and governance.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import NamedTuple

from cnm_policy.engine import casbin_backend
from cnm_policy.engine._governance import barrier_between, expiry_obligation
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.model import Decision, LimitExceeded, Obligation, Resource
from cnm_policy.policy import Effect, RuleDef, Scope
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["Tally", "conclude", "over_limits"]


class Tally(NamedTuple):
    """Which rules applied, by outcome, as `decide` found them."""

    allows: list[str]
    denies: list[str]
    failed: list[str]
    glass: list[str]  # break-glass allows
    over: list[LimitExceeded]
    errors: list[str]
    allow_failed: bool


def conclude(
    snapshot: PolicySnapshot,
    candidates: Mapping[str, RuleDef],
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    now: float,
    env: EvalEnv | None,
    tally: Tally,
) -> Decision:
    """The decision the applicable rules make."""
    allows, denies, failed, glass, over, errors, allow_failed = tally
    barriers = snapshot.bundle.self_managed
    glass_until = None
    if glass and not allows:  # break-glass only when no everyday grant applies
        allows = glass
        glass_until = now + min(candidates[r].break_glass or 0.0 for r in glass)
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
    decision = Decision(
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
    if allowed and (glass_until is not None or barriers):
        decision = _audited(decision, candidates, principal, resource.tenant, glass_until, barriers)
    return decision


def _audited(
    decision: Decision,
    rules: Mapping[str, RuleDef],
    principal: PreparedPrincipal,
    resource_tenant: str,
    glass_until: float | None,
    barriers: frozenset[str],
) -> Decision:
    """An allow marked for audit: break-glass (expiring, with an `expire` obligation), or one
    that crossed a self-managed barrier through a rule that may."""
    if glass_until is not None:
        until = (
            glass_until if decision.valid_until is None else min(decision.valid_until, glass_until)
        )
        expire = expiry_obligation(decision.rule_ids[0], glass_until)
        obligations = (*decision.obligations, expire)
        return replace(
            decision, valid_until=until, obligations=obligations, audit_class="break_glass"
        )
    home = principal.principal.tenant
    crossed = any(
        rules[r].crosses_self_managed and barrier_between(resource_tenant, home, barriers)
        for r in decision.rule_ids
        if rules[r].scope is Scope.SUBTREE
    )
    return replace(decision, audit_class="self_managed_crossing") if crossed else decision


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
