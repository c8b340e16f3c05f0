"""Pure conversions between decisions and the `cnm_policy.v1` response messages.

The answer half of the wire (requests are in `convert`, which re-exports these names): every
field of a `Decision` has its place in a `CheckResponse`, round-trip tested without a server.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from cnm_policy.model import Decision, LimitExceeded, Obligation, RuleTrace
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "batch_to_proto",
    "decision_from_proto",
    "decision_to_proto",
    "timestamp_from_epoch",
    "timestamp_to_epoch",
]


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
