"""The request-time side of governance: actors, self-managed barriers, break-glass justifications.

What the bundle declares in `policy/_governance.py` is applied here, beside the hot path, so
checks that use none of it pay one attribute test each. Semantics: docs/design/governance.md.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from typing import Any, Final

from cnm_policy.engine.requests import PreparedPrincipal
from cnm_policy.errors import ConditionError
from cnm_policy.model import Obligation
from cnm_policy.policy import Side, is_within

__all__ = [
    "BREAK_GLASS_CONTEXT",
    "actor_refusal",
    "barrier_between",
    "break_glass_justified",
    "expiry_obligation",
    "side_refusal",
]

BREAK_GLASS_CONTEXT: Final = "break_glass"  # context.break_glass = {incident, reason}
MAX_REASON: Final = 2048
_INCIDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")


def barrier_between(tenant: str, root: str, barriers: frozenset[str]) -> bool:
    """Whether a self-managed tenant lies below `root` on the way down to `tenant` (itself
    included): subtree reach from `root` stops there."""
    while tenant != root and len(tenant) > len(root):
        if tenant in barriers:
            return True
        tenant = tenant[: tenant.rfind("/")]
    return False


def side_refusal(
    who: str, prepared: PreparedPrincipal, internal_tenants: frozenset[str]
) -> str | None:
    """Why `prepared` may not act at all, or ``None``: both sides' roles, or internal-side roles
    held outside the provider's own tenants (when the bundle declares them)."""
    if prepared.mixed_sides:
        return f"{who} holds both customer-side and internal-side roles"
    if prepared.side is not Side.INTERNAL or not internal_tenants:
        return None
    tenant = prepared.principal.tenant
    for root in internal_tenants:  # a loop: cheaper than any() over a generator
        if tenant == root or tenant.startswith(root + "/"):
            return None
    return f"{who} holds internal-side roles outside the provider's tenants"


def actor_refusal(
    actor: PreparedPrincipal,
    resource_tenant: str,
    internal_tenants: frozenset[str],
    barriers: frozenset[str],
) -> str | None:
    """Why `actor` may not act on a resource in `resource_tenant`, or ``None``.

    Only an internal-side actor acts across organisations; any other actor (customer side,
    or no known role) is confined to its own subtree, self-managed barriers included.
    """
    refusal = side_refusal("actor", actor, internal_tenants)
    if refusal is not None or actor.side is Side.INTERNAL:
        return refusal
    home = actor.principal.tenant
    if not is_within(resource_tenant, home) or barrier_between(resource_tenant, home, barriers):
        return f"actor `{actor.principal.id}` cannot act outside its own organisation"
    return None


def break_glass_justified(context: Mapping[str, Any]) -> bool:
    """Whether the request justifies break-glass (`context.break_glass` with an incident id
    and a reason); False when it does not try; ConditionError when it tries badly."""
    given = context.get(BREAK_GLASS_CONTEXT)
    if given is None:
        return False
    if type(given) is not dict and not isinstance(given, Mapping):
        raise ConditionError("`context.break_glass` must be an object with incident and reason")
    incident, reason = given.get("incident"), given.get("reason")
    if not isinstance(incident, str) or not _INCIDENT.fullmatch(incident):
        raise ConditionError("break-glass needs `incident`: an incident id of 1-128 characters")
    if not isinstance(reason, str) or len(reason) > MAX_REASON or not reason or reason.isspace():
        raise ConditionError(f"break-glass needs a `reason` of 1-{MAX_REASON} characters")
    return True


@functools.lru_cache(maxsize=256)
def expiry_obligation(rule_id: str, until: float) -> Obligation:
    """The `expire` obligation of a break-glass allow: the access ends at `until` (memoised:
    an incident's requests share the instant within a clock tick)."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
    return Obligation("expire", rule_id, (("at", at),))
