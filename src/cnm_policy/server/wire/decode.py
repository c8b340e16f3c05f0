"""Request bytes -> checked model values and their fingerprint: the sidecar's one decode path.

Recent decodings are remembered by their exact bytes, and each carries the deterministic
encoding the decision cache keys by. INVARIANT: decoded values are shared by every call that
sent the same bytes, so nothing downstream may mutate them (docs/design/sidecar-wire.md).
"""

from __future__ import annotations

from typing import Final, NamedTuple, TypeVar, cast

from google.protobuf.message import Message

from cnm_policy.cache.store import DEFAULT_MAX_KEY_BYTES, DEFAULT_MAXSIZE, FifoStore
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import AccessRequest, Resource
from cnm_policy.server.limits import Limits, check_batch_item, check_batch_request, check_request
from cnm_policy.server.wire import convert
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "DEFAULT_MEMO_ENTRIES",
    "MAX_MEMO_KEY_BYTES",
    "DecodedCheck",
    "RequestDecoder",
    "parse_request",
]

DEFAULT_MEMO_ENTRIES: Final = DEFAULT_MAXSIZE
MAX_MEMO_KEY_BYTES: Final = DEFAULT_MAX_KEY_BYTES  # larger requests are decoded every time

_M = TypeVar("_M", bound=Message)


# A batch item as the engine takes it, with its fingerprint (deterministic encoding).
_DecodedItem = tuple[tuple[str, Resource], bytes]


class DecodedCheck(NamedTuple):
    """A `CheckRequest` as the engine takes it, and its fingerprint (deterministic encoding).

    A named tuple: as immutable as a frozen dataclass, and built in about half the time.
    """

    query: AccessRequest
    explain: bool
    fingerprint: bytes


class RequestDecoder:
    """Decodes `Check`/`CheckBatch` request bytes under `limits`; ``entries=0`` turns memos off.

    A `CheckRequest` is remembered whole; a `CheckBatchRequest` item by item (a page of devices
    is asked about again and again, in various batches), with the principal and context, shared
    by all items, decoded once per batch.
    """

    __slots__ = ("_checks", "_items", "_limits")

    def __init__(self, limits: Limits, *, entries: int = DEFAULT_MEMO_ENTRIES) -> None:
        self._limits = limits
        self._checks: FifoStore[bytes, DecodedCheck] = FifoStore(entries)
        self._items: FifoStore[bytes, _DecodedItem] = FifoStore(entries)

    def check(self, data: bytes) -> DecodedCheck:
        """The request a `Check` call carries; raises InvalidRequestError naming the field."""
        found = self._checks.get(data)
        if found is None:
            found = self._decode_check(data)
            self._checks.put(data, found)
        return found

    def batch(self, data: bytes) -> convert.BatchQuery:
        """The principal, items and context a `CheckBatch` call carries (errors name the item)."""
        request = parse_request(pb.CheckBatchRequest, data)
        limits = self._limits
        check_batch_request(request, limits)
        principal, context, actor = convert.batch_shared_from_proto(request, limits)
        shared = _shared_fingerprint(request)
        messages = request.items
        raw = [item.SerializeToString() for item in messages]
        found = self._items.get_many(raw)
        fresh: list[tuple[bytes, _DecodedItem]] = []
        for index, remembered in enumerate(found):
            if remembered is None:
                item = messages[index]
                fingerprint = item.SerializeToString(deterministic=True)
                check_batch_item(item, index, limits, encoded_size=len(fingerprint))
                decoded = found[index] = (
                    convert.batch_item_from_proto(item, index, limits),
                    fingerprint,
                )
                fresh.append((raw[index], decoded))
        self._items.put_many(fresh)
        # INVARIANT: every slot was filled above
        items = cast(list[_DecodedItem], found)
        return convert.BatchQuery(
            principal=principal,
            items=[item for item, _ in items],
            context=context,
            explain=request.explain,
            actor=actor,
            shared_fingerprint=shared,
            item_fingerprints=[fingerprint for _, fingerprint in items],
        )

    def _decode_check(self, data: bytes) -> DecodedCheck:
        request = parse_request(pb.CheckRequest, data)
        # The fingerprint's length is the request's encoded size: it bounds the limits check.
        fingerprint = request.SerializeToString(deterministic=True)
        limits = self._limits
        check_request(request, limits, encoded_size=len(fingerprint))
        query = convert.access_request_from_proto(request, limits)
        return DecodedCheck(query, request.explain, fingerprint)


def _shared_fingerprint(request: pb.CheckBatchRequest) -> bytes:
    """An exact encoding of what a batch's items share: its principal, actor and context.

    Deterministic (map entries sorted), as the items' are. The length prefixes make the splits
    unambiguous (-1: no actor), and the result non-empty.
    """
    principal = request.principal.SerializeToString(deterministic=True)
    context = request.context.SerializeToString(deterministic=True)
    if not request.HasField("actor"):
        return b"%d:%b-1:%b" % (len(principal), principal, context)
    actor = request.actor.SerializeToString(deterministic=True)
    return b"%d:%b%d:%b%b" % (len(principal), principal, len(actor), actor, context)


def parse_request(message_type: type[_M], data: bytes) -> _M:
    """Parse `data`; undecodable bytes are the caller's error, not ours."""
    try:
        return message_type.FromString(data)
    except Exception as exc:  # protobuf raises DecodeError (a bare Exception subclass)
        raise InvalidRequestError("request", "is not a valid protobuf message") from exc
