"""Invariants of the decision core, over random policies and requests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cnm_policy import Decision, Engine, Principal, Resource, load_snapshot
from cnm_policy.engine import PolicySnapshot, decide_batch
from cnm_policy.engine.reference import reference_outcome
from cnm_policy.engine.requests import prepare_principal, validate_target
from cnm_policy.errors import ConditionError
from cnm_policy.policy import Side
from cnm_policy.policy._condition_runtime import type_of
from cnm_policy.policy.conditions import Condition, EvalEnv, compile_condition
from tests.conftest import DEFAULT_BUNDLE
from tests.strategies import (
    NOW,
    TENANT_PAIRS,
    Check,
    GeneratedRule,
    actions,
    checks,
    contexts,
    customer_principals,
    principals,
    resources,
    snapshot_of,
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
    """One decision at the fixed instant, straight from the evaluator."""
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


@st.composite
def aimed_checks(draw: st.DrawFn) -> Check:
    """A check aimed at one of its policy's grants, so rules apply (and collide) often."""
    check = draw(checks())
    rules = check.snapshot.bundle.rules
    rule = draw(st.sampled_from(rules))
    kind, action = draw(st.sampled_from(sorted(rule.grants)))
    roles = draw(st.lists(st.sampled_from(sorted(rule.roles)), min_size=1, max_size=2))
    principal = replace(check.principal, roles=tuple(dict.fromkeys(roles)))
    tenant = draw(st.sampled_from((principal.tenant, check.resource.tenant)))
    return replace(
        check,
        principal=principal,
        action=action,
        resource=replace(check.resource, kind=kind, tenant=tenant),
    )


def trace_oracle(decision: Decision) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """(allowed, rule_ids, matched_denies) as the documented rules derive them from the trace."""
    allows = sorted(t.rule_id for t in decision.trace if t.effect == "allow" and t.applied)
    denies = sorted(t.rule_id for t in decision.trace if t.effect == "deny" and t.applied)
    failed = [t for t in decision.trace if t.error is not None]
    if allows and not denies and not failed:
        return True, tuple(allows), ()
    if not allows and not any(t.effect == "allow" for t in failed):
        return False, (), tuple(denies)  # no allow in play: the default deny decides
    if failed:
        return False, tuple(sorted([t.rule_id for t in failed] + denies)), tuple(denies)
    return False, tuple(denies), tuple(denies)


@settings(max_examples=300)
@given(st.one_of(checks(), aimed_checks()))
def test_applicable_deny_always_wins(check: Check) -> None:
    """If any deny rule fully applies, the decision is deny and lists it as matched."""
    decision = check.decide(explain=True)
    applied_denies = [t.rule_id for t in decision.trace if t.effect == "deny" and t.applied]
    if applied_denies:
        assert decision.allowed is False
        assert tuple(sorted(applied_denies)) == decision.matched_denies
    if decision.allowed:
        assert all(t.effect == "allow" for t in decision.trace if t.applied)
        assert decision.errors == ()


@settings(max_examples=300)
@given(st.one_of(checks(), aimed_checks()))
def test_rule_ids_name_only_the_rules_that_decided(check: Check) -> None:
    """The hot path's rule ids and matched denies equal those the trace derives."""
    # Deny rules decide only when they override an allow in play, else the default deny does.
    decision = check.decide(explain=True)
    assert trace_oracle(decision) == (
        decision.allowed,
        decision.rule_ids,
        decision.matched_denies,
    )


@settings(max_examples=300)
@given(st.one_of(checks(), aimed_checks()))
def test_indexed_evaluator_agrees_with_casbin(check: Check) -> None:
    """The hot path gives casbin's verdict and names a rule iff casbin sees an allow in play."""
    snapshot = check.snapshot
    prepared = prepare_principal(snapshot, check.principal)
    context = validate_target(check.action, check.resource, check.context)
    expected = reference_outcome(snapshot, prepared, check.action, check.resource, context, NOW)
    decision = check.decide()
    actual = "allow" if decision.allowed else "deny" if decision.rule_ids else "default deny"
    assert expected == actual


@given(checks(action_strategy=st.just("ghost-action")))
def test_unknown_action_is_denied(check: Check) -> None:
    """An action no kind defines is never allowed."""
    assert check.decide().allowed is False


@given(checks(resource_strategy=resources(kinds=("ghost-kind",))))
def test_unknown_kind_is_denied(check: Check) -> None:
    """A resource kind the bundle does not declare is never allowed."""
    assert check.decide().allowed is False


@given(checks(principal_strategy=principals(role_pool=("ghost", "phantom"))))
def test_unknown_roles_grant_nothing(check: Check) -> None:
    """Roles the bundle does not define never allow anything."""
    assert check.decide().allowed is False


@given(checks())
def test_decisions_are_deterministic(check: Check) -> None:
    """The same request against the same snapshot always gives the same decision."""
    engine = Engine(check.snapshot, clock=lambda: NOW)
    first = engine.check(check.principal, check.action, check.resource, check.context)
    assert first == engine.check(check.principal, check.action, check.resource, check.context)
    assert first == check.decide()


