"""Why a decision came out as it did: a trace of every rule that could have applied.

Slow path, used by `explain` requests and review tools: it walks every rule for the requested
kind or action, not just the indexed partition, so a reviewer also sees the near misses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnm_policy.engine.evaluate import NO_BARRIERS, in_scope, make_env
from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import ConditionError
from cnm_policy.model import Resource, RuleTrace

__all__ = ["trace_rules"]


def trace_rules(
    snapshot: PolicySnapshot,
    principal: PreparedPrincipal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any],
    now: float,
    actor: PreparedPrincipal | None = None,
) -> tuple[RuleTrace, ...]:
    """One trace per rule that targets the requested kind or action, in bundle order."""
    env = make_env(principal, action, resource, context, now, actor)
    barriers = snapshot.bundle.self_managed
    roles = set(principal.roles)
    traces = []
    for rule in snapshot.bundle.rules:
        kind_matched = resource.kind in rule.kinds
        action_matched = (resource.kind, action) in rule.grants or (
            not kind_matched and action in rule.actions
        )
        if not kind_matched and not action_matched:
            continue
        role_matched = bool(roles.intersection(rule.roles)) and not principal.mixed_sides
        reach = NO_BARRIERS if rule.crosses_self_managed else barriers
        scope_matched = in_scope(rule.scope, rule.tenants, principal, resource.tenant, reach)
        if rule.actor is not None and (rule.actor == "required") is (actor is None):
            scope_matched = False  # the rule is for requests with (or without) an actor
        condition: bool | None = None
        error: str | None = None
        if role_matched and kind_matched and action_matched and scope_matched:
            if rule.condition is None:
                condition = None
            else:
                try:
                    condition = rule.condition.evaluate(env)
                except ConditionError as exc:
                    error = str(exc)
        traces.append(
            RuleTrace(
                rule_id=rule.id,
                effect=rule.effect.value,
                role_matched=role_matched,
                kind_matched=kind_matched,
                action_matched=action_matched,
                scope_matched=scope_matched,
                condition=condition,
                error=error,
            )
        )
    return tuple(traces)
