"""The native API in JSON: `POST /v1/check`, `POST /v1/check-batch`, `GET /v1/policy`.

Requests are the JSON form `cnm-policy check` reads (`review.requests`, the one parser), with
attributes as plain JSON objects; responses are the gRPC messages in protobuf's JSON mapping
(field names as in the `.proto`, as `cnm-policy check` prints them).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from cnm_policy.errors import LimitExceededError
from cnm_policy.review.requests import json_batch_from_object, json_request_from_object
from cnm_policy.server.http.decide import HttpCall, HttpDecider
from cnm_policy.server.wire import convert
from cnm_policy.server.wire.info import policy_info_to_proto

__all__ = ["check", "check_batch", "message_json", "policy"]


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
        parsed.principal, parsed.items, parsed.context, call, explain=parsed.explain
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
