"""The PolicyService's question RPCs beside Check: `CanGrant` and `PlanResources`.

Thin adapters on raw bytes, as Check is: parse -> limits -> engine -> one decision-log event ->
response. A refusal or a plan is an answer; malformed input is INVALID_ARGUMENT, a stale policy
UNAVAILABLE, a condition no plan can express FAILED_PRECONDITION (`server/errors.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import grpc

from cnm_policy.audit import DecisionLog
from cnm_policy.engine.plan import Plan
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import GrantDecision, Principal
from cnm_policy.ops.health import Freshness
from cnm_policy.server.calls import call_metadata
from cnm_policy.server.errors import abort_with
from cnm_policy.server.limits import Limits, check_struct
from cnm_policy.server.ports import DecisionEngine
from cnm_policy.server.wire.convert import principal_from_proto, struct_to_dict
from cnm_policy.server.wire.decode import parse_request
from cnm_policy.server.wire.plans import plan_to_proto
from cnm_policy.server.wire.responses import timestamp_to_epoch
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "Asked",
    "GrantingEngine",
    "PlanningEngine",
    "QueryCalls",
    "answer_grant",
    "answer_plan",
    "grant_to_proto",
    "wire_principal",
]


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


@runtime_checkable
class PlanningEngine(Protocol):
    """An engine that builds query plans (`Engine`, `CachedEngine`)."""

    def plan(
        self,
        principal: Principal,
        action: str,
        kind: str,
        context: Mapping[str, Any] | None = None,
    ) -> Plan: ...


class QueryCalls:
    """`CanGrant` and `PlanResources` for `PolicyServicer` (a mixin over its parts)."""

    __slots__ = ()
    _engine: DecisionEngine
    _log: DecisionLog
    _limits: Limits
    _timer: Callable[[], float]
    _freshness: Freshness | None

    def can_grant_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """A serialized `CanGrantRequest` in, a `CanGrantResponse` out."""
        started = self._timer()
        engine = self._engine
        if not isinstance(engine, GrantingEngine):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this engine answers no delegation")
        try:
            self._fresh()
            message = parse_request(pb.CanGrantRequest, request)
            asked = self._asked(context, started)
            answer, decision_id = answer_grant(engine, message, self._limits, asked)
        except Exception as exc:
            abort_with(context, exc)
        return grant_to_proto(answer, decision_id).SerializeToString()

    def plan_resources_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """A serialized `PlanResourcesRequest` in, a `PlanResourcesResponse` out."""
        started = self._timer()
        engine = self._engine
        if not isinstance(engine, PlanningEngine):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this engine builds no plans")
        try:
            self._fresh()
            message = parse_request(pb.PlanResourcesRequest, request)
            asked = self._asked(context, started)
            plan, decision_id = answer_plan(engine, message, self._limits, asked)
        except Exception as exc:
            abort_with(context, exc)
        return plan_to_proto(plan, decision_id=decision_id).SerializeToString()

    def _asked(self, context: grpc.ServicerContext, started: float) -> Asked:
        timer = self._timer
        return Asked(self._log, call_metadata(context)[0], lambda: timer() - started)

    def _fresh(self) -> None:
        if self._freshness is not None and self._freshness.stale:
            raise self._freshness.error()


Resolve = Callable[[Principal], Principal]


@dataclass(frozen=True, slots=True)
class Asked:
    """Where an answer is logged, and the call it belongs to (on any door)."""

    log: DecisionLog
    request_id: str | None
    elapsed: Callable[[], float]  # seconds since the call began
    resolve: Resolve | None = None  # vouches for the principal (tokens, directory)


def answer_grant(
    engine: GrantingEngine, message: pb.CanGrantRequest, limits: Limits, asked: Asked
) -> tuple[GrantDecision, str]:
    """The answer to a `CanGrantRequest` and its decision id, logged as `kind: grant`."""
    granter = wire_principal(message, "granter", limits)
    granter = granter if asked.resolve is None else asked.resolve(granter)
    stamp = message.valid_until
    until = timestamp_to_epoch(stamp) if message.HasField("valid_until") else None
    answer = engine.can_grant(granter, message.role, message.grantee_tenant, until)
    decision_id = asked.log.new_decision_id()
    asked.log.record_grant(
        granter=granter,
        role=message.role,
        grantee_tenant=message.grantee_tenant,
        answer=answer,
        decision_id=decision_id,
        request_id=asked.request_id,
        latency_seconds=asked.elapsed(),
    )
    return answer, decision_id


def answer_plan(
    engine: PlanningEngine, message: pb.PlanResourcesRequest, limits: Limits, asked: Asked
) -> tuple[Plan, str]:
    """The plan a `PlanResourcesRequest` asks and its decision id, logged as `kind: plan`."""
    principal = wire_principal(message, "principal", limits)
    principal = principal if asked.resolve is None else asked.resolve(principal)
    check_struct(message.context, "context", limits)
    query = struct_to_dict(message.context, "context", max_depth=limits.max_attribute_depth)
    plan = engine.plan(principal, message.action, message.kind, query)
    decision_id = asked.log.new_decision_id()
    asked.log.record_plan(
        principal=principal,
        plan=plan,
        decision_id=decision_id,
        request_id=asked.request_id,
        latency_seconds=asked.elapsed(),
    )
    return plan, decision_id


def grant_to_proto(answer: GrantDecision, decision_id: str) -> pb.CanGrantResponse:
    """The response carrying a delegation answer."""
    policy = pb.PolicyRef(
        name=answer.policy_name, version=answer.policy_version, digest=answer.policy_digest
    )
    return pb.CanGrantResponse(
        allowed=answer.allowed, reason=answer.reason, policy=policy, decision_id=decision_id
    )


def wire_principal(message: Any, field: str, limits: Limits) -> Principal:
    """The request's principal (or granter), required and within the limits."""
    if not message.HasField(field):
        raise InvalidRequestError(field, "is required")
    wire = getattr(message, field)
    check_struct(wire.attributes, f"{field}.attributes", limits)
    return principal_from_proto(wire, field, max_depth=limits.max_attribute_depth)