@given(checks())
def test_mixed_side_principals_are_refused(check: Check) -> None:
    """Holding both customer and internal roles is suspicious: always deny."""
    prepared = prepare_principal(check.snapshot, check.principal)
    sides = {check.snapshot.side_of(role) for role in prepared.roles}
    if {Side.CUSTOMER, Side.INTERNAL} <= sides:
        assert check.decide().allowed is False


# --- a deny guardrail never yields to a value's type (issue #17 item 9) ----------------------

DEFAULT_SNAPSHOT = load_snapshot(DEFAULT_BUNDLE)
ABSENT = object()  # the attribute is left out of the request
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.sampled_from(("true", "yes", "1", "on", "", "false")),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("ab"), inner, max_size=2)
    ),
    max_leaves=4,
)
maybe_values = st.one_of(st.just(ABSENT), json_values)


def present(**values: object) -> dict[str, object]:
    """The attributes that are not ABSENT."""
    return {key: value for key, value in values.items() if value is not ABSENT}


@given(mfa=maybe_values, freeze=maybe_values, shared=maybe_values)
def test_default_guardrails_never_yield_to_a_type(
    mfa: object, freeze: object, shared: object
) -> None:
    """Configure needs MFA exactly `true`, freeze and shared `false`/null/absent: no other value."""
    admin = Principal("u-1", "acme/emea", ("customer-admin",), present(mfa=mfa))
    target = Resource(
        "device", "d-1", "acme/emea/paris", present(change_freeze=freeze, shared=shared)
    )
    decision = Engine(DEFAULT_SNAPSHOT, clock=lambda: NOW).check(admin, "configure", target)
    safe = (False, None, ABSENT)  # by identity: 0 and 0.0 equal False in Python, not here
    expected = mfa is True and any(freeze is s for s in safe) and any(shared is s for s in safe)
    assert decision.allowed is expected


GUARD_CONDITIONS: dict[str, object] = {
    # condition on resource.attributes.x -> the literal (or list element) x is compared with
    "resource.attributes.x == true": True,
    "resource.attributes.x != false": False,
    "resource.attributes.x == 'on'": "on",
    "resource.attributes.x != 'off'": "off",
    "resource.attributes.x == 3": 3,
    "resource.attributes.x >= 2": 2,
    "resource.attributes.x < 2.5": 2.5,
    "resource.attributes.x in ['a', 'b']": "a",
    "resource.attributes.x not in [1, 2]": 1,
    "not (resource.attributes.x == false)": False,
    "resource.attributes.x == [1, 2]": [1, 2],  # a list of another shape is only unequal
    "resource.attributes.x != [true]": [True],
}


def guarded_snapshot(condition: str) -> PolicySnapshot:
    """A policy granting c-view `read` on devices, with a deny guardrail on `condition`."""
    if condition not in _GUARDED:
        allow = GeneratedRule(
            "allow-read", "allow", ("c-view",), ("device",), ("read",), "subtree", (), None
        )
        deny = GeneratedRule(
            "guard", "deny", ("c-view",), ("device",), ("read",), "any", (), condition
        )
        _GUARDED[condition] = snapshot_of([allow, deny])
    return _GUARDED[condition]


_GUARDED: dict[str, PolicySnapshot] = {}


@given(st.sampled_from(sorted(GUARD_CONDITIONS)), json_values.filter(lambda v: v is not None))
def test_a_guardrail_never_turns_into_an_allow_because_of_a_type(
    condition: str, value: object
) -> None:
    """A value of another type than the guardrail's literal denies, with the error reported."""
    # A value of the literal's type is answered by the condition itself, without an error.
    snapshot = guarded_snapshot(condition)
    viewer = Principal("u-1", "acme", ("c-view",))
    decision = Engine(snapshot, clock=lambda: NOW).check(
        viewer, "read", Resource("device", "d-1", "acme", {"x": value})
    )
    if type_mismatch(value, GUARD_CONDITIONS[condition]):
        assert (decision.allowed, decision.rule_ids, len(decision.errors)) == (False, ("guard",), 1)
    else:
        assert decision.errors == ()


def type_mismatch(a: object, b: object) -> bool:
    """Whether two JSON values disagree in type at some position both fill (null fits any)."""
    if a is None or b is None:
        return False
    if type_of(a) != type_of(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return any(type_mismatch(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, dict) and isinstance(b, dict):
        return any(type_mismatch(a[key], b[key]) for key in a.keys() & b.keys())
    return False


EQUAL = compile_condition("context.a == context.b")
NOT_EQUAL = compile_condition("context.b != context.a")  # the other operator, sides swapped


def answer(condition: Condition, a: object, b: object) -> bool | None:
    """The condition's answer with `context.a` = a and `context.b` = b; None if it raised."""
    try:
        return condition.evaluate(EvalEnv({}, "read", {}, {"a": a, "b": b}, NOW))
    except ConditionError:
        return None


@given(json_values, json_values)
def test_equality_raises_exactly_on_a_type_mismatch_anywhere(a: object, b: object) -> None:
    """`==` and `!=` raise iff the values disagree in type where both have one, else answer."""
    equal = None if type_mismatch(a, b) else a == b
    expected = (equal, None if equal is None else not equal)
    assert expected == (answer(EQUAL, a, b), answer(NOT_EQUAL, a, b))
