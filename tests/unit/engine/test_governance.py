"""Actors, self-managed barriers, internal tenants and break-glass, on the default bundle."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy import Engine
from cnm_policy.engine._governance import barrier_between
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import Principal, Resource

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_768_478_400.0
SUPPORT = Principal(
    "s-910", "provider/support", ("support-agent",), {"mfa": True, "assigned_tenants": ["acme"]}
)
GLOBEX = Resource("circuit", "c-77", "globex")
JUSTIFIED = {"break_glass": {"incident": "INC-4711", "reason": "core outage"}}
ADMIN = Principal("u-101", "acme/emea", ("customer-admin",), {"mfa": True})
LAB = Resource("device", "lab-1", "acme/emea/labs/bench")
SHARED = Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)  # for the properties


@pytest.fixture(scope="module")
def engine() -> Engine:
    """The default bundle at a fixed instant."""
    return Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)


def test_break_glass_allows_expire_notify_and_are_classed(engine: Engine) -> None:
    """A break-glass allow lasts at most the rule's four hours, tells the tenant, is audited."""
    decision = engine.check(SUPPORT, "configure", GLOBEX, JUSTIFIED)
    assert decision.allowed and decision.rule_ids == ("support-break-glass-network",)
    assert decision.audit_class == "break_glass"
    assert decision.valid_until == NOW + 4 * 3600
    kinds = {o.type: o for o in decision.obligations}
    assert kinds["notify"].param("tenant") == "globex"
    assert kinds["expire"].param("at") == "2026-01-15T16:00:00Z"


@pytest.mark.parametrize(
    "justification",
    [
        {"incident": "INC-1", "reason": "x" * 1_000_000},
        {"incident": "INC 1; drop", "reason": "r"},
        {"incident": "", "reason": "r"},
        {"reason": "r"},
        "INC-1",
        {"incident": "INC-1", "reason": "   "},
    ],
    ids=["megabyte-reason", "bad-incident", "empty-incident", "no-incident", "text", "blank"],
)
def test_a_bad_justification_denies_quickly(engine: Engine, justification: Any) -> None:
    """Anything but an incident id and a bounded reason fails closed, and costs little."""
    started = time.perf_counter()
    decision = engine.check(SUPPORT, "configure", GLOBEX, {"break_glass": justification})
    assert time.perf_counter() - started < 0.05
    assert not decision.allowed
    assert decision.errors and decision.audit_class is None


def test_break_glass_never_applies_without_a_justification(engine: Engine) -> None:
    """No context.break_glass: the unassigned customer stays out of reach."""
    assert not engine.check(SUPPORT, "read", GLOBEX).allowed
    assert not engine.check(SUPPORT, "read", GLOBEX, {"break_glass": None}).allowed


def test_an_audited_crossing_into_a_self_managed_tenant(engine: Engine) -> None:
    """Reading inside the lab goes through the crossing rule and is classed for audit."""
    decision = engine.check(ADMIN, "read", LAB)
    assert decision.allowed and decision.audit_class == "self_managed_crossing"
    outside = engine.check(ADMIN, "read", Resource("device", "d", "acme/emea/paris"))
    assert outside.allowed and outside.audit_class is None


def test_an_actor_is_logged_in_the_decision_but_cannot_widen(engine: Engine) -> None:
    """An internal actor acting for a customer admin gets no more than the admin has."""
    actor = Principal("s-900", "provider/noc", ("noc-engineer",), {"mfa": True})
    foreign = Resource("device", "d", "globex")
    assert not engine.check(ADMIN, "read", foreign, actor=actor).allowed
    assert engine.check(ADMIN, "read", Resource("device", "d", "acme/emea"), actor=actor).allowed


def test_an_invalid_actor_names_the_actor_field(engine: Engine) -> None:
    """A malformed actor is an invalid request naming `actor.*`, not the principal."""
    with pytest.raises(InvalidRequestError) as caught:
        engine.check(ADMIN, "read", LAB, actor=Principal("", "acme", ()))
    assert caught.value.field == "actor.id"


_SEGMENT = st.sampled_from(["acme", "emea", "labs", "paris", "acme-evil", "x"])
_TENANT = st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join)


@given(
    home=_TENANT,
    target=_TENANT,
    actor_home=_TENANT,
    roles=st.sampled_from([("customer-admin",), ("customer-viewer",), (), ("noc-engineer",)]),
)
def test_a_customer_side_actor_never_reaches_outside_its_subtree(
    home: str, target: str, actor_home: str, roles: tuple[str, ...]
) -> None:
    """Whatever the principal may do, a non-internal actor's requests stay in its own tree."""
    engine = SHARED
    principal = Principal("p", home, ("customer-admin",), {"mfa": True})
    actor = Principal("a", actor_home, roles, {"mfa": True})
    for action in ("read", "configure"):
        decision = engine.check(principal, action, Resource("device", "d", target), actor=actor)
        if decision.allowed:
            assert target == actor_home or target.startswith(actor_home + "/")
            assert target == home or target.startswith(home + "/")


@given(home=_TENANT, target=_TENANT)
def test_subtree_reach_stops_at_self_managed_tenants(home: str, target: str) -> None:
    """A customer viewer never reads inside a self-managed tenant below its own."""
    engine = SHARED
    viewer = Principal("v", home, ("customer-viewer",))
    decision = engine.check(viewer, "read", Resource("device", "d", target))
    barrier = barrier_between(target, home, frozenset({"acme/emea/labs"}))
    assert decision.allowed == ((target == home or target.startswith(home + "/")) and not barrier)


def test_barrier_between_is_segment_exact() -> None:
    """Only tenants strictly below the root and at or above the target count."""
    barriers = frozenset({"acme/labs"})
    assert barrier_between("acme/labs/x", "acme", barriers)
    assert barrier_between("acme/labs", "acme", barriers)
    assert not barrier_between("acme/labs/x", "acme/labs", barriers)  # inside, from itself
    assert not barrier_between("acme/labsx/y", "acme", barriers)
    assert not barrier_between("acme", "acme", barriers)
