"""Query plans on the wire: a `Plan` and its filter nodes <-> `PlanResourcesResponse`.

The filter's JSON node set (docs/design/plans.md) maps one to one onto `PlanNode`'s oneof, so
a client can walk it like the JSON form; round-trip tested without a server.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from cnm_policy.engine.plan import Plan
from cnm_policy.server.wire.responses import timestamp_from_epoch
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["node_from_proto", "node_to_proto", "plan_to_proto"]

_KINDS = {
    "always_allowed": pb.PlanResourcesResponse.ALWAYS_ALLOWED,
    "always_denied": pb.PlanResourcesResponse.ALWAYS_DENIED,
    "conditional": pb.PlanResourcesResponse.CONDITIONAL,
}
_SETS = {"and": "all_of", "or": "any_of"}


def plan_to_proto(plan: Plan, *, decision_id: str = "") -> pb.PlanResourcesResponse:
    """The response carrying `plan`."""
    response = pb.PlanResourcesResponse(
        kind=_KINDS[plan.kind],
        rule_ids=list(plan.rule_ids),
        reason=plan.reason,
        policy=pb.PolicyRef(
            name=plan.policy_name, version=plan.policy_version, digest=plan.policy_digest
        ),
        cached=plan.cached,
        decision_id=decision_id,
    )
    if plan.kind == "conditional":
        response.filter.CopyFrom(node_to_proto(plan.filter))
    if plan.valid_until is not None:
        response.valid_until.CopyFrom(timestamp_from_epoch(plan.valid_until))
    return response


def node_to_proto(node: Any) -> pb.PlanNode:
    """One filter node (``True``, ``False`` or an ``{"op": ...}`` dict) as a `PlanNode`."""
    if node is True or node is False:
        return pb.PlanNode(constant=node)
    op = node["op"]
    if op in _SETS:
        message = pb.PlanNode()
        getattr(message, _SETS[op]).nodes.extend(node_to_proto(arg) for arg in node["args"])
        return message
    if op == "not":
        return pb.PlanNode(negated=node_to_proto(node["arg"]))
    if op == "in":
        values = [_value(v) for v in node["values"]]
        return pb.PlanNode(one_of=pb.PlanMembership(field=node["field"], values=values))
    if op == "is_null":
        return pb.PlanNode(is_null=node["field"])
    if op == "present":
        return pb.PlanNode(present=node["field"])
    if op == "is_type":
        return pb.PlanNode(is_type=pb.PlanTypeTest(field=node["field"], type=node["type"]))
    if op == "within":
        return pb.PlanNode(within=node["root"])
    comparison = pb.PlanComparison(op=op, field=node["field"], value=_value(node["value"]))
    return pb.PlanNode(compare=comparison)


def node_from_proto(message: pb.PlanNode) -> Any:
    """The JSON node a `PlanNode` carries (the inverse of `node_to_proto`)."""
    which = message.WhichOneof("node")
    if which == "constant":
        return message.constant
    if which in ("all_of", "any_of"):
        op = "and" if which == "all_of" else "or"
        return {"op": op, "args": [node_from_proto(n) for n in getattr(message, which).nodes]}
    if which == "negated":
        return {"op": "not", "arg": node_from_proto(message.negated)}
    if which == "one_of":
        values = [_python(v) for v in message.one_of.values]
        return {"op": "in", "field": message.one_of.field, "values": values}
    if which == "is_null":
        return {"op": "is_null", "field": message.is_null}
    if which == "present":
        return {"op": "present", "field": message.present}
    if which == "is_type":
        return {"op": "is_type", "field": message.is_type.field, "type": message.is_type.type}
    if which == "within":
        return {"op": "within", "field": "tenant", "root": message.within}
    compare = message.compare
    return {"op": compare.op, "field": compare.field, "value": _python(compare.value)}


def _value(value: Any) -> struct_pb2.Value:
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, int | float):
        return struct_pb2.Value(number_value=float(value))
    return struct_pb2.Value(string_value=str(value))


def _python(value: struct_pb2.Value) -> Any:
    which = value.WhichOneof("kind")
    if which == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if which == "bool_value":
        return value.bool_value
    return value.string_value if which == "string_value" else None
