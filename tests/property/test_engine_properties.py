"""Invariants of the decision core, over random policies and requests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cnm_policy import Decision, Engine, Principal, Resource
from cnm_policy.engine import PolicySnapshot, decide_batch
from cnm_policy.engine.reference import reference_allowed
from cnm_policy.engine.requests import prepare_principal, validate_target
from cnm_policy.policy import Side
from tests.strategies import (
    NOW,
    TENANT_PAIRS,
    actions,
    contexts,
    customer_principals,
    principals,
    resources,
    snapshots,
)

settings.register_profile("default", max_examples=150, deadline=None)
settings.load_profile("default")


def decide(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any],
    explain: bool = False,
) -> Decision:
    return decide_batch(snapshot, principal, ((action, resource),), context, NOW, explain=explain)[
        0
    ]


@settings(max_examples=300)
@given(snapshots(), customer_principals, actions, resources(), contexts(), st.data())
def test_customers_never_leave_their_subtree(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any],
    data: st.DataObject,
) -> None:
    """A customer-side principal is never allowed outside its own tenant subtree."""
    # Aim most draws at a grant that exists for a customer role, and at tenants that merely
    # *look* related (acme vs acme-evil, acmex), where a string-prefix bug would show.
    grants = [
        (role, kind, act)
        for rule in snapshot.bundle.rules
        if rule.effect == "allow"
        for role in rule.roles
        if snapshot.side_of(role) is Side.CUSTOMER
        for kind, act in rule.grants
    ]
    if grants and data.draw(st.integers(0, 3)) > 0:
        role, kind, action = data.draw(st.sampled_from(grants))
        own, target = data.draw(st.sampled_from(TENANT_PAIRS))
        principal = replace(principal, tenant=own, roles=(role,))
        resource = replace(resource, kind=kind, tenant=target)
    decision = decide(snapshot, principal, action, resource, context)
    if decision.allowed:
        own_segments = principal.tenant.split("/")
        # An oracle independent of the engine's own containment helper.
        assert resource.tenant.split("/")[: len(own_segments)] == own_segments


@given(snapshots(), principals(), actions, resources(), contexts())
def test_applicable_deny_always_wins(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any],
) -> None:
    """If any deny rule fully applies, the decision is deny and names it."""
    decision = decide(snapshot, principal, action, resource, context, explain=True)
    applied_denies = [t.rule_id for t in decision.trace if t.effect == "deny" and t.applied]
    if applied_denies:
        assert decision.allowed is False
        assert set(applied_denies) <= set(decision.rule_ids)
    if decision.allowed:
        assert all(t.effect == "allow" for t in decision.trace if t.applied)
        assert decision.errors == ()


@given(snapshots(), principals(), actions, resources(), contexts())
def test_indexed_evaluator_agrees_with_casbin(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any],
) -> None:
    """The partitioned hot path gives exactly casbin Enforcer's verdict."""
    decision = decide(snapshot, principal, action, resource, context)
    prepared = prepare_principal(snapshot, principal)
    checked = validate_target(action, resource, context)
    assert decision.allowed == reference_allowed(snapshot, prepared, action, resource, checked, NOW)


@given(snapshots(), principals(), resources(), contexts())
def test_unknown_action_is_denied(
    snapshot: PolicySnapshot, principal: Principal, resource: Resource, context: dict[str, Any]
) -> None:
    """An action no kind defines is never allowed."""
    assert decide(snapshot, principal, "ghost-action", resource, context).allowed is False


@given(snapshots(), principals(), actions, contexts(), st.sampled_from(("acme", "globex")))
def test_unknown_kind_is_denied(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    context: dict[str, Any],
    tenant: str,
) -> None:
    """A resource kind the bundle does not declare is never allowed."""
    resource = Resource(kind="ghost-kind", id="x", tenant=tenant)
    assert decide(snapshot, principal, action, resource, context).allowed is False


@given(snapshots(), principals(role_pool=("ghost", "phantom")), actions, resources(), contexts())
def test_unknown_roles_grant_nothing(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any],
) -> None:
    """Roles the bundle does not define never allow anything."""
    assert decide(snapshot, principal, action, resource, context).allowed is False


@given(snapshots(), principals(), actions, resources(), contexts())
def test_decisions_are_deterministic(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any],
) -> None:
    """The same request against the same snapshot always gives the same decision."""
    engine = Engine(snapshot, clock=lambda: NOW)
    first = engine.check(principal, action, resource, context)
    assert engine.check(principal, action, resource, context) == first
    assert decide(snapshot, principal, action, resource, context) == first


@given(snapshots(), principals(), actions, resources(), contexts())
def test_mixed_side_principals_are_refused(
    snapshot: PolicySnapshot,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any],
) -> None:
    """Holding both customer and internal roles is suspicious: always deny."""
    prepared = prepare_principal(snapshot, principal)
    sides = {snapshot.side_of(role) for role in prepared.roles}
    if {Side.CUSTOMER, Side.INTERNAL} <= sides:
        assert decide(snapshot, principal, action, resource, context).allowed is False
