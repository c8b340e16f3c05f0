"""What the sidecar refuses to evaluate, and the error it raises when a request goes past it.

A policy decision point sits in the request path of every management call, so one oversized or
deeply nested request must not be able to stall it for everyone else. The limits are checked
before any conversion or evaluation work is done (attribute depth is checked during conversion,
the one walk that visits every value), and each violation names the field that broke it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from google.protobuf.struct_pb2 import Struct

from cnm_policy.errors import LimitExceededError
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "DEFAULT_LIMITS",
    "LIMIT_MINIMUMS",
    "Limits",
    "check_batch_item",
    "check_batch_request",
    "check_request",
    "check_struct",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request bounds. The defaults fit a portal filtering a page of a few hundred items.

    `max_attribute_bytes` bounds the encoded size of each attribute/context Struct;
    `max_message_bytes` is enforced by gRPC itself on every received message.
    """

    max_batch_items: int = 1000
    max_attribute_depth: int = 8
    max_attribute_bytes: int = 64 * 1024
    max_message_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        for name, minimum in LIMIT_MINIMUMS.items():
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be at least {minimum}")


# The smallest value of each limit that can work (the CLI names its flags with them).
LIMIT_MINIMUMS: Final[Mapping[str, int]] = {
    "max_batch_items": 1,
    "max_attribute_depth": 1,
    "max_attribute_bytes": 1,
    "max_message_bytes": 1024,
}


DEFAULT_LIMITS = Limits()


def check_request(
    request: pb.CheckRequest, limits: Limits, *, encoded_size: int | None = None
) -> None:
    """Raise `LimitExceededError` when a single check request exceeds `limits`.

    `encoded_size` is the request's own encoded size when the caller has it (the decoder's
    fingerprint): a request within the attribute limit has every Struct within it too.
    """
    if encoded_size is None:
        encoded_size = request.ByteSize()
    if encoded_size <= limits.max_attribute_bytes:
        return
    check_struct(request.principal.attributes, "principal.attributes", limits)
    check_struct(request.resource.attributes, "resource.attributes", limits)
    check_struct(request.context, "context", limits)
    check_struct(request.actor.attributes, "actor.attributes", limits)


def check_batch_request(request: pb.CheckBatchRequest, limits: Limits) -> None:
    """Raise `LimitExceededError` when a batch is too long or its shared parts are too large.

    Each item is checked with `check_batch_item` as it is decoded.
    """
    count = len(request.items)
    if count > limits.max_batch_items:
        raise LimitExceededError(
            "items", f"{count} items exceed the limit of {limits.max_batch_items} per batch"
        )
    check_struct(request.principal.attributes, "principal.attributes", limits)
    check_struct(request.context, "context", limits)
    check_struct(request.actor.attributes, "actor.attributes", limits)


def check_batch_item(
    item: pb.CheckBatchItem, index: int, limits: Limits, *, encoded_size: int | None = None
) -> None:
    """Raise `LimitExceededError` when item `index` of a batch exceeds `limits`.

    `encoded_size`, the item's own encoded size, spares the check when it is within the limit.
    """
    if encoded_size is not None and encoded_size <= limits.max_attribute_bytes:
        return
    check_struct(item.resource.attributes, f"items[{index}].resource.attributes", limits)


def check_struct(struct: Struct, field: str, limits: Limits) -> None:
    """Raise `LimitExceededError` when `struct` encodes larger than the attribute limit."""
    size = struct.ByteSize()
    if size > limits.max_attribute_bytes:
        raise LimitExceededError(
            field, f"{size} bytes exceed the limit of {limits.max_attribute_bytes}"
        )
