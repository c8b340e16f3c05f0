"""`explain`: for one request, every rule that could apply and which part of it matched.

The decision and its trace come from the engine itself (``Engine.check(..., explain=True)``), so
what `explain` shows is what the sidecar would decide; this module only joins each trace to
the rule it describes (scope, condition text, file:line) for a reviewer to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cnm_policy.engine import Engine, PolicySnapshot
from cnm_policy.engine.requests import prepare_principal
from cnm_policy.model import AccessRequest, Decision, RuleTrace
from cnm_policy.policy import RuleDef

__all__ = ["Explanation", "RuleExplanation", "explain_request"]


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    """How one rule fared, next to the rule as written, and what it did to the decision."""

    trace: RuleTrace
    rule: RuleDef
    decision: Decision

    @property
    def outcome(self) -> str:
        """What the rule did to the decision (see docs/design/decision-semantics.md)."""
        trace = self.trace
        if trace.rule_id in self.decision.rule_ids:
            return "decided"  # also by failing: `condition_state` then reads `error`
        if trace.error is not None:
            return "error"  # failed with no allow in play: the default deny decided
        if not trace.applied:
            return "not applied"
        return "overridden" if trace.effect == "allow" else "matched"

    @property
    def condition_state(self) -> str:
        """``none``, ``not evaluated``, ``true``, ``false`` or ``error``."""
        if self.trace.error is not None:
            return "error"
        if self.rule.condition is None:
            return "none"
        if self.trace.condition is None:
            return "not evaluated"
        return "true" if self.trace.condition else "false"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        trace, rule = self.trace, self.rule
        return {
            "rule": rule.id,
            "effect": trace.effect,
            "file": rule.file,
            "line": rule.line,
            "role_matched": trace.role_matched,
            "kind_matched": trace.kind_matched,
            "action_matched": trace.action_matched,
            "scope_matched": trace.scope_matched,
            "scope": rule.scope.value,
            "tenants": list(rule.tenants),
            "condition": rule.condition.source if rule.condition else None,
            "condition_result": self.condition_state,
            "error": trace.error,
            "applied": trace.applied,
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """The decision for one request, with every rule that targets its kind or action."""

    request: AccessRequest
    decision: Decision
    effective_roles: tuple[str, ...]
    unknown_roles: tuple[str, ...]
    rules: tuple[RuleExplanation, ...]
    at: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        decision, request = self.decision, self.request
        return {
            "allowed": decision.allowed,
            "reason": decision.reason,
            "rule_ids": list(decision.rule_ids),
            "matched_denies": list(decision.matched_denies),
            "obligations": [
                {"type": o.type, "rule_id": o.rule_id, "params": dict(o.params)}
                for o in decision.obligations
            ],
            "limits_exceeded": [
                {"rule_id": o.rule_id, "name": o.name, "limit": o.limit, "asked": o.asked}
                for o in decision.limits_exceeded
            ],
            "errors": list(decision.errors),
            "policy": {
                "name": decision.policy_name,
                "version": decision.policy_version,
                "digest": decision.policy_digest,
            },
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "request": {
                "principal": request.principal.id,
                "tenant": request.principal.tenant,
                "roles": list(request.principal.roles),
                "effective_roles": list(self.effective_roles),
                "unknown_roles": list(self.unknown_roles),
                "action": request.action,
                "kind": request.resource.kind,
                "resource": request.resource.id,
                "resource_tenant": request.resource.tenant,
            },
            "rules": [rule.to_dict() for rule in self.rules],
        }


def explain_request(snapshot: PolicySnapshot, request: AccessRequest, *, now: float) -> Explanation:
    """Decide `request` at `now` with a full trace; raises InvalidRequestError on bad input."""
    decision = Engine(snapshot, clock=lambda: now).check_request(request, explain=True)
    prepared = prepare_principal(snapshot, request.principal)
    rules = {rule.id: rule for rule in snapshot.bundle.rules}
    return Explanation(
        request=request,
        decision=decision,
        effective_roles=prepared.roles,
        unknown_roles=prepared.unknown_roles,
        rules=tuple(
            RuleExplanation(trace, rules[trace.rule_id], decision) for trace in decision.trace
        ),
        at=now,
    )
