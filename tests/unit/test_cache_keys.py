"""Cache keys: equal keys only ever for exactly equal requests, whichever encoding made them."""

from __future__ import annotations

import copy
import math
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgpack import ExtType, Timestamp

from cnm_policy._cache_keys import batch_keys, key_bytes, request_key, storable
from cnm_policy.model import Principal, Resource
from tests.strategies_cache import LookAlikeStr, Opaque

DIGEST = "sha256:test"
ADMIN = Principal("u-1", "acme", ("customer-admin",), {"mfa": True})
ROUTER = Resource("device", "dev-1", "acme/emea", {"site_class": "edge"})

Request = tuple[Principal, str, Resource, Any]


def exact(value: Any) -> Any:
    """`value` as nested (type, content) pairs: equal only for values no condition can tell
    apart (floats by their bits, so -0.0 and 0.0 differ; mappings in their order)."""
    kind = type(value)
    if kind is float:
        return (kind, struct.pack("<d", value))
    if isinstance(value, dict):
        return (kind, tuple((exact(k), exact(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (kind, tuple(exact(item) for item in value))
    if isinstance(value, set | frozenset):
        return (kind, frozenset(exact(item) for item in value))
    return (kind, value)


def exact_request(request: Request) -> Any:
    principal, action, resource, context = request
    return exact(
        (
            (type(principal), principal.id, principal.tenant, principal.roles),
            principal.attributes,
            action,
            (type(resource), resource.kind, resource.id, resource.tenant),
            resource.attributes,
            {} if context is None else context,
        )
    )


# Leaves that Python equates in groups, or that look alike to a lenient encoder.
_leaves = st.one_of(
    st.sampled_from((True, False, 1, 0, 1.0, 0.0, -0.0, math.nan, math.inf, "1", "true", "", None)),
    st.sampled_from((2**64, -(2**63) - 1, 2**63, 2**64 - 1, -(2**63))),
    st.sampled_from((b"1", bytearray(b"1"), memoryview(b"1"))),
    st.sampled_from((LookAlikeStr("1"), Opaque("1"), "\ud800", "é")),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(("a", "b", LookAlikeStr("a"))), inner, max_size=3),
        st.dictionaries(st.sampled_from((1, True, 1.0, "1")), inner, max_size=2),
        st.frozensets(st.sampled_from(("x", 1, True)), max_size=2),
    ),
    max_leaves=6,
)
_names = st.sampled_from(("u-1", "acme", LookAlikeStr("acme"), "é", ""))
_roles = st.one_of(
    st.lists(st.sampled_from(("customer-admin", "noc", LookAlikeStr("noc"))), max_size=2).map(
        tuple
    ),
    st.lists(st.sampled_from(("customer-admin", "noc")), max_size=2),
)
_mappings = st.dictionaries(st.sampled_from(("mfa", "level", "tag")), _values, max_size=3)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """Requests made of confusable names, roles and attribute values."""
    roles: Any = draw(_roles)  # lists too, on purpose
    principal = Principal(draw(_names), draw(_names), roles, draw(_mappings))
    resource = Resource(draw(_names), draw(_names), draw(_names), draw(_mappings))
    context = draw(st.one_of(st.none(), _mappings))
    return (principal, draw(_names), resource, context)


def stored_key(request: Request) -> Any:
    """The key a cache would store `request` under, or None if it would not store one."""
    key = request_key(DIGEST, *request)
    return key if key is not None and storable(key) else None


@settings(max_examples=400)
@given(requests(), requests())
def test_equal_stored_keys_mean_exactly_equal_requests(first: Request, second: Request) -> None:
    """No two requests a condition could tell apart ever share a stored key."""
    key = stored_key(first)
    if key is not None and key == stored_key(second):
        assert exact_request(first) == exact_request(second)


@settings(max_examples=300)
@given(requests())
def test_a_copy_of_a_request_gets_the_same_key(request: Request) -> None:
    """Keys depend on values only, never on object identity or sharing: a deep copy (new
    objects, other reference counts) encodes the same, so repeated checks really hit."""
    key = request_key(DIGEST, *request)
    try:
        duplicate = copy.deepcopy(request)
    except TypeError:  # memoryview cannot be copied
        return
    assert request_key(DIGEST, *duplicate) == key


@settings(max_examples=300)
@given(requests())
def test_a_request_with_a_confusable_swapped_in_gets_another_key(request: Request) -> None:
    """Swapping one attribute for a value Python calls equal (True, 1, 1.0; a list and a
    tuple) never keeps the stored key."""
    principal, action, resource, context = request
    for original, swapped in ((True, 1), (1, 1.0), (1, True), ([1], (1,)), ((1,), [1])):
        changed = Principal(
            principal.id, principal.tenant, principal.roles, {**principal.attributes, "z": swapped}
        )
        base = Principal(
            principal.id, principal.tenant, principal.roles, {**principal.attributes, "z": original}
        )
        first = stored_key((base, action, resource, context))
        if first is not None:
            assert first != stored_key((changed, action, resource, context))


def test_plain_requests_get_the_packed_key_and_the_rest_the_marshalled_one() -> None:
    """The usual request is one byte string; tuples and sets inside fall back to marshal."""
    packed = request_key(DIGEST, ADMIN, "read", ROUTER, {"channel": "portal"})
    assert packed is not None and len(packed) == 2
    with_tuple = Principal("u-1", "acme", ("customer-admin",), {"tenants": ("acme",)})
    marshalled = request_key(DIGEST, with_tuple, "read", ROUTER, None)
    assert marshalled is not None and len(marshalled) == 8
    assert storable(packed) and storable(marshalled)


@pytest.mark.parametrize(
    "value", [b"x", bytearray(b"x"), memoryview(b"x"), {"k": [b"x"]}, {"k": (b"x",)}]
)
def test_keys_holding_byte_buffers_are_never_stored(value: Any) -> None:
    """Both encoders write every byte buffer alike, so such keys are refused on the way in."""
    principal = Principal("u-1", "acme", ("customer-admin",), {"tag": value})
    key = request_key(DIGEST, principal, "read", ROUTER, None)
    assert key is not None and not storable(key)


def test_msgpack_extension_objects_are_never_stored() -> None:
    """msgpack's own extension and timestamp objects encode as extension data: refused."""
    for value in (ExtType(1, b"x"), Timestamp(1, 0)):
        principal = Principal("u-1", "acme", ("customer-admin",), {"tag": value})
        key = request_key(DIGEST, principal, "read", ROUTER, None)
        assert key is not None and not storable(key)


@pytest.mark.parametrize(
    "request_",
    [
        (ADMIN, "read", ROUTER, {"window": Opaque("x")}),
        (Principal("u-1", "acme", iter(("customer-admin",)), {}), "read", ROUTER, None),  # type: ignore[arg-type]
        (object(), "read", ROUTER, None),
        (ADMIN, "read", object(), None),
        (ADMIN, LookAlikeStr("read"), ROUTER, None),
    ],
    ids=["opaque-value", "generator-roles", "principal", "resource", "action"],
)
def test_requests_that_cannot_be_encoded_exactly_have_no_key(request_: Any) -> None:
    """Look-alikes, objects and single-use iterables are evaluated every time instead."""
    assert request_key(DIGEST, *request_) is None


def test_a_huge_request_does_not_change_later_keys() -> None:
    """A request far past the pooled buffer size is keyed, and the next key is unaffected."""
    small = request_key(DIGEST, ADMIN, "read", ROUTER, None)
    huge = Principal("u-1", "acme", ("customer-admin",), {"blob": "x" * 200_000})
    key = request_key(DIGEST, huge, "read", ROUTER, None)
    assert key is not None and key_bytes(key) > 200_000
    assert request_key(DIGEST, ADMIN, "read", ROUTER, None) == small


def test_batch_keys_are_the_single_keys_and_malformed_items_have_none() -> None:
    """A batch item's key is its single check's key, so the two share entries."""
    other = Resource("device", "dev-2", "acme")
    keys = batch_keys(DIGEST, ADMIN, [("read", ROUTER), ("read",), ("configure", other)], None)  # type: ignore[list-item]
    assert keys == [
        request_key(DIGEST, ADMIN, "read", ROUTER, None),
        None,
        request_key(DIGEST, ADMIN, "configure", other, None),
    ]


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond, so concurrent keys interleave as much as they can."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def test_concurrent_keys_never_mix(fast_switching: None) -> None:
    """Threads keying different requests at once each get their own request's key (half of
    them hold a tuple, so they go through a refused packing and the fallback)."""
    variants = [
        (Principal(f"u-{n}", "acme", ("customer-admin",), {"n": n, "t": (n,) * (n % 2)}), "read")
        for n in range(8)
    ]
    expected = [request_key(DIGEST, *v, ROUTER, None) for v in variants]
    failures: list[int] = []

    def work(index: int) -> None:
        for _ in range(2000):
            if request_key(DIGEST, *variants[index], ROUTER, None) != expected[index]:
                failures.append(index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(variants))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
