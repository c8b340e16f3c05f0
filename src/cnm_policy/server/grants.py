"""The `CanGrant` RPC: a portal asks before a customer admin delegates a role.

A thin adapter: bytes -> `CanGrantRequest` -> `engine.can_grant` -> `CanGrantResponse`, one
decision-log event per call; a refusal is an answer, malformed input INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import grpc

from cnm_policy.audit import DecisionLog
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import GrantDecision, Principal
from cnm_policy.ops.health import Freshness
from cnm_policy.server.calls import call_metadata
from cnm_policy.server.errors import abort_with
from cnm_policy.server.limits import Limits, check_struct
from cnm_policy.server.wire.convert import principal_from_proto, timestamp_to_epoch
from cnm_policy.server.wire.decode import parse_request
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["GrantingEngine", "can_grant_bytes"]


@runtime_checkable
class GrantingEngine(Protocol):
    """An engine that answers delegation questions (`Engine`, `CachedEngine`)."""

    def can_grant(
        self,
        granter: Principal,
        role: str,
        grantee_tenant: str,
        valid_until: float | None = None,
    ) -> GrantDecision: ...


def can_grant_bytes(
    engine: object,
    log: DecisionLog,
    limits: Limits,
    timer: Callable[[], float],
    freshness: Freshness | None,
    request: bytes,
    context: grpc.ServicerContext,
) -> bytes:
    """One delegation question: a serialized `CanGrantRequest` in, a `CanGrantResponse` out
    (UNAVAILABLE while the policy is stale, UNIMPLEMENTED for an engine without delegation)."""
    started = timer()
    request_id, _ = call_metadata(context)
    if not isinstance(engine, GrantingEngine):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "this engine answers no delegation")
    try:
        if freshness is not None and freshness.stale:
            raise freshness.error()
        message = parse_request(pb.CanGrantRequest, request)
        if not message.HasField("granter"):
            raise InvalidRequestError("granter", "is required")
        check_struct(message.granter.attributes, "granter.attributes", limits)
        granter = principal_from_proto(
            message.granter, "granter", max_depth=limits.max_attribute_depth
        )
        until = timestamp_to_epoch(message.valid_until) if message.HasField("valid_until") else None
        answer = engine.can_grant(granter, message.role, message.grantee_tenant, until)
    except Exception as exc:
        abort_with(context, exc)
    decision_id = log.new_decision_id()
    log.record_grant(
        granter=granter,
        role=message.role,
        grantee_tenant=message.grantee_tenant,
        answer=answer,
        decision_id=decision_id,
        request_id=request_id,
        latency_seconds=timer() - started,
    )
    return pb.CanGrantResponse(
        allowed=answer.allowed,
        reason=answer.reason,
        policy=pb.PolicyRef(
            name=answer.policy_name, version=answer.policy_version, digest=answer.policy_digest
        ),
        decision_id=decision_id,
    ).SerializeToString()
