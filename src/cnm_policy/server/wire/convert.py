"""Pure conversions between the `cnm_policy.v1` wire messages and the model's frozen values.

Kept apart from the servicer so every mapping can be round-trip tested without a server, and so
the engine never sees a protobuf object. Struct attributes go through `structs` (numbers,
depth limit). Absent sub-messages are errors, not empty defaults: a check without a
``resource`` is a bug in the caller, and must not be evaluated as "a resource with no tenant".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import (
    AccessRequest,
    Decision,
    LimitExceeded,
    Obligation,
    Principal,
    Resource,
    RuleTrace,
)
from cnm_policy.server.limits import Limits
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


def principal_from_proto(
    message: pb.Principal, field: str = "principal", *, max_depth: int = NO_DEPTH_LIMIT
) -> Principal:
    """The model `Principal` for a wire principal."""
    return Principal(
        id=message.id,
        tenant=message.tenant,
        roles=tuple(message.roles),
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
    """The model request for a `CheckRequest` (``explain`` is read by the caller)."""
    _require(request, "principal", "principal")
    _require(request, "resource", "resource")
    depth = limits.max_attribute_depth
    return AccessRequest(
        principal=principal_from_proto(request.principal, max_depth=depth),
        action=request.action,
        resource=resource_from_proto(request.resource, max_depth=depth),
        context=struct_to_dict(request.context, "context", max_depth=depth),
    )


def access_request_to_proto(request: AccessRequest, *, explain: bool = False) -> pb.CheckRequest:
    """The `CheckRequest` a client sends for a model request."""
    return pb.CheckRequest(
        principal=principal_to_proto(request.principal),
        action=request.action,
        resource=resource_to_proto(request.resource),
        context=dict_to_struct(request.context, "context"),
        explain=explain,
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
    shared_fingerprint: bytes = field(default=b"", compare=False)
    item_fingerprints: list[bytes] = field(default_factory=list, compare=False)


def batch_from_proto(request: pb.CheckBatchRequest, limits: Limits) -> BatchQuery:
    """Decode a batch; item errors name the item, e.g. ``items[3].resource``."""
    principal, context = batch_shared_from_proto(request, limits)
    items = [batch_item_from_proto(item, i, limits) for i, item in enumerate(request.items)]
    return BatchQuery(principal=principal, items=items, context=context, explain=request.explain)


def batch_shared_from_proto(
    request: pb.CheckBatchRequest, limits: Limits
) -> tuple[Principal, dict[str, Any]]:
    """The principal and context every item of a batch is checked with."""
    _require(request, "principal", "principal")
    depth = limits.max_attribute_depth
    return (
        principal_from_proto(request.principal, max_depth=depth),
        struct_to_dict(request.context, "context", max_depth=depth),
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
        raise InvalidRequestError(field, "is required")


# --- decisions --------------------------------------------------------------------------------


def timestamp_from_epoch(seconds: float) -> Timestamp:
    """A Timestamp for an epoch second (float), to the nearest nanosecond."""
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1_000_000_000))
    return stamp


def timestamp_to_epoch(stamp: Timestamp) -> float:
    """The epoch second (float) of a Timestamp."""
    return float(stamp.seconds) + stamp.nanos / 1_000_000_000


def decision_to_proto(decision: Decision, *, decision_id: str = "") -> pb.CheckResponse:
    """The `CheckResponse` for a model decision (the trace is empty unless one was asked for)."""
    response = pb.CheckResponse()
    _fill_response(response, decision, decision_id, _policy_ref(decision))
    return response


def batch_to_proto(
    decisions: Sequence[Decision], decision_ids: Sequence[str]
) -> pb.CheckBatchResponse:
    """The `CheckBatchResponse` for decisions in request order.

    Built in place (no per-item message copies), sharing one PolicyRef per policy version:
    the per-item cost of a batch is what makes it worth using.
    """
    response = pb.CheckBatchResponse()
    refs: dict[tuple[str, str, str], pb.PolicyRef] = {}
    for decision, decision_id in zip(decisions, decision_ids, strict=True):
        identity = (decision.policy_name, decision.policy_version, decision.policy_digest)
        ref = refs.get(identity)
        if ref is None:
            ref = refs[identity] = _policy_ref(decision)
        _fill_response(response.results.add(), decision, decision_id, ref)
    return response


def _policy_ref(decision: Decision) -> pb.PolicyRef:
    return pb.PolicyRef(
        name=decision.policy_name, version=decision.policy_version, digest=decision.policy_digest
    )


def _fill_response(
    response: pb.CheckResponse, decision: Decision, decision_id: str, policy: pb.PolicyRef
) -> None:
    response.allowed = decision.allowed
    response.rule_ids.extend(decision.rule_ids)
    response.reason = decision.reason
    response.policy.CopyFrom(policy)
    response.cached = decision.cached
    response.decision_id = decision_id
    if decision.errors:
        response.errors.extend(decision.errors)
    if decision.matched_denies:
        response.matched_denies.extend(decision.matched_denies)
    if decision.trace:
        response.trace.extend(_trace_to_proto(trace) for trace in decision.trace)
    for obligation in decision.obligations:
        response.obligations.add(
            type=obligation.type, rule_id=obligation.rule_id, params=dict(obligation.params)
        )
    for over in decision.limits_exceeded:
        response.limits_exceeded.add(
            rule_id=over.rule_id, name=over.name, limit=over.limit, asked=over.asked
        )
    if decision.valid_until is not None:
        response.valid_until.CopyFrom(timestamp_from_epoch(decision.valid_until))


def decision_from_proto(response: pb.CheckResponse) -> Decision:
    """The model decision a `CheckResponse` carries (for clients and tests)."""
    return Decision(
        allowed=response.allowed,
        rule_ids=tuple(response.rule_ids),
        reason=response.reason,
        policy_name=response.policy.name,
        policy_version=response.policy.version,
        policy_digest=response.policy.digest,
        errors=tuple(response.errors),
        valid_until=(
            timestamp_to_epoch(response.valid_until) if response.HasField("valid_until") else None
        ),
        cached=response.cached,
        trace=tuple(_trace_from_proto(trace) for trace in response.trace),
        matched_denies=tuple(response.matched_denies),
        obligations=tuple(
            Obligation(o.type, o.rule_id, tuple(sorted(o.params.items())))
            for o in response.obligations
        ),
        limits_exceeded=tuple(
            LimitExceeded(o.rule_id, o.name, o.limit, o.asked) for o in response.limits_exceeded
        ),
    )


def _trace_to_proto(trace: RuleTrace) -> pb.RuleTrace:
    message = pb.RuleTrace(
        rule_id=trace.rule_id,
        effect=trace.effect,
        role_matched=trace.role_matched,
        kind_matched=trace.kind_matched,
        action_matched=trace.action_matched,
        scope_matched=trace.scope_matched,
        error=trace.error or "",
        applied=trace.applied,
    )
    if trace.condition is not None:
        message.condition = trace.condition
    return message


def _trace_from_proto(message: pb.RuleTrace) -> RuleTrace:
    return RuleTrace(
        rule_id=message.rule_id,
        effect=message.effect,
        role_matched=message.role_matched,
        kind_matched=message.kind_matched,
        action_matched=message.action_matched,
        scope_matched=message.scope_matched,
        condition=message.condition if message.HasField("condition") else None,
        error=message.error or None,
    )
