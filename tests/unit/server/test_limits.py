"""Request limits: batch size and attribute size are refused before any work, naming the field."""

from __future__ import annotations

import pytest

from cnm_policy.errors import LimitExceededError
from cnm_policy.server.limits import (
    Limits,
    check_batch_item,
    check_batch_request,
    check_request,
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
