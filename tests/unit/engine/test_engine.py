"""The Engine front door: decisions, their reasons, input errors, batches and swaps."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from cnm_policy import Engine, InvalidRequestError, Principal, Resource, load_snapshot
from cnm_policy.cache import CachedEngine
from tests.conftest import FIXED_NOW, BundleFactory

VIEWER = Principal(
    id="u-17", tenant="acme/emea", roles=("customer-viewer",), attributes={"mfa": True}
)
ADMIN = Principal(
    id="u-18", tenant="acme/emea", roles=("customer-admin",), attributes={"mfa": True}
)
DEVICE = Resource(kind="device", id="dev-9", tenant="acme/emea/paris", attributes={})


def test_issue_example(engine: Engine) -> None:
    """The documented example works and reports version and digest."""
    decision = engine.check(VIEWER, "read", DEVICE, context={"channel": "portal"})
    assert decision.allowed is True
    assert decision.rule_ids == ("customer-read-network",)
    assert decision.reason == "allowed by rule `customer-read-network`"
    assert decision.policy_version == "1.0.0"
    assert decision.policy_digest == engine.snapshot.digest
    assert decision.policy_digest.startswith("sha256:")


def test_default_deny_has_no_rule_ids(engine: Engine) -> None:
    """Nothing matched: deny with an empty tuple of rule ids."""
    decision = engine.check(VIEWER, "configure", DEVICE)
    assert (decision.allowed, decision.rule_ids) == (False, ())


def test_deny_overrides_allow_across_roles(engine: Engine) -> None:
    """A guardrail deny wins over an allow coming from another role of the same principal."""
    both = Principal(id="u", tenant="acme/emea", roles=("customer-viewer", "customer-admin"))
    decision = engine.check(both, "configure", DEVICE)
    assert decision.allowed is False
    assert decision.rule_ids == ("deny-configure-without-mfa",)


@pytest.mark.parametrize(
    ("principal", "action", "resource", "field"),
    [
        (Principal(id="", tenant="acme", roles=()), "read", DEVICE, "principal.id"),
        (Principal(id="u", tenant="acme//x", roles=()), "read", DEVICE, "principal.tenant"),
        (Principal(id="u", tenant="acme", roles=("",)), "read", DEVICE, "principal.roles[0]"),
        (VIEWER, "", DEVICE, "action"),
        (VIEWER, "read", Resource(kind="", id="d", tenant="acme"), "resource.kind"),
        (VIEWER, "read", Resource(kind="device", id="d", tenant=""), "resource.tenant"),
        (
            Principal(id="u", tenant="acme", attributes={"assigned_tenants": "acme"}),
            "read",
            DEVICE,
            "principal.attributes.assigned_tenants",
        ),
    ],
)
def test_malformed_requests_name_the_field(
    engine: Engine, principal: Principal, action: str, resource: Resource, field: str
) -> None:
    """Bad input raises InvalidRequestError naming the offending field."""
    with pytest.raises(InvalidRequestError) as caught:
        engine.check(principal, action, resource)
    assert caught.value.field == field


def test_context_must_be_a_mapping(engine: Engine) -> None:
    """A non-object context is rejected, not silently ignored."""
    with pytest.raises(InvalidRequestError) as caught:
        engine.check(VIEWER, "read", DEVICE, context=["x"])  # type: ignore[arg-type]
    assert caught.value.field == "context"


def test_batch_keeps_request_order(engine: Engine) -> None:
    """check_batch answers item by item, in order."""
    items = [
        ("read", DEVICE),
        ("configure", DEVICE),
        ("read", Resource(kind="device", id="x", tenant="globex")),
        ("create", Resource(kind="ticket", id="t", tenant="acme/emea")),
    ]
    decisions = engine.check_batch(VIEWER, items)
    assert [d.allowed for d in decisions] == [True, False, False, True]


def test_condition_error_fails_closed(make_bundle: BundleFactory) -> None:
    """An allow whose condition cannot be evaluated denies, and the error is reported."""
    rule = """\
rules:
  - id: typed-allow
    description: allow when the clearance level is high enough
    effect: allow
    roles: [customer-viewer]
    resources: [invoice]
    actions: [read]
    scope: subtree
    when: principal.attributes.level > 3
