"""Decisions -> response bytes, reusing the encoding of decisions the cache shares.

Why: a cached decision is one shared object answering many calls, yet building and serializing
its `CheckResponse` costs more than finding it. Only the decision id differs between two answers
from the same decision, so the sidecar encodes the decision once and appends the id.

Why it is exact: protobuf parses concatenated encodings as one merged message, and for a
singular scalar field the last value on the wire wins. The response is therefore the decision's
encoding (without an id) followed by the encoding of a response holding only ``decision_id``
(field 9, length-delimited). A `CheckBatchResponse` is its ``results`` (field 1), each a
length-delimited `CheckResponse`. Both shapes are read from the generated descriptors and
checked at import, and the tests parse every shape back with protobuf itself.

Only decisions marked ``cached`` are remembered, by identity: the cache hands out the same
object for every hit (and keeps it alive), while a fresh decision is new every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from google.protobuf.descriptor import FieldDescriptor

from cnm_policy.model import Decision
from cnm_policy.server.wire import convert
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["ResponseEncoder"]

_MEMO_ENTRIES: Final = 8192  # distinct shared decisions remembered before starting over


def _length_delimited_tag(
    message: type[pb.CheckResponse | pb.CheckBatchResponse], name: str
) -> bytes:
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.type not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE):
        raise TypeError(f"{message.DESCRIPTOR.full_name}.{name} is not length-delimited")
    return _varint(field.number << 3 | 2)  # wire type 2: length-delimited


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative integer."""
    if value < 0x80:  # ids and most decisions: one byte, the common case by far
        return _ONE_BYTE[value]
    if value < 0x4000:  # the size of a batch result: two bytes
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ONE_BYTE: Final = tuple(bytes((value,)) for value in range(0x80))
_DECISION_ID_TAG: Final = _length_delimited_tag(pb.CheckResponse, "decision_id")
_RESULTS_TAG: Final = _length_delimited_tag(pb.CheckBatchResponse, "results")


def _id_field(decision_id: str) -> bytes:
    """The encoding of a `CheckResponse` holding only `decision_id` (appended to a decision's)."""
    encoded = decision_id.encode()
    return _DECISION_ID_TAG + _varint(len(encoded)) + encoded


class ResponseEncoder:
    """Encodes `CheckResponse`/`CheckBatchResponse` bytes; thread-safe (dict operations only)."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        # id(decision) -> (decision, its encoding without an id, the same + the id field's tag)
        self._memo: dict[int, tuple[Decision, bytes, bytes]] = {}

    def check(self, decision: Decision, decision_id: str) -> bytes:
        """The serialized `CheckResponse` for `decision`, identified as `decision_id`."""
        # A cache hit's path, written out (it runs on every Check): the remembered encoding
        # with the id field's tag, then the id's length, which fits one varint byte for any id
        # up to 127 bytes, and the id.
        found = self._memo.get(id(decision))
        if found is None or found[0] is not decision:
            found = self._encodings(decision)
        encoded = decision_id.encode()
        if len(encoded) < 0x80:
            return found[2] + _ONE_BYTE[len(encoded)] + encoded
        return found[1] + _id_field(decision_id)

    def batch(self, decisions: Sequence[Decision], decision_ids: Sequence[str]) -> bytes:
        """The serialized `CheckBatchResponse` for `decisions`, in order."""
        parts: list[bytes] = []
        encodings = self._encodings
        for decision, decision_id in zip(decisions, decision_ids, strict=True):
            body = encodings(decision)[1]
            identified = _id_field(decision_id)
            parts += (_RESULTS_TAG, _varint(len(body) + len(identified)), body, identified)
        return b"".join(parts)

    def _encodings(self, decision: Decision) -> tuple[Decision, bytes, bytes]:
        """`decision`, its encoding without an id, and that followed by the id field's tag."""
        memo = self._memo
        found = memo.get(id(decision))
        if found is not None and found[0] is decision:
            return found
        body = convert.decision_to_proto(decision).SerializeToString()
        found = (decision, body, body + _DECISION_ID_TAG)
        if not decision.cached:
            return found
        if len(memo) >= _MEMO_ENTRIES:
            memo.clear()
        # The entry keeps `decision` alive, so its id cannot be reused while remembered.
        memo[id(decision)] = found
        return found
