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


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        ("acme/", "has an empty segment (a trailing `/`)"),
        ("/acme", "has an empty segment (a leading `/`)"),
        ("acme//emea", "has an empty segment (`//`)"),
    ],
)
def test_an_empty_segment_is_named_as_such(tenant: str, expected: str) -> None:
    """`acme/` says what is wrong instead of quoting an empty segment as ``."""
    assert tenant_problem(tenant) == expected


def test_a_long_invalid_segment_is_not_echoed_whole() -> None:
    """The offending segment is quoted at most 63 characters long."""
    problem = tenant_problem("acme/" + "!" * 200)
    assert problem is not None
    assert len(problem) < 200


def test_tenants_are_case_sensitive() -> None:
    """`Acme` and `acme` are two organisations, as the README says."""
    assert (is_within("Acme/emea", "acme"), is_within("acme/emea", "Acme")) == (False, False)
