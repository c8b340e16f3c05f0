"""Parameterised limits: an allow up to a computed bound; above it, a deny that says so."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy import Engine
from cnm_policy.errors import BundleInvalidError
from cnm_policy.model import LimitExceeded, Principal, Resource

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_768_478_400.0
CIRCUIT = Resource("circuit", "c-1", "acme/emea")
RULE = "customer-admin-change-bandwidth"


def admin(contracted: Any = 1000, mfa: bool = True) -> Principal:
    """An acme customer admin with a contracted rate."""
    return Principal(
        "u-1", "acme", ("customer-admin",), {"mfa": mfa, "contracted_mbps": contracted}
    )


@pytest.fixture(scope="module")
def engine() -> Engine:
    """The default bundle at a fixed instant."""
    return Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)


def test_within_and_at_the_limit_is_allowed(engine: Engine) -> None:
    """Asking up to and including the contracted rate is allowed by the limited rule."""
    for asked in (1, 999.5, 1000):
        decision = engine.check(admin(), "change_bandwidth", CIRCUIT, {"bandwidth_mbps": asked})
        assert (decision.allowed, decision.rule_ids) == (True, (RULE,))
        assert decision.limits_exceeded == ()


def test_above_the_limit_is_a_deny_naming_limit_and_asked(engine: Engine) -> None:
    """The deny says limit_exceeded with both numbers, and names the limited rule."""
    decision = engine.check(admin(), "change_bandwidth", CIRCUIT, {"bandwidth_mbps": 1001})
    assert not decision.allowed
    assert decision.rule_ids == (RULE,)
    assert decision.reason.startswith("limit_exceeded:")
    assert decision.limits_exceeded == (LimitExceeded(RULE, "bandwidth_mbps", 1000.0, 1001.0),)
    assert decision.obligations == ()


@pytest.mark.parametrize(
    ("contracted", "context"),
    [
        (1000, {}),
        (1000, {"bandwidth_mbps": "500"}),
        (1000, {"bandwidth_mbps": True}),
        (1000, {"bandwidth_mbps": math.inf}),
        (None, {"bandwidth_mbps": 1}),
        ("1000", {"bandwidth_mbps": 1}),
    ],
    ids=["no-ask", "text-ask", "bool-ask", "inf-ask", "no-contract", "text-contract"],
)
def test_anything_but_two_numbers_fails_closed(
    engine: Engine, contracted: Any, context: dict[str, Any]
) -> None:
    """A missing or non-numeric bound or ask is a condition error: denied, with the error."""
    decision = engine.check(admin(contracted), "change_bandwidth", CIRCUIT, context)
    assert not decision.allowed
    assert len(decision.errors) == 1
    assert "limit" in decision.errors[0] or "asked" in decision.errors[0]


def test_a_guardrail_still_overrides_a_request_within_the_limit(engine: Engine) -> None:
    """Without MFA the change is denied by the guardrail, which offers step-up."""
    decision = engine.check(admin(mfa=False), "change_bandwidth", CIRCUIT, {"bandwidth_mbps": 10})
    assert decision.rule_ids == ("deny-configure-without-mfa",)
    assert [o.type for o in decision.obligations] == ["step_up"]


@given(
    contracted=st.integers(0, 10**6),
    asked=st.one_of(st.integers(0, 2 * 10**6), st.floats(0, 2e6, allow_nan=False)),
)
def test_allowed_exactly_when_the_ask_is_within_the_limit(contracted: int, asked: float) -> None:
    """For any rate and ask, the decision is allow iff asked <= contracted."""
    engine = Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)
    decision = engine.check(
        admin(contracted), "change_bandwidth", CIRCUIT, {"bandwidth_mbps": asked}
    )
    assert decision.allowed == (asked <= contracted)
    assert bool(decision.limits_exceeded) == (asked > contracted)


def _bundle(tmp_path: Path, effect: str, limits: str) -> Path:
    """A copy of the default bundle's layout with one rule declaring `limits`."""
    bundle = tmp_path / "b"
    (bundle / "rules").mkdir(parents=True)
    for name in ("bundle.yaml", "roles.yaml", "resources.yaml"):
        (bundle / name).write_text((ROOT / "policies" / "cnm" / name).read_text())
    (bundle / "rules" / "r.yaml").write_text(
        f"rules:\n  - id: r1\n    description: d\n    effect: {effect}\n"
        "    roles: [customer-admin]\n    resources: [circuit]\n    actions: [change_bandwidth]\n"
        f"    scope: own\n    limits: {limits}\n"
    )
    return bundle


@pytest.mark.parametrize(
    ("effect", "limits", "code"),
    [
        ("deny", "{x: 1}", "invalid_limit"),
        ("allow", "{'Bad Name': 1}", "invalid_limit"),
        ("allow", "{x: true}", "invalid_limit"),
        ("allow", "{x: 'principal.attributes.'}", "condition_syntax"),
        ("allow", "[1, 2]", "invalid_type"),
    ],
)
def test_misdeclared_limits_are_located_load_errors(
    tmp_path: Path, effect: str, limits: str, code: str
) -> None:
    """Limits on a deny, bad names, non-numbers and broken expressions fail the load."""
    with pytest.raises(BundleInvalidError) as caught:
        Engine.from_path(_bundle(tmp_path, effect, limits))
    codes = {p.code for p in caught.value.problems}
    assert any(c.startswith(code) for c in codes), codes
