"""`explain_request`: the engine's own decision with a row per rule that could apply."""

from __future__ import annotations

import pytest

from cnm_policy.engine import compile_bundle
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import AccessRequest, Principal, Resource
from cnm_policy.review.explain import explain_request
from cnm_policy.review.render_runs import render_explain
from cnm_policy.review.report import Format
from tests.conftest import DEFAULT_BUNDLE, FIXED_NOW
from tests.unit.review.bundles import fixture, load

ADMIN = Principal("u-2", "acme/emea", ("customer-admin",), {"mfa": True})
FROZEN = Resource("device", "dev-1", "acme/emea/paris", {"change_freeze": True})


def explain(request: AccessRequest) -> dict[str, tuple[object, ...]]:
    """rule id -> (role, kind, action, scope matched, condition state, applied)."""
    explanation = explain_request(compile_bundle(load(fixture("good"))), request, now=FIXED_NOW)
    return {
        item.rule.id: (
            item.trace.role_matched,
            item.trace.kind_matched,
            item.trace.action_matched,
            item.trace.scope_matched,
            item.condition_state,
            item.trace.applied,
        )
        for item in explanation.rules
    }


def test_a_guardrail_deny_is_shown_applying_next_to_the_allow() -> None:
    """Configuring a frozen device: the allow matched, the deny applied and won."""
    snapshot = compile_bundle(load(fixture("good")))
    explanation = explain_request(
        snapshot, AccessRequest(ADMIN, "configure", FROZEN), now=FIXED_NOW
    )
    assert (explanation.decision.allowed, explanation.decision.rule_ids) == (
        False,
        ("deny-freeze",),
    )
    assert explanation.effective_roles == ("customer-admin", "customer-viewer")
    assert explain(AccessRequest(ADMIN, "configure", FROZEN)) == {
        "cust-read": (True, True, False, True, "none", False),
        "cust-admin-configure": (True, True, True, True, "true", True),
        "noc-read": (False, True, False, True, "not evaluated", False),
        "noc-change": (False, True, True, True, "not evaluated", False),
        "deny-freeze": (True, True, True, True, "true", True),
    }


def test_a_scope_miss_is_visible() -> None:
    """Reading another customer's device: the viewer rule matches all but scope."""
    globex = Resource("device", "dev-9", "globex")
    rows = explain(AccessRequest(ADMIN, "read", globex))
    assert rows["cust-read"] == (True, True, True, False, "none", False)


def test_unknown_roles_are_reported() -> None:
    """Roles the bundle does not define are listed; the known role still decides."""
    principal = Principal("u-3", "acme", ("customer-viewer", "ghost"))
    snapshot = compile_bundle(load(fixture("good")))
    explanation = explain_request(snapshot, AccessRequest(principal, "read", FROZEN), now=FIXED_NOW)
    assert (explanation.unknown_roles, explanation.decision.allowed) == (("ghost",), True)


def test_an_invalid_request_raises_naming_the_field() -> None:
    """A malformed tenant is the caller's mistake, not a decision."""
    bad = Principal("u-3", "acme//x", ("customer-viewer",))
    snapshot = compile_bundle(load(fixture("good")))
    with pytest.raises(InvalidRequestError) as caught:
        explain_request(snapshot, AccessRequest(bad, "read", FROZEN), now=FIXED_NOW)
    assert caught.value.field == "principal.tenant"


def test_json_form_has_the_request_and_each_rule() -> None:
    """to_dict carries the decision, policy identity and per-rule matches."""
    snapshot = compile_bundle(load(fixture("good")))
    data = explain_request(
        snapshot, AccessRequest(ADMIN, "configure", FROZEN), now=FIXED_NOW
    ).to_dict()
    assert (data["allowed"], data["rule_ids"], data["at"]) == (
        False,
        ["deny-freeze"],
        "2026-01-15T12:00:00+00:00",
    )
    deny = next(rule for rule in data["rules"] if rule["rule"] == "deny-freeze")
    assert deny == {
        "rule": "deny-freeze",
        "effect": "deny",
        "file": "rules/guardrails.yaml",
        "line": 2,
        "role_matched": True,
        "kind_matched": True,
        "action_matched": True,
        "scope_matched": True,
        "scope": "any",
        "tenants": [],
        "condition": (
            "has(resource.attributes.change_freeze) and resource.attributes.change_freeze == true"
        ),
        "condition_result": "true",
        "error": None,
        "applied": True,
        "outcome": "decided",
    }


