"""Request limits: batch size and attribute size are refused before any work, naming the field."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.errors import LimitExceededError
from cnm_policy.server.limits import (
    Limits,
    check_batch_item,
    check_batch_request,
    check_request,
    check_struct,
)
from cnm_policy.server.wire.convert import dict_to_struct
from cnm_policy.v1 import policy_pb2 as pb


def test_batch_over_the_item_limit_is_refused() -> None:
    """More items than max_batch_items is a LimitExceededError on `items`."""
    request = pb.CheckBatchRequest(items=[pb.CheckBatchItem(action="read")] * 3)
    check_batch_request(request, Limits(max_batch_items=3))
    with pytest.raises(LimitExceededError) as raised:
        check_batch_request(request, Limits(max_batch_items=2))
    assert raised.value.field == "items"
    assert raised.value.message == "3 items exceed the limit of 2 per batch"


def test_oversized_attributes_name_their_struct() -> None:
    """An attribute Struct larger than max_attribute_bytes names where it is."""
    big = dict_to_struct({"notes": "x" * 200})
    request = pb.CheckRequest(resource=pb.Resource(attributes=big))
    check_request(request, Limits(max_attribute_bytes=300))
    with pytest.raises(LimitExceededError) as raised:
        check_request(request, Limits(max_attribute_bytes=100))
    assert raised.value.field == "resource.attributes"


def test_oversized_item_attributes_name_the_item() -> None:
    """In a batch, the item whose attributes are too large is named by index."""
    big = dict_to_struct({"notes": "x" * 200})
    item = pb.CheckBatchItem(resource=pb.Resource(attributes=big))
    check_batch_item(item, 1, Limits(max_attribute_bytes=300))
    with pytest.raises(LimitExceededError) as raised:
        check_batch_item(item, 1, Limits(max_attribute_bytes=100))
    assert raised.value.field == "items[1].resource.attributes"


@pytest.mark.parametrize(
    "field", ["max_batch_items", "max_attribute_depth", "max_attribute_bytes", "max_message_bytes"]
)
def test_limits_reject_nonsense_values(field: str) -> None:
    """A limit of zero would refuse everything; it is a configuration error."""
    with pytest.raises(ValueError, match=field):
        Limits(**{field: 0})


def _request(sizes: tuple[int, int, int, int]) -> pb.CheckRequest:
    principal, resource, context, actor = (dict_to_struct({"notes": "x" * n}) for n in sizes)
    return pb.CheckRequest(
        principal=pb.Principal(id="u-1", attributes=principal),
        resource=pb.Resource(kind="device", attributes=resource),
        context=context,
        actor=pb.Principal(id="svc", attributes=actor),
    )


def _refusal(check: Callable[[], None]) -> str | None:
    try:
        check()
    except LimitExceededError as error:
        return f"{error.field}: {error.message}"
    return None


@given(st.tuples(*[st.integers(min_value=0, max_value=120)] * 4), st.integers(1, 400))
def test_the_encoded_size_bound_refuses_exactly_what_each_struct_would(
    sizes: tuple[int, int, int, int], limit: int
) -> None:
    """Passing the fingerprint's length changes nothing but the cost: same refusals, same field."""
    request = _request(sizes)
    limits = Limits(max_attribute_bytes=limit)
    fingerprint = request.SerializeToString(deterministic=True)
    expected = _refusal(lambda: _check_each_struct(request, limits))
    assert expected == _refusal(lambda: check_request(request, limits))
    assert expected == _refusal(
        lambda: check_request(request, limits, encoded_size=len(fingerprint))
    )


def _check_each_struct(request: pb.CheckRequest, limits: Limits) -> None:
    """The unbounded check: every Struct measured, in check_request's order."""
    check_struct(request.principal.attributes, "principal.attributes", limits)
    check_struct(request.resource.attributes, "resource.attributes", limits)
    check_struct(request.context, "context", limits)
    check_struct(request.actor.attributes, "actor.attributes", limits)


def test_the_fingerprint_is_as_long_as_the_encoding_and_longer_than_any_struct() -> None:
    """Pins the protobuf sizes the bound relies on: deterministic bytes are ByteSize() long."""
    request = _request((10, 0, 30, 5))
    size = request.ByteSize()
    assert size == len(request.SerializeToString(deterministic=True))
    parts = [request.principal.attributes, request.resource.attributes, request.context]
    assert all(part.ByteSize() < size for part in [*parts, request.actor.attributes])


def test_a_batch_item_within_the_bound_is_not_measured_again() -> None:
    """An item whose own encoding fits the limit passes; one that does not is measured."""
    item = pb.CheckBatchItem(resource=pb.Resource(attributes=dict_to_struct({"n": "x" * 200})))
    limits = Limits(max_attribute_bytes=100)
    with pytest.raises(LimitExceededError) as raised:
        check_batch_item(item, 2, limits, encoded_size=item.ByteSize())
    assert raised.value.field == "items[2].resource.attributes"
    small = pb.CheckBatchItem(resource=pb.Resource(attributes=dict_to_struct({"n": "x"})))
    check_batch_item(small, 2, limits, encoded_size=small.ByteSize())
