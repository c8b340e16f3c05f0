"""What may this principal do to resources of a kind: a query plan, not a decision per row.

Everything that does not depend on the resource (roles, scopes, principal and context
conditions, the clock) is decided once; the remainder is a filter over the resource's fields
that holds exactly where :func:`decide` would allow (docs/design/plans.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnm_policy.engine._governance import side_refusal
from cnm_policy.engine._plan_conditions import Pred
from cnm_policy.engine._plan_index import rules_in_play
from cnm_policy.engine._plan_limits import limits_verdict
from cnm_policy.engine._plan_nodes import (
    Node,
    Unplannable,
    all_of,
    any_of,
    holds,
    negate,
)
from cnm_policy.engine._plan_reach import barriers_below, glass_gate, reach
from cnm_policy.engine._plan_static import condition_verdict
from cnm_policy.engine.requests import prepare_principal, validate_target
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import PlanUnsupportedError
from cnm_policy.model import Principal, Resource
from cnm_policy.policy import Effect, RuleDef
from cnm_policy.policy.conditions import EvalEnv

__all__ = ["ALWAYS_ALLOWED", "ALWAYS_DENIED", "CONDITIONAL", "MAX_FILTER_NODES", "Plan", "plan"]

ALWAYS_ALLOWED = "always_allowed"
ALWAYS_DENIED = "always_denied"
CONDITIONAL = "conditional"
MAX_FILTER_NODES = 10_000  # a filter is sent to a database: its size is bounded like a request's
_ALWAYS = Pred(True, False)


@dataclass(frozen=True, slots=True)
class Plan:
    """Which resources of `resource_kind` `principal` may `action`, as of one policy version.

    `filter` is ``None`` unless `kind` is ``conditional``; then it is a tree of plain dicts in
    the documented node set (read-only: plans are shared by the cache). `valid_until` is the
    epoch second at which a time-based part of the plan may change.
    """

    kind: str
    filter: dict[str, Any] | None
    action: str
    resource_kind: str
    rule_ids: tuple[str, ...]
    reason: str
    policy_name: str
    policy_version: str
    policy_digest: str
    valid_until: float | None = None
    cached: bool = False

    def matches(self, resource: Resource) -> bool:
        """Whether the decision for `resource` is an allow; raises InvalidRequestError."""
        validate_target(self.action, resource, None)
        if resource.kind != self.resource_kind or self.kind == ALWAYS_DENIED:
            return False
        return self.filter is None or holds(self.filter, resource)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (what `explain --plan` and the wire forms carry)."""
        return {
            "kind": self.kind,
            "filter": self.filter,
            "action": self.action,
            "resource_kind": self.resource_kind,
            "rule_ids": list(self.rule_ids),
            "reason": self.reason,
            "policy_name": self.policy_name,
            "policy_version": self.policy_version,
            "policy_digest": self.policy_digest,
            "valid_until": self.valid_until,
        }


def plan(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    kind: str,
    context: Mapping[str, Any] | None,
    now: float,
) -> Plan:
    """The plan for one principal, action and kind; raises InvalidRequestError or
    PlanUnsupportedError."""
    prepared = prepare_principal(snapshot, principal)
    checked = validate_target(action, Resource(kind, "", prepared.principal.tenant), context)
    bundle = snapshot.bundle
    refusal = side_refusal("principal", prepared, bundle.internal_tenants)
    if refusal is not None:
        return _fixed(snapshot, action, kind, ALWAYS_DENIED, refusal)
    by_role = snapshot.index.get((kind, action))
    if by_role is None:
        return _fixed(snapshot, action, kind, ALWAYS_DENIED, _no_rules(snapshot, action, kind))
    env = EvalEnv(prepared.view, action, {"kind": kind}, checked, now)
    home = prepared.principal.tenant
    rules = rules_in_play(
        snapshot, (kind, action), by_role, prepared.roles, (home, *prepared.assigned)
    )
    barriers = barriers_below(home, bundle.self_managed)
    glass_until: float | None = None
    allows: list[Node] = []
    blocks: list[Node] = []
    in_play: list[str] = []
    # Allow rules first: when none can apply, no deny or error needs evaluating.
    for effect in (Effect.ALLOW, Effect.DENY):
        for rule in rules.values():
            # A plan has no actor: rules that require one never apply (as in decide).
            if rule.effect is not effect or rule.actor == "required":
                continue
            if (where := reach(rule, prepared, barriers)) is False:
                continue
            verdict = glass_gate(rule, checked) or _verdict(rule, env)
            applies = all_of(where, verdict.true)
            failing = all_of(where, verdict.error)
            if applies is not False or failing is not False:
                in_play.append(rule.id)
            if rule.break_glass is not None and applies is not False:
                glass_until = min(now + rule.break_glass, glass_until or math.inf)
            (allows if effect is Effect.ALLOW else blocks).append(applies)
            blocks.append(failing)
        if any_of(*allows) is False:
            return _result(snapshot, action, kind, False, (), env.valid_until)
    # INVARIANT: deny overrides allow, and a condition that raises blocks like a deny (as decide).
    # Break-glass allows count as allows: decide uses them exactly when no everyday one applies.
    node = all_of(any_of(*allows), negate(any_of(*blocks)))
    until = min(env.valid_until or math.inf, glass_until or math.inf)
    valid_until = None if until == math.inf else until
    return _result(snapshot, action, kind, node, tuple(sorted(in_play)), valid_until)


