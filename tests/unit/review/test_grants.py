"""Effective grants: each role's access through its own rules and the roles it inherits."""

from __future__ import annotations

from cnm_policy.policy import Effect, Scope, Side
from cnm_policy.review.grants import GrantKey, GrantSource, effective_grants
from cnm_policy.review.reach import Reach
from tests.unit.review.bundles import fixture, load


def test_inherited_grants_name_the_role_they_come_through() -> None:
    """customer-admin reads devices through the rule written for customer-viewer."""
    grants = effective_grants(load(fixture("good")))
    key = GrantKey("customer-admin", Side.CUSTOMER, "device", "read", Effect.ALLOW)
    expected = {Reach(Scope.SUBTREE): (GrantSource("cust-read", "customer-viewer"),)}
    assert expected == grants[key]


def test_a_wildcard_deny_applies_to_every_role() -> None:
    """`roles: "*"` guardrails are effective for each role, with their condition."""
    grants = effective_grants(load(fixture("good")))
    denied = sorted(
        key.role
        for key in grants
        if key.effect is Effect.DENY and (key.kind, key.action) == ("device", "reboot")
    )
    assert denied == ["customer-admin", "customer-viewer", "noc-engineer"]
    key = GrantKey("noc-engineer", Side.INTERNAL, "device", "reboot", Effect.DENY)
    frozen = "has(resource.attributes.change_freeze) and resource.attributes.change_freeze == true"
    reach = Reach(Scope.ANY, condition=frozen)
    assert {reach: (GrantSource("deny-freeze"),)} == grants[key]


def test_a_role_does_not_get_the_grants_of_roles_that_inherit_it() -> None:
    """Inheritance flows one way: viewers do not configure because admins do."""
    grants = effective_grants(load(fixture("good")))
    key = GrantKey("customer-viewer", Side.CUSTOMER, "device", "configure", Effect.ALLOW)
    assert key not in grants


def test_grant_source_reads_as_rule_and_role() -> None:
    """A source prints as the rule id, with the inherited role when there is one."""
    assert (str(GrantSource("r")), str(GrantSource("r", "v"))) == ("r", "r (via v)")
