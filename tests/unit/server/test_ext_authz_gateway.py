"""Trusted-gateway headers: read only as configured, bounded."""

from __future__ import annotations

from cnm_policy.model import Principal
from cnm_policy.server.ext_authz import TrustedGateway


def test_the_configured_headers_name_the_principal() -> None:
    """Principal id, tenant and comma-separated roles."""
    gateway = TrustedGateway("x-user", "x-tenant", "x-roles")
    headers = {"x-user": "u-1", "x-tenant": "acme", "x-roles": "customer-viewer, customer-admin"}
    assert gateway.principal(headers) == Principal(
        "u-1", "acme", ("customer-viewer", "customer-admin")
    )


def test_without_the_principal_header_nobody_is_named() -> None:
    """Tenant and roles alone name no one."""
    gateway = TrustedGateway("x-user", "x-tenant", "x-roles")
    assert gateway.principal({"x-tenant": "acme", "x-roles": "customer-admin"}) is None


def test_roles_are_bounded() -> None:
    """A header listing thousands of roles is cut to 64."""
    gateway = TrustedGateway("x-user", roles_header="x-roles")
    principal = gateway.principal(
        {"x-user": "u", "x-roles": ",".join(f"r{i}" for i in range(5000))}
    )
    assert principal is not None
    assert len(principal.roles) == 64
