"""Pre-serialized ``Check`` and ``CheckBatch`` requests: the hit streams and the miss pools.

Built with the generated stubs only (``cnm_policy.v1``) and serialized before any timing, so
the client costs the same for both servers. A miss pool holds more distinct requests (or batch
items) than any cache or memo of the sidecar's, so going round it in order never repeats a
request the sidecar still remembers.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.struct_pb2 import Struct

from benchmarks.generate import GeneratedPolicy
from benchmarks.mix import DistinctStream, Request
from cnm_policy import Principal, Resource
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["batch_payload", "check_payload", "miss_batches", "miss_checks", "pool_size"]


def _struct(values: dict[str, Any]) -> Struct:
    message = Struct()
    message.update(values)
    return message


def _principal(principal: Principal) -> pb.Principal:
    return pb.Principal(
        id=principal.id,
        tenant=principal.tenant,
        roles=list(principal.roles),
        attributes=_struct(dict(principal.attributes)),
    )


def _resource(resource: Resource, resource_id: str | None = None) -> pb.Resource:
    return pb.Resource(
        kind=resource.kind,
        id=resource.id if resource_id is None else resource_id,
        tenant=resource.tenant,
        attributes=_struct(dict(resource.attributes)),
    )


def check_payload(request: Request) -> bytes:
    """A serialized CheckRequest."""
    principal, action, resource, context = request
    return pb.CheckRequest(
        principal=_principal(principal),
        action=action,
        resource=_resource(resource),
        context=_struct(context),
    ).SerializeToString()


def batch_payload(request: Request, count: int, salt: str = "") -> bytes:
    """A serialized CheckBatchRequest: a page of `count` devices of the principal's tenant."""
    principal, action, resource, context = request
    items = [
        pb.CheckBatchItem(action=action, resource=_resource(resource, f"{resource.id}-{salt}{n}"))
        for n in range(count)
    ]
    return pb.CheckBatchRequest(
        principal=_principal(principal), items=items, context=_struct(context)
    ).SerializeToString()


def pool_size(cache_size: int, memo_bound: int) -> int:
    """Distinct requests a miss pool needs: a fifth more than the largest cache or memo."""
    return max(cache_size, memo_bound) * 6 // 5


def miss_checks(policy: GeneratedPolicy, count: int) -> tuple[bytes, ...]:
    """`count` CheckRequests, each for a resource no other request names."""
    return tuple(check_payload(r) for r in DistinctStream(policy, seed=31).take(count))


def miss_batches(policy: GeneratedPolicy, items: int, per_batch: int) -> tuple[bytes, ...]:
    """At least `items` batch items in batches of `per_batch`, no two items alike."""
    batches = -(-items // per_batch)
    requests = DistinctStream(policy, seed=37).take(batches)
    return tuple(batch_payload(r, per_batch, salt=f"m{n}-") for n, r in enumerate(requests))
