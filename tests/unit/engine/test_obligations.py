"""Obligations: notify on the NOC's changes, step-up on the MFA guardrail, nothing otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy import Engine
from cnm_policy.errors import BundleInvalidError
from cnm_policy.model import Obligation, Principal, Resource

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_768_478_400.0
NOC = Principal("s-900", "provider/noc", ("noc-engineer",), {"mfa": True})
ADMIN = Principal("u-101", "acme/emea", ("customer-admin",), {"mfa": False})
CIRCUIT = Resource("circuit", "c-77", "globex/eu")


@pytest.fixture(scope="module")
def engine() -> Engine:
    """The default bundle at a fixed instant."""
    return Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)


def test_a_noc_change_notifies_the_customer_tenant(engine: Engine) -> None:
    """The allow carries `notify` naming the resource's tenant and the audience."""
    decision = engine.check(NOC, "configure", CIRCUIT, {"change_ticket": "CHG-1"})
    assert decision.allowed
    expected = Obligation(
        "notify", "noc-change-network", (("audience", "tenant-admins"), ("tenant", "globex/eu"))
    )
    assert decision.obligations == (expected,)


def test_a_deny_without_mfa_asks_for_step_up(engine: Engine) -> None:
    """The MFA guardrail's deny says which assurance lifts it."""
    decision = engine.check(ADMIN, "configure", Resource("device", "d", "acme/emea"))
    assert not decision.allowed
    assert decision.rule_ids == ("deny-configure-without-mfa",)
    assert [(o.type, o.param("assurance")) for o in decision.obligations] == [("step_up", "mfa")]


def test_no_step_up_when_another_deny_also_decides(engine: Engine) -> None:
    """A frozen resource stays denied after MFA, so no step-up is offered."""
    frozen = Resource("device", "d", "acme/emea", {"change_freeze": True})
    decision = engine.check(ADMIN, "configure", frozen)
    assert set(decision.rule_ids) == {"deny-configure-without-mfa", "deny-change-during-freeze"}
    assert decision.obligations == ()


def test_no_step_up_for_the_default_deny(engine: Engine) -> None:
    """Without an allow in play, stronger authentication would not help: no step-up."""
    other = Resource("device", "d", "globex")
    decision = engine.check(ADMIN, "configure", other)
    assert (decision.allowed, decision.obligations) == (False, ())


@given(tenant=st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,3}", fullmatch=True))
def test_notify_always_names_the_resource_tenant(tenant: str) -> None:
    """Whatever tenant the NOC changes, the notification goes to that tenant."""
    engine = Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)
    decision = engine.check(NOC, "reboot", Resource("circuit", "c", tenant), {"change_ticket": "X"})
    assert [o.param("tenant") for o in decision.obligations] == (
        [tenant] if decision.allowed else []
    )


@pytest.mark.parametrize(
    ("effect", "obligation", "message"),
    [
        ("allow", "{type: step_up, assurance: mfa}", "belongs on deny rules"),
        ("deny", "{type: notify}", "belongs on allow rules"),
        ("allow", "{type: pager}", "is not one of"),
        ("deny", "{type: step_up}", "has no `assurance`"),
        ("deny", "{type: step_up, assurance: ''}", "non-empty string"),
    ],
)
def test_misdeclared_obligations_are_located_load_errors(
    tmp_path: Path, effect: str, obligation: str, message: str
) -> None:
    """A wrong type, effect or parameter is refused when the bundle loads, naming the problem."""
    bundle = tmp_path / "b"
    (bundle / "rules").mkdir(parents=True)
    for name in ("bundle.yaml", "roles.yaml", "resources.yaml"):
        (bundle / name).write_text((ROOT / "policies" / "cnm" / name).read_text())
    (bundle / "rules" / "r.yaml").write_text(
        "rules:\n  - id: r1\n    description: d\n    effect: "
        + effect
        + "\n    roles: [customer-admin]\n    resources: [device]\n    actions: [read]\n"
        + "    scope: own\n    obligations: ["
        + obligation
        + "]\n"
    )
    with pytest.raises(BundleInvalidError) as caught:
        Engine.from_path(bundle)
    assert message in str(caught.value) or any(message in p.message for p in caught.value.problems)
