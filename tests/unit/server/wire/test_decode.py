"""Byte-level decode: exactly what the message-level conversions give, only cheaper."""

from __future__ import annotations

from typing import Any

import pytest

from cnm_policy.errors import InvalidRequestError, LimitExceededError
from cnm_policy.model import AccessRequest, Principal, Resource
from cnm_policy.server.limits import Limits
from cnm_policy.server.wire import convert
from cnm_policy.server.wire.convert import dict_to_struct
from cnm_policy.server.wire.decode import MAX_MEMO_KEY_BYTES, RequestDecoder
from cnm_policy.v1 import policy_pb2 as pb

LIMITS = Limits()


def _check_bytes(**attributes: Any) -> bytes:
    request = AccessRequest(
        Principal("u-1", "acme", ("customer-admin",), {"mfa": True}),
        "read",
        Resource("device", "d-1", "acme/emea", attributes),
        {"channel": "portal"},
    )
    return convert.access_request_to_proto(request).SerializeToString()


@pytest.mark.parametrize("entries", [0, 10])
def test_decoding_equals_the_message_conversion_every_time(entries: int) -> None:
    """Memoized or not, decoding gives what parsing and converting the message gives."""
    data = _check_bytes(site="paris", level=3)
    decoder = RequestDecoder(LIMITS, entries=entries)
    expected = convert.access_request_from_proto(pb.CheckRequest.FromString(data), LIMITS)
    assert [decoder.check(data).query for _ in range(3)] == [expected] * 3


def test_bytes_that_are_not_a_message_are_an_invalid_request() -> None:
    """Garbage is the caller's error (INVALID_ARGUMENT), named as the whole request."""
    with pytest.raises(InvalidRequestError) as raised:
        RequestDecoder(LIMITS).check(b"\xff\xff\xff")
    assert raised.value.field == "request"


def test_a_refused_request_is_refused_again_not_remembered() -> None:
    """Only successes are remembered: the same bad bytes fail the same way every time."""
    decoder = RequestDecoder(Limits(max_attribute_bytes=100))
    data = _check_bytes(notes="x" * 200)
    for _ in range(2):
        with pytest.raises(LimitExceededError) as raised:
            decoder.check(data)
        assert raised.value.field == "resource.attributes"


def test_a_request_over_the_attribute_limit_in_total_is_measured_struct_by_struct() -> None:
    """The limit bounds each Struct, not the request: parts that each fit are accepted."""
    limits = Limits(max_attribute_bytes=100)
    data = _check_bytes(notes="x" * 60)
    assert len(data) > 100
    expected = convert.access_request_from_proto(pb.CheckRequest.FromString(data), limits)
    assert RequestDecoder(limits).check(data).query == expected


def test_large_requests_are_decoded_but_not_remembered() -> None:
    """The memo holds only requests up to MAX_MEMO_KEY_BYTES, bounding its memory."""
    decoder = RequestDecoder(LIMITS)
    data = _check_bytes(notes="x" * MAX_MEMO_KEY_BYTES)
    assert decoder.check(data) == decoder.check(data)
    assert decoder.check(data) is not decoder.check(data)
    small = _check_bytes(site="paris")
    assert decoder.check(small) is decoder.check(small)


def _batch(*resources: pb.Resource) -> bytes:
    principal = pb.Principal(id="u-1", tenant="acme", roles=["customer-viewer"])
    items = [pb.CheckBatchItem(action="read", resource=r) for r in resources]
    return pb.CheckBatchRequest(principal=principal, items=items).SerializeToString()


def test_batch_items_decode_as_the_message_conversion_wherever_they_appear() -> None:
    """A remembered item decodes the same at any position, next to new ones."""
    first = pb.Resource(kind="device", id="d-1", tenant="acme")
    second = pb.Resource(kind="circuit", id="c-1", tenant="acme/emea")
    decoder = RequestDecoder(LIMITS)
    for data in (_batch(first), _batch(second, first), _batch(first, second, first)):
        expected = convert.batch_from_proto(pb.CheckBatchRequest.FromString(data), LIMITS)
        assert decoder.batch(data) == expected


def test_a_bad_item_is_named_by_its_position_even_after_good_ones_were_remembered() -> None:
    """Errors are never remembered, and they say which item of this batch is wrong."""
    good = pb.Resource(kind="device", id="d-1", tenant="acme")
    decoder = RequestDecoder(Limits(max_attribute_bytes=100))
    decoder.batch(_batch(good))
    big = pb.Resource(kind="device", id="d-2", tenant="acme")
    big.attributes.update({"notes": "x" * 200})
    with pytest.raises(LimitExceededError) as raised:
        decoder.batch(_batch(good, good, big))
    assert raised.value.field == "items[2].resource.attributes"
    with pytest.raises(InvalidRequestError) as missing:
        decoder.batch(
            pb.CheckBatchRequest(
                principal=pb.Principal(id="u-1"),
                items=[pb.CheckBatchItem(action="read", resource=good), pb.CheckBatchItem()],
            ).SerializeToString()
        )
    assert missing.value.field == "items[1].resource"


def test_a_check_is_fingerprinted_by_its_deterministic_encoding() -> None:
    """The cache key is the request re-serialized with map entries sorted: the same request
    with its context keys in another order on the wire has the same fingerprint."""
    decoder = RequestDecoder(LIMITS)
    first = pb.CheckRequest(context=dict_to_struct({"a": 1})).SerializeToString()
    second = pb.CheckRequest(context=dict_to_struct({"b": "x"})).SerializeToString()
    base = _check_bytes(site="paris")
    one, other = decoder.check(base + first + second), decoder.check(base + second + first)
    assert one.query == other.query
    assert one.fingerprint == other.fingerprint
    message = pb.CheckRequest.FromString(base + first + second)
    assert one.fingerprint == message.SerializeToString(deterministic=True)
    assert decoder.check(base).fingerprint != one.fingerprint


def test_batch_fingerprints_encode_the_shared_part_and_each_item_exactly() -> None:
    """Items are fingerprinted by their deterministic bytes; batches sharing principal and
    context share one fingerprint, any difference in either gives another."""
    decoder = RequestDecoder(LIMITS)
    first = pb.Resource(kind="device", id="d-1", tenant="acme")
    second = pb.Resource(kind="circuit", id="c-1", tenant="acme")
    one, two = decoder.batch(_batch(first)), decoder.batch(_batch(second, first))
    request = pb.CheckBatchRequest.FromString(_batch(second, first))
    assert two.item_fingerprints == [
        item.SerializeToString(deterministic=True) for item in request.items
    ]
    principal = request.principal.SerializeToString(deterministic=True)
    assert one.shared_fingerprint == two.shared_fingerprint
    assert one.shared_fingerprint.startswith(b"%d:%b" % (len(principal), principal))
    request.context.update({"channel": "portal"})
    with_context = decoder.batch(request.SerializeToString())
    request.ClearField("context")
    request.principal.id = "u-2"
    other_principal = decoder.batch(request.SerializeToString())
    shared = {one.shared_fingerprint, with_context.shared_fingerprint}
    assert len(shared | {other_principal.shared_fingerprint}) == 3
