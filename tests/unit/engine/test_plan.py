"""Query plans: their kinds, filters and reasons, and the requests they refuse."""

from __future__ import annotations

import json

import pytest

from cnm_policy import Engine, InvalidRequestError, Principal, Resource
from cnm_policy.engine.plan import plan
from cnm_policy.errors import PlanUnsupportedError
from tests.strategies import NOW, GeneratedRule, snapshot_of

VIEWER = Principal(id="u-17", tenant="acme", roles=("customer-viewer",))
NOC = Principal(id="n-1", tenant="provider/noc", roles=("noc-engineer",), attributes={"mfa": True})


def device(tenant: str, **attributes: object) -> Resource:
    """A device of `tenant` with `attributes`."""
    return Resource(kind="device", id="dev-1", tenant=tenant, attributes=attributes)


def rule(
    rule_id: str, effect: str, condition: str | None = None, scope: str = "subtree"
) -> GeneratedRule:
    """A rule for c-view reading devices."""
    return GeneratedRule(rule_id, effect, ("c-view",), ("device",), ("read",), scope, (), condition)


def test_a_customer_plan_is_its_subtree_minus_the_guardrail(engine: Engine) -> None:
    """A customer viewer's device list is its subtree, without shared infrastructure."""
    found = engine.plan(VIEWER, "read", "device")
    assert (found.kind, found.action, found.resource_kind) == ("conditional", "read", "device")
    assert found.filter is not None
    assert found.filter["args"][0] == {"op": "within", "field": "tenant", "root": "acme"}
    assert found.rule_ids == ("customer-read-network", "deny-customer-shared-infrastructure")
    assert [
        found.matches(device("acme")),
        found.matches(device("acme/emea/paris", shared=False)),
        found.matches(device("acme/emea", shared=True)),
        found.matches(device("acme-evil")),
    ] == [True, True, False, False]


def test_a_noc_plan_is_always_allowed_without_a_filter(engine: Engine) -> None:
    """A NOC engineer reads every customer's devices: nothing is left to filter."""
    found = engine.plan(NOC, "read", "device")
    assert (
        found.kind,
        found.filter,
        found.rule_ids,
    ) == ("always_allowed", None, ("noc-read-network",))
    assert found.matches(device("globex/us")) is True
    assert found.matches(Resource("ticket", "t-1", "globex")) is False


def test_unknown_kinds_and_mixed_sides_are_always_denied(engine: Engine) -> None:
    """What the decision refuses outright, the plan refuses outright, with its reason."""
    unknown = engine.plan(VIEWER, "read", "spaceship")
    mixed = engine.plan(
        Principal("u", "acme", ("customer-viewer", "noc-engineer")), "read", "device"
    )
    assert (unknown.kind, unknown.reason) == ("always_denied", "unknown resource kind `spaceship`")
    assert mixed.kind == "always_denied"
    assert mixed.matches(device("acme")) is False


def test_principal_conditions_are_decided_at_plan_time() -> None:
    """A condition on the principal alone leaves nothing in the filter."""
    snapshot = snapshot_of([rule("r1", "allow", "principal.attributes.mfa == true")])
    without = plan(snapshot, Principal("u", "acme", ("c-view",)), "read", "device", {}, NOW)
    with_mfa = plan(
        snapshot, Principal("u", "acme", ("c-view",), {"mfa": True}), "read", "device", {}, NOW
    )
    assert (without.kind, with_mfa.kind) == ("always_denied", "conditional")
    assert with_mfa.filter == {"op": "within", "field": "tenant", "root": "acme"}


def test_a_deny_overrides_an_allow_inside_the_filter() -> None:
    """Resources a deny rule matches are left out even where an allow applies."""
    snapshot = snapshot_of(
        [rule("r1", "allow"), rule("r2", "deny", "resource.attributes.flag == true")]
    )
    found = plan(snapshot, Principal("u", "acme", ("c-view",)), "read", "device", {}, NOW)
    assert [
        found.matches(device("acme")),
        found.matches(device("acme", flag=True)),
    ] == [True, False]


def test_a_condition_that_would_raise_excludes_the_resource() -> None:
    """`level > 2` raises for a string level: that device is denied, even by another allow."""
    snapshot = snapshot_of(
        [rule("r1", "allow"), rule("r2", "allow", "resource.attributes.level > 2")]
    )
    found = plan(snapshot, Principal("u", "acme", ("c-view",)), "read", "device", {}, NOW)
    assert [
        found.matches(device("acme", level=3)),
        found.matches(device("acme", level=1)),
        found.matches(device("acme", level="high")),
    ] == [True, True, False]


def test_a_time_window_resolved_at_plan_time_sets_valid_until() -> None:
    """A window known from the context is decided now and expires the plan at its end."""
    snapshot = snapshot_of([rule("r1", "allow", "within_window(context.window)")])
    window = {"start": NOW - 60, "end": NOW + 60}
    found = plan(
        snapshot, Principal("u", "acme", ("c-view",)), "read", "device", {"window": window}, NOW
    )
    assert (found.kind, found.valid_until) == ("conditional", NOW + 60)


def test_a_condition_no_filter_can_express_is_a_loud_error() -> None:
    """Indexing into a resource attribute cannot be planned: plan_unsupported names the rule."""
    snapshot = snapshot_of([rule("r1", "allow", "resource.attributes.tags[0] == 'x'")])
    with pytest.raises(PlanUnsupportedError) as caught:
        plan(snapshot, Principal("u", "acme", ("c-view",)), "read", "device", {}, NOW)
    assert (caught.value.code, caught.value.rule_id) == ("plan_unsupported", "r1")


def test_a_malformed_request_is_refused_as_a_check_would_be(engine: Engine) -> None:
    """A bad tenant or an empty kind raises InvalidRequestError naming the field."""
    with pytest.raises(InvalidRequestError) as caught:
        engine.plan(Principal("u", "acme/", ("customer-viewer",)), "read", "device")
    assert caught.value.field == "principal.tenant"
    with pytest.raises(InvalidRequestError):
        engine.plan(VIEWER, "read", "")


def test_a_plan_is_json_serialisable_as_it_is() -> None:
    """to_dict() survives a JSON round trip unchanged."""
    snapshot = snapshot_of([rule("r1", "allow", "resource.attributes.region in ['eu', 'us']")])
    found = plan(snapshot, Principal("u", "acme", ("c-view",)), "read", "device", {}, NOW).to_dict()
    assert found == json.loads(json.dumps(found))
    assert found["filter"]["args"][1]["op"] == "in"


def test_a_filter_past_the_node_bound_is_refused_quickly() -> None:
    """24 parenthesised `or`s that may raise would double the filter per level: refused."""
    condition = "resource.attributes.x > 0"
    for bound in range(1, 25):
        condition = f"({condition} or resource.attributes.x > {bound})"
    snapshot = snapshot_of([rule("r1", "allow", condition)])
    with pytest.raises(PlanUnsupportedError) as caught:
        plan(snapshot, Principal("u", "acme", ("c-view",)), "read", "device", {}, NOW)
    assert "more than 10000 nodes" in str(caught.value)