def _verdict(rule: RuleDef, env: EvalEnv) -> Pred:
    """Where the rule's condition (then its limits) holds, and where evaluating them raises."""
    try:
        verdict = (
            _ALWAYS if rule.condition is None else condition_verdict(rule.condition.source)(env)
        )
        if not rule.limits or verdict.true is False:
            return verdict
        limits = limits_verdict(rule, env)
    except Unplannable as exc:
        raise PlanUnsupportedError(exc.reason, rule.id) from None
    true = all_of(verdict.true, limits.true)
    return Pred(true, any_of(verdict.error, all_of(verdict.true, limits.error)))


def _result(
    snapshot: PolicySnapshot,
    action: str,
    kind: str,
    node: Node,
    rule_ids: tuple[str, ...],
    valid_until: float | None,
) -> Plan:
    if node is True:
        shape, reason, filter_ = ALWAYS_ALLOWED, f"allowed by {_listed(rule_ids)}", None
    elif node is False:
        shape, reason, filter_ = ALWAYS_DENIED, f"no rule allows `{action}` on `{kind}` here", None
    else:
        _bound(node, rule_ids)
        shape, reason, filter_ = CONDITIONAL, f"filtered by {_listed(rule_ids)}", node
    return Plan(
        kind=shape,
        filter=filter_,
        action=action,
        resource_kind=kind,
        rule_ids=rule_ids,
        reason=reason,
        policy_name=snapshot.name,
        policy_version=snapshot.version,
        policy_digest=snapshot.digest,
        valid_until=valid_until,
    )


def _bound(node: dict[str, Any], rule_ids: tuple[str, ...]) -> None:
    """Refuse a filter larger than MAX_FILTER_NODES (shared subtrees count once per use)."""
    stack: list[Any] = [node]
    count = 0
    while stack:
        current = stack.pop()
        count += 1
        if count > MAX_FILTER_NODES:
            message = f"the filter needs more than {MAX_FILTER_NODES} nodes"
            raise PlanUnsupportedError(message)
        if "args" in current:
            stack.extend(current["args"])
        elif "arg" in current:
            stack.append(current["arg"])


def _listed(ids: tuple[str, ...]) -> str:
    label = "rule" if len(ids) == 1 else "rules"
    return f"{label} " + ", ".join(f"`{rule_id}`" for rule_id in ids)


def _no_rules(snapshot: PolicySnapshot, action: str, kind: str) -> str:
    definition = snapshot.bundle.kinds.get(kind)
    if definition is None:
        return f"unknown resource kind `{kind}`"
    if action not in definition.actions:
        return f"action `{action}` is not defined for `{kind}`"
    return f"no rule allows `{action}` on `{kind}`"


def _fixed(snapshot: PolicySnapshot, action: str, kind: str, shape: str, reason: str) -> Plan:
    return Plan(
        kind=shape,
        filter=None,
        action=action,
        resource_kind=kind,
        rule_ids=(),
        reason=reason,
        policy_name=snapshot.name,
        policy_version=snapshot.version,
        policy_digest=snapshot.digest,
    )