"""
    engine = Engine.from_path(make_bundle({"rules/x.yaml": rule}))
    invoice = Resource(kind="invoice", id="i", tenant="acme/emea")
    bad = Principal(
        id="u", tenant="acme/emea", roles=("customer-viewer",), attributes={"level": "9"}
    )
    decision = engine.check(bad, "read", invoice)
    assert decision.allowed is False
    assert decision.rule_ids == ("typed-allow",)
    assert len(decision.errors) == 1
    assert "typed-allow" in decision.errors[0]
    good = Principal(
        id="u", tenant="acme/emea", roles=("customer-viewer",), attributes={"level": 9}
    )
    assert engine.check(good, "read", invoice).allowed is True


def test_time_dependent_decision_reports_validity(engine: Engine) -> None:
    """A reboot allowed inside a window is valid only until the window closes."""
    window = {"start": "2026-01-15T11:00:00Z", "end": "2026-01-15T13:00:00Z"}
    decision = engine.check(ADMIN, "reboot", DEVICE, context={"maintenance_window": window})
    assert decision.allowed is True
    assert decision.valid_until == FIXED_NOW + 3600
    assert engine.check(VIEWER, "read", DEVICE).valid_until is None


def test_explain_traces_every_candidate(engine: Engine) -> None:
    """explain=True says which part of each rule matched."""
    decision = engine.check(ADMIN, "configure", DEVICE, explain=True)
    traces = {t.rule_id: t for t in decision.trace}
    assert traces["customer-admin-change-network"].applied is True
    assert traces["deny-configure-without-mfa"].condition is False
    assert traces["noc-change-network"].role_matched is False
    assert traces["noc-change-network"].condition is None
    assert decision.allowed is True


def test_pinned_rule_applies_only_inside_its_tenants(make_bundle: BundleFactory) -> None:
    """`tenants:` pins a rule to those organisation subtrees."""
    rule = """\
rules:
  - id: acme-viewers-see-invoices
    description: acme's viewers may read invoices (a per-customer contract term)
    effect: allow
    roles: [customer-viewer]
    resources: [invoice]
    actions: [read]
    scope: subtree
    tenants: [acme]
"""
    engine = Engine.from_path(make_bundle({"rules/x.yaml": rule}))
    acme = Resource(kind="invoice", id="i", tenant="acme/emea")
    assert engine.check(VIEWER, "read", acme).rule_ids == ("acme-viewers-see-invoices",)
    evil = Principal(id="e", tenant="acme-evil", roles=("customer-viewer",))
    evil_invoice = Resource(kind="invoice", id="i", tenant="acme-evil")
    assert engine.check(evil, "read", evil_invoice).allowed is False


def test_swap_serves_the_new_version(engine: Engine, make_bundle: BundleFactory) -> None:
    """After swap, decisions carry the new version's digest; the old one is returned."""
    old = engine.snapshot
    new = load_snapshot(make_bundle({"bundle.yaml": "name: cnm\nversion: '2.0.0'\n"}))
    assert engine.swap(new) is old
    decision = engine.check(VIEWER, "read", DEVICE)
    assert (decision.policy_version, decision.policy_digest) == ("2.0.0", new.digest)


def test_snapshot_metadata(engine: Engine, default_bundle: Path) -> None:
    """The snapshot reports name, rule count and where it came from."""
    snapshot = engine.snapshot
    assert (snapshot.name, snapshot.rule_count, snapshot.loaded_at) == ("cnm", 23, FIXED_NOW)
    assert snapshot.source == str(default_bundle)


def test_a_used_snapshot_is_freed_without_the_cycle_collector(default_bundle: Path) -> None:
    """Snapshots hold no reference cycles, so the sidecar may gc.freeze() a loaded one."""
    # The collector never examines a frozen object again: a snapshot in a cycle would leak.
    gc.collect()
    gc.disable()
    try:
        engine = CachedEngine(Engine(load_snapshot(default_bundle)))
        for action in ("read", "configure", "reboot"):
            engine.check(
                Principal("u", "acme", ("customer-admin",), {"mfa": True}),
                action,
                Resource("device", "d-1", "acme/emea", {"shared": False}),
                {"change_ticket": "CHG-1"},
                explain=True,
            )
        gc.collect()  # what loading left behind (casbin's role manager has cycles)
        del engine
        assert gc.collect() == 0, "dropping a used snapshot left cyclic garbage"
    finally:
        gc.enable()
