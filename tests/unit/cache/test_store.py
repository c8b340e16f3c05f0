"""FifoStore: remembers by exact key, first in first out, within its bounds."""

from __future__ import annotations

from cnm_policy.cache.store import FifoStore


def test_values_are_remembered_by_their_exact_bytes() -> None:
    """What was put is found again; other bytes, even a prefix, are not."""
    memo: FifoStore[bytes, str] = FifoStore(4)
    memo.put(b"abc", "one")
    assert (memo.get(b"abc"), memo.get(b"ab"), memo.get(b"abcd")) == ("one", None, None)
    assert memo.get_many([b"x", b"abc"]) == [None, "one"]


def test_the_oldest_entries_make_room_first() -> None:
    """At the bound, each new key pushes out the first one put; replacing a value does not."""
    memo: FifoStore[bytes, int] = FifoStore(3)
    memo.put_many((bytes([i]), i) for i in range(3))
    memo.put(b"\x01", 10)  # a known key: replaced in place, nothing evicted
    memo.put(b"\x03", 3)
    assert memo.get_many([bytes([i]) for i in range(4)]) == [None, 10, 2, 3]
    assert len(memo) == 3


def test_long_keys_and_a_zero_bound_remember_nothing() -> None:
    """Keys over max_key_bytes are never stored; maxsize=0 turns the store off."""
    memo: FifoStore[bytes, str] = FifoStore(4, max_key_bytes=8)
    memo.put(b"x" * 9, "long")
    memo.put(b"x" * 8, "fits")
    assert (memo.get(b"x" * 9), memo.get(b"x" * 8)) == (None, "fits")
    off: FifoStore[bytes, str] = FifoStore(0)
    off.put(b"k", "v")
    assert (off.get(b"k"), len(off)) == (None, 0)


def test_evictions_are_counted_and_discard_removes_only_the_value_read() -> None:
    """Space evictions and discards count; a discard of a replaced value removes nothing."""
    store: FifoStore[bytes, object] = FifoStore(1)
    first, second = object(), object()
    store.put(b"k", first)
    store.put(b"j", second)  # evicts b"k"
    store.discard(b"j", first)  # not the value stored: kept
    assert (store.get(b"j"), store.evictions) == (second, 1)
    store.discard(b"j", second)
    assert (store.get(b"j"), store.evictions, len(store)) == (None, 2, 0)
