"""Wire <-> model conversions: round trips, Struct number handling, field-naming errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.errors import InvalidRequestError, LimitExceededError
from cnm_policy.model import AccessRequest, Decision, Principal, Resource, RuleTrace
from cnm_policy.server.limits import Limits
from cnm_policy.server.wire import convert
from cnm_policy.v1 import policy_pb2 as pb
from tests.strategies import json_like

LIMITS = Limits()

json_scalars = (
    st.none()
    | st.booleans()
    | st.text(max_size=8)
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
)
json_values = json_like(json_scalars, max_leaves=12)
attribute_maps = st.dictionaries(st.text(max_size=6), json_values, max_size=4)


def _decision(**changes: Any) -> Decision:
    values: dict[str, Any] = {
        "allowed": True,
        "rule_ids": ("customer-read",),
        "reason": "allowed by rule `customer-read`",
        "policy_name": "cnm",
        "policy_version": "1.2.0",
        "policy_digest": "sha256:" + "ab" * 32,
    }
    values.update(changes)
    return Decision(**values)


@given(attribute_maps)
def test_struct_round_trip_preserves_json_values(data: dict[str, Any]) -> None:
    """Any JSON-like mapping survives dict -> Struct -> dict unchanged (integers stay ints)."""
    assert data == convert.struct_to_dict(convert.dict_to_struct(data), "attributes")


def test_integral_struct_numbers_become_ints() -> None:
    """Struct doubles with integral values reach policies as ints; others stay floats."""
    struct = convert.dict_to_struct({"level": 3, "ratio": 0.5, "huge": 2.0**60})
    result = convert.struct_to_dict(struct, "attributes")
    assert result == {"level": 3, "ratio": 0.5, "huge": 2.0**60}
    assert isinstance(result["level"], int)
    assert isinstance(result["huge"], float)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected_with_their_path(number: float) -> None:
    """NaN and infinities cannot be compared sanely, so they are invalid input."""
    struct = pb.Principal().attributes
    struct.fields["limits"].list_value.values.add().number_value = number
    with pytest.raises(InvalidRequestError) as raised:
        convert.struct_to_dict(struct, "principal.attributes")
    assert raised.value.field == "principal.attributes.limits[0]"
    assert raised.value.message == "must be a finite number"


def test_nesting_beyond_the_depth_limit_names_the_value() -> None:
    """A value nested deeper than max_depth fails with LimitExceededError at its path."""
    struct = convert.dict_to_struct({"a": {"b": {"c": [1]}}})
    assert convert.struct_to_dict(struct, "context", max_depth=4) == {"a": {"b": {"c": [1]}}}
    with pytest.raises(LimitExceededError) as raised:
        convert.struct_to_dict(struct, "context", max_depth=3)
    assert raised.value.field == "context.a.b.c"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"when": object()}, "context.when"),
        ({"raw": b"bytes"}, "context.raw"),
        ({"x": [1, {2: 3}]}, "context.x[1]"),
        ({"big": [10**400]}, "context.big[0]"),
    ],
)
def test_dict_to_struct_rejects_non_json_values(data: dict[str, Any], field: str) -> None:
    """Only JSON-like values can become a Struct; the error names the bad value."""
    with pytest.raises(InvalidRequestError) as raised:
        convert.dict_to_struct(data, "context")
    assert field == raised.value.field


def test_access_request_round_trip() -> None:
    """A model request survives model -> CheckRequest -> model."""
    request = AccessRequest(
        principal=Principal("u-1", "acme", ("customer-admin",), {"mfa": True, "level": 2}),
        action="reboot",
        resource=Resource("device", "dev-1", "acme/emea", {"site": "paris", "tags": ["core"]}),
        context={"channel": "portal", "window": {"start": "2026-01-01T00:00:00Z"}},
    )
    message = convert.access_request_to_proto(request, explain=True)
    assert message.explain
    assert request == convert.access_request_from_proto(message, LIMITS)


@pytest.mark.parametrize("missing", ["principal", "resource"])
def test_absent_sub_messages_are_invalid(missing: str) -> None:
    """A CheckRequest without principal or resource is rejected, not evaluated as empty."""
    message = pb.CheckRequest(
        principal=pb.Principal(id="u", tenant="acme"),
        action="read",
        resource=pb.Resource(kind="device", id="d", tenant="acme"),
    )
    message.ClearField(missing)
    with pytest.raises(InvalidRequestError) as raised:
        convert.access_request_from_proto(message, LIMITS)
    assert (missing, "is required") == (raised.value.field, raised.value.message)


def test_batch_decodes_principal_once_and_names_items() -> None:
    """A batch keeps item order; an item without a resource is named by its index."""
    message = pb.CheckBatchRequest(
        principal=pb.Principal(id="u", tenant="acme", roles=["customer-viewer"]),
        items=[
            pb.CheckBatchItem(action="read", resource=pb.Resource(kind="device", id="1")),
            pb.CheckBatchItem(action="read", resource=pb.Resource(kind="ticket", id="2")),
        ],
    )
    query = convert.batch_from_proto(message, LIMITS)
    assert [resource.id for _, resource in query.items] == ["1", "2"]
    assert query.principal.roles == ("customer-viewer",)
    message.items.add(action="read")
    with pytest.raises(InvalidRequestError) as raised:
        convert.batch_from_proto(message, LIMITS)
    assert raised.value.field == "items[2].resource"


def test_decision_round_trip_with_trace_and_expiry() -> None:
    """A decision with every field set survives model -> CheckResponse -> model."""
    decision = _decision(
        errors=("condition of rule `x` failed",),
        valid_until=1_767_268_800.5,
        cached=True,
        matched_denies=("broken", "freeze"),
        trace=(
            RuleTrace("customer-read", "allow", True, True, True, True, None),
            RuleTrace("window", "allow", True, True, True, True, False),
            RuleTrace("broken", "deny", True, True, True, True, None, "bad window"),
        ),
    )
    message = convert.decision_to_proto(decision, decision_id="d-1")
    assert message.decision_id == "d-1"
    assert [trace.applied for trace in message.trace] == [True, False, False]
    assert decision == convert.decision_from_proto(message)


def test_decision_without_expiry_leaves_valid_until_unset() -> None:
    """valid_until is absent (not epoch 0) when the decision does not depend on the clock."""
    message = convert.decision_to_proto(_decision(allowed=False, rule_ids=()))
    assert not message.HasField("valid_until")
    assert not message.allowed


def test_batch_response_keeps_order_and_round_trips_each_decision() -> None:
    """batch_to_proto keeps request order and each result converts back to its decision."""
    decisions = [
        _decision(),
        _decision(allowed=False, rule_ids=(), valid_until=1_767_268_800.0),
        _decision(
            policy_version="1.3.0", trace=(RuleTrace("r", "deny", True, True, True, True, True),)
        ),
    ]
    response = convert.batch_to_proto(decisions, ["a", "b", "c"])
    assert [result.decision_id for result in response.results] == ["a", "b", "c"]
    assert [convert.decision_from_proto(result) for result in response.results] == decisions
