"""Tenant paths are matched on whole segments, never on string prefixes."""

from __future__ import annotations

import pytest

from cnm_policy.policy import is_within, tenant_problem


@pytest.mark.parametrize(
    ("tenant", "root", "expected"),
    [
        ("acme", "acme", True),
        ("acme/emea", "acme", True),
        ("acme/emea/paris", "acme/emea", True),
        ("acme-evil", "acme", False),
        ("acmex/emea", "acme", False),
        ("acme", "acme/emea", False),
        ("acme/emea2", "acme/emea", False),
    ],
)
def test_is_within(tenant: str, root: str, expected: bool) -> None:
    """Containment follows path segments."""
    assert is_within(tenant, root) is expected


@pytest.mark.parametrize(
    "tenant", ["", "/acme", "acme/", "acme//emea", "acme/../x", "ac me", "a" * 300, 7, None]
)
def test_invalid_tenants(tenant: object) -> None:
    """Malformed paths are rejected with a reason."""
    assert tenant_problem(tenant) is not None


@pytest.mark.parametrize("tenant", ["acme", "acme/emea/paris", "Org_1/site.2/x-3"])
def test_valid_tenants(tenant: str) -> None:
    """Ordinary organisation paths are accepted."""
    assert tenant_problem(tenant) is None
