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
    """A device in acme/emea/paris with `attributes`."""
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


# --- deny reasons name only rules that decided (issue #17 item 10) ---------------------------

OUTSIDE = {"maintenance_window": {"start": "2026-01-16T01:00:00Z", "end": "2026-01-16T03:00:00Z"}}


def test_no_allow_is_the_default_deny_even_when_a_deny_matches(engine: Engine) -> None:
    """A viewer rebooting: no rule grants it, so the guardrail that matched is not blamed."""
    decision = engine.check(VIEWER, "reboot", device(), context=OUTSIDE)
    assert (decision.allowed, decision.rule_ids, decision.reason, decision.matched_denies) == (
        False,
        (),
        "no rule allows `reboot` on `device` here",
        ("deny-reboot-outside-window",),
    )


def test_a_deny_that_overrides_an_allow_decides(engine: Engine) -> None:
    """An admin rebooting outside the window: the guardrail overrode the admin's grant."""
    decision = engine.check(ADMIN, "reboot", device(), context=OUTSIDE)
    assert (decision.allowed, decision.rule_ids, decision.reason, decision.matched_denies) == (
        False,
        ("deny-reboot-outside-window",),
        "denied by rule `deny-reboot-outside-window`",
        ("deny-reboot-outside-window",),
    )


def test_every_matching_deny_is_listed_on_a_default_deny(engine: Engine) -> None:
    """A viewer configuring a frozen shared device: two guardrails matched, neither decided."""
    decision = engine.check(VIEWER, "configure", device(shared=True, change_freeze=True))
    assert (decision.rule_ids, decision.matched_denies) == (
        (),
        ("deny-change-during-freeze", "deny-customer-shared-infrastructure"),
    )


def test_a_deny_error_without_an_allow_is_reported_but_not_blamed(engine: Engine) -> None:
    """A malformed window on a viewer's reboot: default deny, the error still reported."""
    window = {"maintenance_window": {"start": "tomorrow", "end": "later"}}
    decision = engine.check(VIEWER, "reboot", device(), context=window)
    assert (decision.allowed, decision.rule_ids, decision.reason) == (
        False,
        (),
        "no rule allows `reboot` on `device` here",
    )
    assert decision.errors == (
        "rule `deny-reboot-outside-window`: window start `tomorrow` is not an RFC 3339 timestamp",
    )


def test_a_deny_error_against_an_applicable_allow_decides(engine: Engine) -> None:
    """The same malformed window on an admin's reboot: the error forced the deny."""
    window = {"maintenance_window": {"start": "tomorrow", "end": "later"}}
    decision = engine.check(ADMIN, "reboot", device(), context=window)
    assert (decision.allowed, decision.rule_ids, decision.matched_denies) == (
        False,
        ("deny-reboot-outside-window",),
        (),
    )
    assert decision.reason == (
        "denied: a condition could not be evaluated (rule `deny-reboot-outside-window`)"
    )


def test_an_allow_decision_has_no_matched_denies(engine: Engine) -> None:
    """An allowed read names its allow rule and no deny."""
    decision = engine.check(VIEWER, "read", device())
    assert (decision.rule_ids, decision.matched_denies) == (("customer-read-network",), ())


@pytest.mark.parametrize(
    ("principal", "action", "resource", "reason"),
    [
        (
            Principal(id="u", tenant="acme/emea", roles=("customer-superuser",)),
            "read",
            device(),
            "no rule allows `read` on `device` here",
        ),
        (
            ADMIN,
            "read",
            Resource("satellite", "s-1", "acme/emea"),
            "unknown resource kind `satellite`",
        ),
        (ADMIN, "delete", device(), "action `delete` is not defined for `device`"),
    ],
)
def test_unknown_names_are_denied(
    engine: Engine, principal: Principal, action: str, resource: Resource, reason: str
) -> None:
    """Unknown roles grant nothing; unknown kinds and actions are denied, with a reason."""
    decision = engine.check(principal, action, resource)
    assert (decision.allowed, decision.rule_ids, decision.reason) == (False, (), reason)
