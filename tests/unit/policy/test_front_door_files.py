"""routes.yaml and principals.yaml: validated with the bundle, located, and applied exactly."""

from __future__ import annotations

import pytest

from cnm_policy.errors import BundleInvalidError
from cnm_policy.policy import load_bundle
from cnm_policy.policy._principal_mapping import ClaimsMapping
from tests.conftest import BundleFactory

ROUTES = """\
routes:
  - {method: GET, path: "/orgs/{org}/devices/{id}", action: read, kind: device,
     id: "{id}", tenant: "{org}"}
  - {method: [PUT, PATCH], path: "/devices/{id}", action: configure, kind: device,
     id: "{id}", tenant: "header:X-Tenant"}
  - {method: "*", path: /health, action: read, kind: device, tenant: acme}
"""

NO_HEADERS: dict[str, str] = {}


def test_a_route_table_maps_method_and_path_to_a_check(make_bundle: BundleFactory) -> None:
    """Path parameters, headers and literals fill the resource; the first match decides."""
    table = load_bundle(make_bundle({"routes.yaml": ROUTES})).routes
    assert table is not None
    headers = {"x-tenant": "acme/emea"}.get
    first = table.match("GET", "/orgs/acme/devices/dev-9?x=1", headers)
    second = table.match("patch", "/devices/dev-2", headers)
    assert first is not None
    assert second is not None
    assert (first.kind, first.action, first.id, first.tenant) == ("device", "read", "dev-9", "acme")
    assert (second.action, second.id, second.tenant) == ("configure", "dev-2", "acme/emea")


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/devices/dev-2"), ("GET", "/orgs/acme/devices"), ("GET", "/orgs//devices/x")],
)
def test_requests_no_route_matches_are_none(
    make_bundle: BundleFactory, method: str, path: str
) -> None:
    """Wrong method, wrong length, empty parameter: no match (the door denies)."""
    table = load_bundle(make_bundle({"routes.yaml": ROUTES})).routes
    assert table is not None
    assert table.match(method, path, NO_HEADERS.get) is None


def test_a_route_whose_header_is_absent_does_not_match(make_bundle: BundleFactory) -> None:
    """No tenant header: nothing to ask about."""
    table = load_bundle(make_bundle({"routes.yaml": ROUTES})).routes
    assert table is not None
    assert table.match("PUT", "/devices/dev-2", NO_HEADERS.get) is None


@pytest.mark.parametrize(
    ("route", "code"),
    [
        ("{method: GET, path: /x, action: read, kind: spaceship, tenant: acme}", "unknown_kind"),
        ("{method: GET, path: /x, action: launch, kind: device, tenant: acme}", "unknown_action"),
        ("{method: FETCH, path: /x, action: read, kind: device, tenant: acme}", "invalid_method"),
        ('{method: GET, path: "/x/{a", action: read, kind: device, tenant: acme}', "invalid_path"),
        (
            '{method: GET, path: /x, action: read, kind: device, tenant: "{org}"}',
            "unknown_parameter",
        ),
        ("{method: GET, path: /x, action: read, kind: device}", "missing_field"),
    ],
)
def test_a_bad_route_makes_the_bundle_invalid(
    make_bundle: BundleFactory, route: str, code: str
) -> None:
    """Each mistake is a located problem with its code; the bundle never serves."""
    with pytest.raises(BundleInvalidError) as caught:
        load_bundle(make_bundle({"routes.yaml": f"routes:\n  - {route}\n"}))
    assert [(p.code, p.file) for p in caught.value.problems] == [(code, "routes.yaml")]


CLAIMS = """\
claims:
  id: email
  tenant: [https://cnm.example/org, path]
  roles: [realm_access, roles]
  attributes:
    mfa: mfa
"""


def test_a_claims_mapping_reads_nested_claims(make_bundle: BundleFactory) -> None:
    """Names and paths into nested claims, as declared."""
    mapping = load_bundle(make_bundle({"principals.yaml": CLAIMS})).claims
    assert mapping is not None
    claims = {
        "email": "a@acme.example",
        "https://cnm.example/org": {"path": "acme/emea"},
        "realm_access": {"roles": ["customer-admin"]},
        "mfa": True,
    }
    assert mapping.apply(claims) == (
        "a@acme.example",
        "acme/emea",
        ("customer-admin",),
        {"mfa": True},
    )


def test_a_missing_claim_is_refused_not_guessed() -> None:
    """No tenant claim: ValueError naming it."""
    with pytest.raises(ValueError, match="tenant"):
        ClaimsMapping().apply({"sub": "u-1", "roles": []})


def test_space_separated_roles_are_split() -> None:
    """A scope-like string claim is a list of roles."""
    assert ClaimsMapping().apply({"sub": "u", "tenant": "acme", "roles": "a b"})[2] == ("a", "b")


def test_a_bad_mapping_makes_the_bundle_invalid(make_bundle: BundleFactory) -> None:
    """A claim named by a number is a located problem."""
    with pytest.raises(BundleInvalidError) as caught:
        load_bundle(make_bundle({"principals.yaml": "claims: {tenant: 3}\n"}))
    assert [(p.code, p.file) for p in caught.value.problems] == [
        ("invalid_claim", "principals.yaml")
    ]
