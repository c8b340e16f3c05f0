"""Decision semantics on the default bundle: typed guardrails and honest deny reasons."""

from __future__ import annotations

from typing import Any

import pytest

from cnm_policy import Engine, Principal, Resource

VIEWER = Principal(
    id="u-17", tenant="acme/emea", roles=("customer-viewer",), attributes={"mfa": True}
)
ADMIN = Principal(
    id="u-18", tenant="acme/emea", roles=("customer-admin",), attributes={"mfa": True}
)


def device(**attributes: Any) -> Resource:
    return Resource(kind="device", id="dev-9", tenant="acme/emea/paris", attributes=attributes)


@pytest.mark.parametrize(
    ("shared", "kind"),
    [
        ("true", "a string"),
        (1, "a number"),
        ("yes", "a string"),
        (1.0, "a number"),
        ([True], "a list"),
        ({"value": True}, "an object"),
    ],
)
def test_shared_guardrail_is_not_bypassed_by_a_type(engine: Engine, shared: Any, kind: str) -> None:
    """`shared` of another type than boolean denies the customer, with the error reported."""
    decision = engine.check(VIEWER, "read", device(shared=shared))
    error = f"rule `deny-customer-shared-infrastructure`: `==` compares {kind} with a boolean"
    assert (decision.allowed, decision.errors) == (False, (error,))


@pytest.mark.parametrize("freeze", ["true", 1, "yes"])
def test_change_freeze_is_not_bypassed_by_a_type(engine: Engine, freeze: Any) -> None:
    """A customer admin never configures a device whose `change_freeze` is a non-boolean."""
    decision = engine.check(ADMIN, "configure", device(change_freeze=freeze))
    assert decision.allowed is False
    assert decision.rule_ids == ("deny-change-during-freeze",)


@pytest.mark.parametrize(("attributes", "allowed"), [({}, True), ({"shared": False}, True)])
def test_absent_or_false_guardrail_attributes_still_allow(
    engine: Engine, attributes: dict[str, Any], allowed: bool
) -> None:
    """Typed semantics keep the intended answers: absent (null) or false is not shared."""
    assert engine.check(VIEWER, "read", device(**attributes)).allowed is allowed
