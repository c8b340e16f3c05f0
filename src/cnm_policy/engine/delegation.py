"""Delegated administration with a ceiling: may this granter give that role to that tenant?

Customer admins give their own users roles; the portal asks first. The rules (docs/design/
governance.md): a delegable role, held by the granter, on its own side, for a tenant in the
granter's own subtree, for no longer than the role allows.
"""

from __future__ import annotations

import math

from cnm_policy.engine._governance import barrier_between, side_refusal
from cnm_policy.engine.requests import prepare_principal
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import GrantDecision, Principal
from cnm_policy.policy import is_within, tenant_problem

__all__ = ["can_grant"]


def can_grant(
    snapshot: PolicySnapshot,
    granter: Principal,
    role: str,
    grantee_tenant: str,
    valid_until: float | None,
    now: float,
) -> GrantDecision:
    """Whether `granter` may give `role` to a user of `grantee_tenant` until `valid_until`."""
    prepared = prepare_principal(snapshot, granter)
    if not isinstance(role, str) or not role:
        raise InvalidRequestError("role", "must be a role id")
    problem = tenant_problem(grantee_tenant)
    if problem is not None:
        raise InvalidRequestError("grantee_tenant", problem)
    if valid_until is not None and (
        isinstance(valid_until, bool)
        or not isinstance(valid_until, int | float)
        or not math.isfinite(valid_until)
    ):
        raise InvalidRequestError("valid_until", "must be a time (epoch seconds)")
    bundle = snapshot.bundle

    def answer(allowed: bool, reason: str) -> GrantDecision:
        return GrantDecision(allowed, reason, snapshot.name, snapshot.version, snapshot.digest)

    definition = bundle.roles.get(role)
    if definition is None:
        return answer(False, f"unknown role `{role}`")
    if not definition.delegable:
        return answer(False, f"role `{role}` is not delegable")
    refusal = side_refusal("granter", prepared, bundle.internal_tenants)
    if refusal is not None:
        return answer(False, refusal)
    if role not in prepared.roles:
        return answer(False, f"the granter does not hold `{role}`")
    if prepared.side is not definition.side:
        return answer(False, f"`{role}` is a {definition.side}-side role: never across sides")
    home = granter.tenant
    if not is_within(grantee_tenant, home) or barrier_between(
        grantee_tenant, home, bundle.self_managed
    ):
        return answer(False, f"`{grantee_tenant}` is outside the granter's own organisation")
    if valid_until is not None and valid_until <= now:
        return answer(False, "`valid_until` has passed")
    ceiling = definition.max_validity
    if ceiling is not None and (valid_until is None or valid_until > now + ceiling):
        return answer(False, f"`{role}` may be granted for at most {ceiling / 86400:g} days")
    return answer(True, f"the granter holds `{role}` over `{grantee_tenant}`")