def test_a_condition_error_is_shown_forcing_the_deny() -> None:
    """An unparseable window makes the rule's condition an error, and the decision a deny."""
    snapshot = compile_bundle(load(DEFAULT_BUNDLE))
    window = {"start": "2026-01-15T11:00:00Z", "end": "soon"}
    request = AccessRequest(
        Principal("u-1", "acme/emea", ("customer-admin",), {"mfa": True}),
        "reboot",
        Resource("device", "dev-9", "acme/emea/paris"),
        {"maintenance_window": window},
    )
    explanation = explain_request(snapshot, request, now=FIXED_NOW)
    window_rule = next(r for r in explanation.rules if r.rule.id == "deny-reboot-outside-window")
    assert (window_rule.condition_state, window_rule.trace.applied) == ("error", False)
    assert (explanation.decision.allowed, window_rule.outcome) == (False, "decided")
    text = render_explain(explanation, Format.TEXT)
    rows = {line.split()[0]: line for line in text.splitlines()[6:]}
    assert rows["deny-reboot-outside-window"].endswith("ERROR: forces deny")
    assert rows["customer-admin-reboot-devices"].endswith("overridden")


def test_an_overridden_allow_is_not_shown_as_applied() -> None:
    """Configuring a frozen device: the admin's allow is `overridden`, the deny decided."""
    snapshot = compile_bundle(load(fixture("good")))
    explanation = explain_request(
        snapshot, AccessRequest(ADMIN, "configure", FROZEN), now=FIXED_NOW
    )
    outcomes = {item.rule.id: item.outcome for item in explanation.rules}
    assert outcomes == {
        "cust-read": "not applied",
        "cust-admin-configure": "overridden",
        "noc-read": "not applied",
        "noc-change": "not applied",
        "deny-freeze": "decided",
    }
    text = render_explain(explanation, Format.TEXT)
    rows = {line.split()[0]: line for line in text.splitlines()[5:] if line}
    assert rows["cust-admin-configure"].endswith("overridden")
    assert rows["deny-freeze"].endswith("APPLIED")


def test_a_deny_with_no_allow_to_override_is_shown_matched() -> None:
    """A viewer configuring a frozen device: default deny; the deny only matched."""
    viewer = Principal("u-5", "acme/emea", ("customer-viewer",))
    snapshot = compile_bundle(load(fixture("good")))
    explanation = explain_request(
        snapshot, AccessRequest(viewer, "configure", FROZEN), now=FIXED_NOW
    )
    data = explanation.to_dict()
    deny = next(rule for rule in data["rules"] if rule["rule"] == "deny-freeze")
    assert (data["rule_ids"], data["matched_denies"], deny["outcome"]) == (
        [],
        ["deny-freeze"],
        "matched",
    )
    text = render_explain(explanation, Format.TEXT)
    assert text.splitlines()[0] == "decision: DENY - no rule allows `configure` on `device` here"
    row = next(line for line in text.splitlines() if line.startswith("deny-freeze"))
    assert row.endswith("matched, no allow to override")


def reboot_with_a_broken_window(roles: tuple[str, ...]) -> AccessRequest:
    """A reboot whose maintenance window cannot be read, by a principal with `roles`."""
    window = {"start": "2026-01-15T11:00:00Z", "end": "soon"}
    principal = Principal("u-1", "acme/emea", roles, {"mfa": True})
    device = Resource("device", "dev-9", "acme/emea/paris")
    return AccessRequest(principal, "reboot", device, {"maintenance_window": window})


def test_a_deny_that_decided_by_failing_is_decided_with_its_error() -> None:
    """A failed deny that overrode an allow is in rule_ids: outcome `decided`, condition `error`."""
    snapshot = compile_bundle(load(DEFAULT_BUNDLE))
    explanation = explain_request(
        snapshot, reboot_with_a_broken_window(("customer-admin",)), now=FIXED_NOW
    )
    deny = next(
        r for r in explanation.to_dict()["rules"] if r["rule"] == "deny-reboot-outside-window"
    )
    assert (
        explanation.decision.rule_ids,
        deny["outcome"],
        deny["condition_result"],
        deny["error"] is not None,
    ) == (("deny-reboot-outside-window",), "decided", "error", True)


def test_a_failed_deny_with_no_allow_in_play_is_an_error_not_a_decider() -> None:
    """With no allow in play the default deny decides; the failed deny's outcome is `error`."""
    snapshot = compile_bundle(load(DEFAULT_BUNDLE))
    explanation = explain_request(
        snapshot, reboot_with_a_broken_window(("customer-viewer",)), now=FIXED_NOW
    )
    deny = next(r for r in explanation.rules if r.rule.id == "deny-reboot-outside-window")
    assert (explanation.decision.rule_ids, deny.outcome, deny.condition_state) == (
        (),
        "error",
        "error",
    )
    row = next(
        line
        for line in render_explain(explanation, Format.TEXT).splitlines()
        if line.startswith("deny-reboot-outside-window")
    )
    assert row.endswith("error, no allow to override")
