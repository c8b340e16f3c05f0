"""The native API in JSON: checks, batches, plans, delegation questions and the policy info.

Checks are the JSON form `cnm-policy check` reads (`review.requests`, the one parser), with
attributes as plain JSON objects; plans and delegation questions are their messages in
protobuf's JSON mapping; responses are the gRPC messages in that mapping (`.proto` names).
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from cnm_policy.errors import InvalidRequestError, LimitExceededError
from cnm_policy.review.requests import json_batch_from_object, json_request_from_object
from cnm_policy.server.http.decide import HttpCall, HttpDecider
from cnm_policy.server.queries import grant_to_proto
from cnm_policy.server.wire import convert
from cnm_policy.server.wire.info import policy_info_to_proto
from cnm_policy.server.wire.plans import plan_to_proto
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["can_grant", "check", "check_batch", "message_json", "plan", "policy"]


def message_json(message: Message) -> dict[str, Any]:
    """A message in protobuf's JSON mapping, with the `.proto` field names."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def check(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`POST /v1/check`: one `CheckRequest` in JSON, one `CheckResponse` out."""
    parsed = json_request_from_object(body, partial_principal=decider.completes_principals)
    decision, decision_id = decider.check(parsed.request, call, explain=parsed.explain)
    return message_json(convert.decision_to_proto(decision, decision_id=decision_id))


def check_batch(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`POST /v1/check-batch`: a `CheckBatchRequest` in JSON, its `CheckBatchResponse` out."""
    parsed = json_batch_from_object(body, partial_principal=decider.completes_principals)
    if len(parsed.items) > decider.limits.max_batch_items:  # before building the message
        raise LimitExceededError(
            "items",
            f"{len(parsed.items)} items exceed the limit of {decider.limits.max_batch_items}",
        )
    decisions, ids = decider.check_batch(
        parsed.principal,
        parsed.items,
        parsed.context,
        call,
        explain=parsed.explain,
        actor=parsed.actor,
    )
    return message_json(convert.batch_to_proto(decisions, ids))


def policy(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`GET /v1/policy`: the serving bundle, reload history, cache counters and limits."""
    reload, stats = decider.reload_status, decider.cache_stats
    return message_json(
        policy_info_to_proto(
            decider.engine.snapshot,
            reload=reload() if reload is not None else None,
            cache=stats() if stats is not None else None,
            limits=decider.limits,
        )
    )


def plan(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`POST /v1/plan`: a `PlanResourcesRequest` in JSON, its `PlanResourcesResponse` out."""
    built, decision_id = decider.plan(_message(body, pb.PlanResourcesRequest()), call)
    return message_json(plan_to_proto(built, decision_id=decision_id))


def can_grant(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`POST /v1/can-grant`: a `CanGrantRequest` in JSON, its `CanGrantResponse` out."""
    answer, decision_id = decider.can_grant(_message(body, pb.CanGrantRequest()), call)
    return message_json(grant_to_proto(answer, decision_id))


_M = TypeVar("_M", bound=Message)


def _message(body: Any, message: _M) -> _M:
    """`body` in the proto's JSON mapping as `message`; errors are the caller's, located."""
    if not isinstance(body, dict):
        raise InvalidRequestError("request", "must be a JSON object")
    try:
        return json_format.ParseDict(body, message)
    except json_format.ParseError as exc:
        raise InvalidRequestError("request", str(exc)[:200]) from None
