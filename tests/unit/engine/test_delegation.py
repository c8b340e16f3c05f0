"""`can_grant`: delegated administration never reaches beyond the first granter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy import CachedEngine, Engine
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import Principal

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_768_478_400.0
DAY = 86_400.0
ENGINE = Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)
ADMIN = Principal("u-101", "acme/emea", ("customer-admin",), {"mfa": True})


@pytest.mark.parametrize(
    ("granter", "role", "tenant", "until", "allowed", "reason"),
    [
        (ADMIN, "customer-viewer", "acme/emea/paris", NOW + 30 * DAY, True, "holds"),
        (ADMIN, "customer-viewer", "acme/emea", NOW + 90 * DAY, True, "holds"),
        (ADMIN, "customer-viewer", "acme/emea/paris", NOW + 91 * DAY, False, "at most 90"),
        (ADMIN, "customer-viewer", "acme/emea/paris", None, False, "at most 90"),
        (ADMIN, "customer-viewer", "acme/emea/paris", NOW - 1, False, "passed"),
        (ADMIN, "customer-viewer", "acme/apac", NOW + DAY, False, "outside"),
        (ADMIN, "customer-viewer", "acme-evil", NOW + DAY, False, "outside"),
        (ADMIN, "customer-viewer", "acme/emea/labs", NOW + DAY, False, "outside"),
        (ADMIN, "customer-admin", "acme/emea/paris", NOW + DAY, False, "not delegable"),
        (ADMIN, "noc-engineer", "acme/emea/paris", NOW + DAY, False, "not delegable"),
        (ADMIN, "root", "acme/emea", NOW + DAY, False, "unknown role"),
        (
            Principal("u-1", "acme", ("customer-billing",)),
            "customer-viewer",
            "acme",
            NOW + DAY,
            False,
            "does not hold",
        ),
        (
            Principal("u-2", "acme", ("customer-admin", "noc-engineer")),
            "customer-viewer",
            "acme",
            NOW + DAY,
            False,
            "both",
        ),
    ],
    ids=[
        "inherited-role-in-subtree",
        "own-tenant-at-the-ceiling",
        "beyond-the-ceiling",
        "forever",
        "in-the-past",
        "sibling-tenant",
        "look-alike-tenant",
        "self-managed-tenant",
        "non-delegable-role",
        "other-side-role",
        "unknown-role",
        "role-not-held",
        "mixed-sides",
    ],
)
def test_can_grant_answers(
    granter: Principal, role: str, tenant: str, until: float | None, allowed: bool, reason: str
) -> None:
    """Each rule of delegation, allowed and refused, with a reason that says why."""
    answer = ENGINE.can_grant(granter, role, tenant, until)
    assert (answer.allowed, reason in answer.reason) == (allowed, True), answer.reason


def test_the_cached_engine_answers_the_same() -> None:
    """`CachedEngine.can_grant` is the engine's answer."""
    cached = CachedEngine(ENGINE)
    args = (ADMIN, "customer-viewer", "acme/emea/x", NOW + DAY)
    assert cached.can_grant(*args) == ENGINE.can_grant(*args)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((ADMIN, "customer-viewer", "acme//x", None), "grantee_tenant"),
        ((ADMIN, "", "acme", None), "role"),
        ((ADMIN, "customer-viewer", "acme", float("nan")), "valid_until"),
        ((Principal("", "acme", ()), "customer-viewer", "acme", None), "principal.id"),
    ],
)
def test_malformed_questions_are_invalid_requests(args: tuple[Any, ...], field: str) -> None:
    """Bad input raises InvalidRequestError naming the field, never a refusal or an allow."""
    with pytest.raises(InvalidRequestError) as caught:
        ENGINE.can_grant(*args)
    assert caught.value.field == field


_SEGMENT = st.sampled_from(["acme", "emea", "labs", "paris", "x", "acme-evil"])
_TENANT = st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join)


@given(first=_TENANT, chain=st.lists(_TENANT, min_size=1, max_size=5))
def test_no_chain_of_grants_reaches_beyond_its_first_granter(first: str, chain: list[str]) -> None:
    """Grant after grant, every grantee stays inside the first granter's tree, with its role."""
    granter = Principal("g0", first, ("customer-admin",))
    holders = [granter]
    for index, tenant in enumerate(chain):
        answer = ENGINE.can_grant(holders[-1], "customer-viewer", tenant, NOW + DAY)
        if not answer.allowed:
            break
        assert tenant == first or tenant.startswith(first + "/")
        holders.append(Principal(f"g{index + 1}", tenant, ("customer-viewer",)))
    for holder in holders[1:]:
        assert holder.tenant == first or holder.tenant.startswith(first + "/")
        assert set(holder.roles) <= {"customer-viewer"}  # the first granter holds it (inherited)
