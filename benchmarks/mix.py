"""The request mix against a generated policy, and a stream of requests never seen before.

The mix (own-tenant reads, cross-tenant attempts, guardrail denies, staff access) is what the
hit rows cycle through. `DistinctStream` draws from the same mix but gives every request a
resource id of its own, as a portal browsing many devices does, so no cache or memo can have
seen it: the miss rows' traffic.
"""

from __future__ import annotations

import random
from typing import Any

from benchmarks.generate import GeneratedPolicy, Tenant
from cnm_policy import Principal, Resource

__all__ = ["MIX", "DistinctStream", "Request", "replace_kind", "request_mix"]

Request = tuple[Principal, str, Resource, dict[str, Any]]


# The request mix: (share, kind of request). Shares add up to 1.
MIX = (
    (0.40, "own-tenant read"),
    (0.20, "cross-tenant attempt"),
    (0.20, "guardrail deny"),
    (0.20, "staff access"),
)


def request_mix(policy: GeneratedPolicy, count: int, *, seed: int = 11) -> list[Request]:
    """`count` requests in the :data:`MIX` proportions, spread over the policy's tenants."""
    rng = random.Random(seed)
    return [_draw(policy, rng) for _ in range(count)]


def _draw(policy: GeneratedPolicy, rng: random.Random) -> Request:
    return rng.choices(_BUILDERS, _WEIGHTS)[0](policy, rng)


def _site(tenant: Tenant, rng: random.Random) -> str:
    return rng.choice(tenant.sites) if tenant.sites else tenant.root


def _device(tenant: Tenant, rng: random.Random, **attributes: Any) -> Resource:
    return Resource(
        "device",
        f"dev-{rng.randrange(10_000)}",
        _site(tenant, rng),
        {
            "site_class": rng.choice(("edge", "edge", "core")),
            "vendor": "acme-networks",
            **attributes,
        },
    )


def _customer(tenant: Tenant, rng: random.Random, role: str, mfa: bool = True) -> Principal:
    return Principal(
        f"user-{rng.randrange(100_000)}", tenant.root, (role,), {"mfa": mfa, "locale": "en"}
    )


_CONTEXT = {"channel": "portal"}


def _own_read(policy: GeneratedPolicy, rng: random.Random) -> Request:
    """A customer reads something in its own organisation tree: allowed."""
    tenant = rng.choice(policy.tenants)
    role = rng.choice(("customer-viewer", "customer-admin", tenant.custom_role or "customer-admin"))
    kind = rng.choice(("device", "interface", "circuit", "service", "metrics", "ticket"))
    resource = replace_kind(_device(tenant, rng), kind)
    return (_customer(tenant, rng, role), "read", resource, _CONTEXT)


def _cross_tenant(policy: GeneratedPolicy, rng: random.Random) -> Request:
    """A customer reaches into another customer's tree: denied."""
    own, other = rng.sample(policy.tenants, 2) if len(policy.tenants) > 1 else policy.tenants * 2
    action = rng.choice(("read", "configure"))
    return (_customer(own, rng, "customer-admin"), action, _device(other, rng), _CONTEXT)


def _guardrail(policy: GeneratedPolicy, rng: random.Random) -> Request:
    """A customer admin trips a guardrail in its own tree (no MFA, freeze, shared kit)."""
    tenant = rng.choice(policy.tenants)
    case = rng.randrange(3)
    if case == 0:
        return (
            _customer(tenant, rng, "customer-admin", mfa=False),
            "configure",
            _device(tenant, rng),
            _CONTEXT,
        )
    if case == 1:
        return (
            _customer(tenant, rng, "customer-admin"),
            "configure",
            _device(tenant, rng, change_freeze=True),
            _CONTEXT,
        )
    return (
        _customer(tenant, rng, "customer-viewer"),
        "read",
        _device(tenant, rng, shared=True),
        _CONTEXT,
    )


def _staff(policy: GeneratedPolicy, rng: random.Random) -> Request:
    """Provider staff: NOC reads anywhere, support on assigned customers, billing clerks."""
    tenant = rng.choice(policy.tenants)
    case = rng.randrange(3)
    if case == 0:
        noc = Principal(
            f"noc-{rng.randrange(50)}", "provider/noc", ("noc-engineer",), {"mfa": True}
        )
        return (noc, "read", _device(tenant, rng), _CONTEXT)
    if case == 1:
        assigned = [t.root for t in rng.sample(policy.tenants, min(3, len(policy.tenants)))]
        agent = Principal(
            f"agent-{rng.randrange(200)}",
            "provider/support",
            ("support-agent",),
            {"assigned_tenants": [tenant.root, *assigned], "tier": rng.choice((1, 2))},
        )
        return (
            agent,
            rng.choice(("read", "update")),
            Resource("order", f"ord-{rng.randrange(10_000)}", _site(tenant, rng)),
            _CONTEXT,
        )
    clerk = Principal(
        f"clerk-{rng.randrange(20)}", "provider/billing", ("billing-clerk",), {"mfa": True}
    )
    return (
        clerk,
        "read",
        Resource("invoice", f"inv-{rng.randrange(10_000)}", tenant.root),
        _CONTEXT,
    )


def replace_kind(resource: Resource, kind: str) -> Resource:
    """`resource` as another kind (same id, tenant and attributes)."""
    return Resource(kind, resource.id, resource.tenant, resource.attributes)


_BUILDERS = (_own_read, _cross_tenant, _guardrail, _staff)
_WEIGHTS = [share for share, _ in MIX]


class DistinctStream:
    """Requests from the mix, each with a resource id no earlier request of the stream had.

    `take` continues where the last call stopped, so successive batches never repeat a request
    (one stream per consumer; generate before timing).
    """

    def __init__(self, policy: GeneratedPolicy, *, seed: int = 29) -> None:
        self._policy = policy
        self._rng = random.Random(seed)
        self._taken = 0

    def take(self, count: int) -> list[Request]:
        """The next `count` requests of the stream."""
        requests = []
        for _ in range(count):
            principal, action, resource, context = _draw(self._policy, self._rng)
            unique = Resource(
                resource.kind, f"{resource.id}-{self._taken}", resource.tenant, resource.attributes
            )
            requests.append((principal, action, unique, context))
            self._taken += 1
        return requests
