"""Pure conversions between the `cnm_policy.v1` wire messages and the model's frozen values.

Kept apart from the servicer so every mapping can be round-trip tested without a server, and so
the engine never sees a protobuf object. Struct attributes go through `structs` (numbers,
depth limit). Absent sub-messages are errors, not empty defaults: a check without a
``resource`` is a bug in the caller, and must not be evaluated as "a resource with no tenant".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import AccessRequest, Principal, Resource
from cnm_policy.server.limits import Limits
from cnm_policy.server.wire.responses import (
    batch_to_proto,
    decision_from_proto,
    decision_to_proto,
    timestamp_from_epoch,
    timestamp_to_epoch,
)
from cnm_policy.server.wire.structs import NO_DEPTH_LIMIT, dict_to_struct, struct_to_dict
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "BatchQuery",
    "access_request_from_proto",
    "access_request_to_proto",
    "batch_from_proto",
    "batch_item_from_proto",
    "batch_shared_from_proto",
    "batch_to_proto",
    "decision_from_proto",
    "decision_to_proto",
    "dict_to_struct",
    "principal_from_proto",
    "principal_to_proto",
    "resource_from_proto",
    "resource_to_proto",
    "struct_to_dict",
    "timestamp_from_epoch",
    "timestamp_to_epoch",
]

# --- requests ---------------------------------------------------------------------------------

_REQUIRED = "is required"  # the error for an absent sub-message


def principal_from_proto(
    message: pb.Principal, field: str = "principal", *, max_depth: int = NO_DEPTH_LIMIT
) -> Principal:
    """The model `Principal` for a wire principal."""
    return Principal(
        id=message.id,
        tenant=message.tenant,
        roles=tuple(message.roles[:]),
        attributes=struct_to_dict(message.attributes, f"{field}.attributes", max_depth=max_depth),
    )


def principal_to_proto(principal: Principal) -> pb.Principal:
    """The wire form of a model `Principal`."""
    return pb.Principal(
        id=principal.id,
        tenant=principal.tenant,
        roles=list(principal.roles),
        attributes=dict_to_struct(principal.attributes, "principal.attributes"),
    )


def resource_from_proto(
    message: pb.Resource, field: str = "resource", *, max_depth: int = NO_DEPTH_LIMIT
) -> Resource:
    """The model `Resource` for a wire resource."""
    return Resource(
        kind=message.kind,
        id=message.id,
        tenant=message.tenant,
        attributes=struct_to_dict(message.attributes, f"{field}.attributes", max_depth=max_depth),
    )


def resource_to_proto(resource: Resource) -> pb.Resource:
    """The wire form of a model `Resource`."""
    return pb.Resource(
        kind=resource.kind,
        id=resource.id,
        tenant=resource.tenant,
        attributes=dict_to_struct(resource.attributes, "resource.attributes"),
    )


def access_request_from_proto(request: pb.CheckRequest, limits: Limits) -> AccessRequest:
    """The model request for a `CheckRequest` (``explain`` is read by the caller).

    Every `Check` the sidecar has not seen runs this, so its parts are built here rather than
    by their helpers (docs/design/sidecar-wire.md); checks and errors keep the helpers' order.
    """
    if not request.HasField("principal"):
        raise InvalidRequestError("principal", _REQUIRED)
    if not request.HasField("resource"):
        raise InvalidRequestError("resource", _REQUIRED)
    depth = limits.max_attribute_depth
    who = request.principal
    principal = Principal(
        who.id,
        who.tenant,
        tuple(who.roles[:]),  # a slice is a list, which `tuple` copies faster than the container
        struct_to_dict(who.attributes, "principal.attributes", max_depth=depth),
    )
    action = request.action
    what = request.resource
    resource = Resource(
        what.kind,
        what.id,
        what.tenant,
        struct_to_dict(what.attributes, "resource.attributes", max_depth=depth),
    )
    context = struct_to_dict(request.context, "context", max_depth=depth)
    actor = None
    if request.HasField("actor"):  # rare, and a call to `_actor` costs more than this test
        actor = principal_from_proto(request.actor, "actor", max_depth=depth)
    return AccessRequest(principal, action, resource, context, actor)


def _actor(request: pb.CheckRequest | pb.CheckBatchRequest, depth: int) -> Principal | None:
    """The request's actor, if it names one."""
    if not request.HasField("actor"):
        return None
    return principal_from_proto(request.actor, "actor", max_depth=depth)


def access_request_to_proto(request: AccessRequest, *, explain: bool = False) -> pb.CheckRequest:
    """The `CheckRequest` a client sends for a model request."""
    return pb.CheckRequest(
        principal=principal_to_proto(request.principal),
        action=request.action,
        resource=resource_to_proto(request.resource),
        context=dict_to_struct(request.context, "context"),
        explain=explain,
        actor=None if request.actor is None else principal_to_proto(request.actor),
    )


@dataclass(frozen=True, slots=True)
class BatchQuery:
    """A decoded `CheckBatchRequest`: the principal and context converted once for all items.

    The fingerprints, when the decoder supplies them, encode the shared part and each item
    exactly (see `CachedEngine.check_batch_fingerprinted`); empty when unknown. They are how
    the query was written, not what it asks, so equality ignores them.
    """

    principal: Principal
    items: list[tuple[str, Resource]]
    context: dict[str, Any]
    explain: bool = False
    actor: Principal | None = None
    shared_fingerprint: bytes = field(default=b"", compare=False)
    item_fingerprints: list[bytes] = field(default_factory=list, compare=False)


def batch_from_proto(request: pb.CheckBatchRequest, limits: Limits) -> BatchQuery:
    """Decode a batch; item errors name the item, e.g. ``items[3].resource``."""
    principal, context, actor = batch_shared_from_proto(request, limits)
    items = [batch_item_from_proto(item, i, limits) for i, item in enumerate(request.items)]
    explain = request.explain
    return BatchQuery(principal, items, context, explain=explain, actor=actor)


def batch_shared_from_proto(
    request: pb.CheckBatchRequest, limits: Limits
) -> tuple[Principal, dict[str, Any], Principal | None]:
    """The principal, context and actor every item of a batch is checked with."""
    _require(request, "principal", "principal")
    depth = limits.max_attribute_depth
    return (
        principal_from_proto(request.principal, max_depth=depth),
        struct_to_dict(request.context, "context", max_depth=depth),
        _actor(request, depth),
    )


def batch_item_from_proto(
    item: pb.CheckBatchItem, index: int, limits: Limits
) -> tuple[str, Resource]:
    """Item `index` of a batch as (action, resource); errors name it (``items[3].resource``)."""
    field = f"items[{index}].resource"
    _require(item, "resource", field)
    resource = resource_from_proto(item.resource, field, max_depth=limits.max_attribute_depth)
    return (item.action, resource)


def _require(message: Any, name: str, field: str) -> None:
    if not message.HasField(name):
        raise InvalidRequestError(field, _REQUIRED)
