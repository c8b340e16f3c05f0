"""Cache keys: equal keys only ever for exactly equal requests (one marshal encoding)."""

from __future__ import annotations

import copy
import math
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnm_policy.cache.keys import batch_keys, key_bytes, keyed_request, request_key
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
    """The request's exact key, encoded independently of `cache.keys`."""
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


# Plain data, in groups Python equates (True, 1, 1.0...) and floats that need all 64 bits.
_plain_leaves = st.sampled_from(
    (
        True,
        False,
        1,
        0,
        1.0,
        0.0,
        -0.0,
        0.1,
        1 + 2**-30,
        math.inf,
        "1",
        "true",
        "",
        "é",
        None,
        2**63,
        -(2**63),
        2**64 - 1,
    )
)
# What no cache may store, or what a lenient encoder would write as a look-alike.
_odd_leaves = st.sampled_from(
    (
        math.nan,
        2**64,
        -(2**63) - 1,
        b"1",
        bytearray(b"1"),
        memoryview(b"1"),
        LookAlikeStr("1"),
        Opaque("1"),
        "\ud800",
    )
)


def _nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(st.sampled_from(("a", "b")), inner, max_size=3),
            st.dictionaries(st.sampled_from((1, True, 1.0, "1")), inner, max_size=2),
            st.frozensets(st.sampled_from(("x", 1, True)), max_size=2),
        ),
        max_leaves=6,
    )


_plain_values = _nested(_plain_leaves)
_values = _nested(st.one_of(_plain_leaves, _plain_leaves, _odd_leaves))
_plain_names = st.sampled_from(("u-1", "acme", "acme/emea", "é", ""))
_names = st.one_of(_plain_names, st.just(LookAlikeStr("acme")))
_plain_roles = st.lists(st.sampled_from(("customer-admin", "noc")), max_size=2).map(tuple)
_roles = st.one_of(
    _plain_roles,
    st.lists(st.sampled_from(("customer-admin", "noc")), max_size=2),  # a list, not a tuple
    st.just((LookAlikeStr("noc"),)),
)


def _mappings(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(("mfa", "level", "tag")), values, max_size=3)


@st.composite
def requests(draw: st.DrawFn, *, plain: bool = False) -> Request:
    """Requests of confusable names, roles and values; with `plain`, only what may be stored."""
    names = _plain_names if plain else _names
    roles: Any = draw(_plain_roles if plain else _roles)  # lists too, on purpose
    mappings = _mappings(_plain_values if plain else _values)
    principal = Principal(draw(names), draw(names), roles, draw(mappings))
    resource = Resource(draw(names), draw(names), draw(names), draw(mappings))
    context = draw(st.one_of(st.none(), mappings))
    return (principal, draw(names), resource, context)


def stored_key(request: Request) -> Any:
    """The key a cache would store `request` under, or None if it would not store one."""
    key = request_key(DIGEST, *request)
    return key if key is not None and keyed_request(key) is not None else None


def rebuilds_exactly(request: Request) -> bool:
    """Whether `request` may be stored; if so, asserts that its key rebuilds it exactly, as a
    private copy (the cache evaluates that copy, not the caller's mutable objects)."""
    key = request_key(DIGEST, *request)
    rebuilt = None if key is None else keyed_request(key)
    if rebuilt is None:
        return False
    assert exact_request(rebuilt[:4]) == exact_request(request)
    assert rebuilt[4] is None  # no actor
    assert request_key(DIGEST, *rebuilt) == key
    assert rebuilt[0].attributes is not request[0].attributes
    assert rebuilt[2].attributes is not request[2].attributes
    assert rebuilt[3] is not request[3]
    return True


@settings(max_examples=300)
@given(requests(plain=True))
def test_a_stored_key_rebuilds_exactly_the_request_it_encodes(request: Request) -> None:
    """A plain request is stored, and rebuilt down to every type and float bit."""
    assert rebuilds_exactly(request)


@settings(max_examples=300)
@given(requests())
def test_whatever_may_be_stored_rebuilds_exactly(request: Request) -> None:
    """Past plain data too (list roles, integers beyond 64 bits, lone surrogates, tuples and
    frozensets through marshal): a key that may be stored rebuilds its request exactly."""
    rebuilds_exactly(request)


def _nested_list(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_requests_nested_too_deep_are_never_stored() -> None:
    """``==`` on one shared deep container answers by identity, where the cache's copies would
    recurse past the interpreter's limit: past 32 levels a request is evaluated every time."""
    for depth, stored in ((20, True), (40, False)):
        for value in (_nested_list(depth), {"t": (_nested_list(depth),)}):
            principal = Principal("u-1", "acme", ("customer-admin",), {"token": value})
            key = request_key(DIGEST, principal, "read", ROUTER, None)
            assert key is not None
            assert (keyed_request(key) is not None) is stored


def test_a_fingerprint_key_rebuilds_no_request() -> None:
    """Caller fingerprints encode no request the cache could rebuild."""
    assert keyed_request((DIGEST, b"", b"fingerprint")) is None


_FIELDS = (
    "principal id",
    "principal tenant",
    "roles",
    "principal attribute",
    "action",
    "kind",
    "resource id",
    "resource tenant",
    "resource attribute",
    "context",
)


def changed(request: Request, field: str, name: Any, value: Any) -> Request:
    """`request` with one input replaced: a name, the roles, or one attribute/context entry."""
    principal, action, resource, context = request
    if field == "principal id":
        principal = replace(principal, id=name)
    elif field == "principal tenant":
        principal = replace(principal, tenant=name)
    elif field == "roles":
        principal = replace(principal, roles=value)
    elif field == "principal attribute":
        principal = replace(principal, attributes={**principal.attributes, "mfa": value})
    elif field == "action":
        action = name
    elif field == "kind":
        resource = replace(resource, kind=name)
    elif field == "resource id":
        resource = replace(resource, id=name)
    elif field == "resource tenant":
        resource = replace(resource, tenant=name)
    elif field == "resource attribute":
        resource = replace(resource, attributes={**resource.attributes, "mfa": value})
    else:
        context = {**(context or {}), "mfa": value}
    return (principal, action, resource, context)


@settings(max_examples=500)
@given(requests(plain=True), st.sampled_from(_FIELDS), _names, _values, _roles)
def test_changing_any_one_input_never_keeps_the_stored_key(
    request: Request, field: str, name: Any, value: Any, roles: Any
) -> None:
    """No two requests a condition could tell apart share a stored key: one input of a plain
    request is changed, often to a value Python calls equal (True for 1, a tuple for a list,
    a str subclass...)."""
    other = changed(request, field, name, roles if field == "roles" else value)
    key = stored_key(request)
    assert key is not None  # plain requests are always stored
    if key == stored_key(other):
        assert exact_request(request) == exact_request(other)


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


@pytest.mark.parametrize("field", _FIELDS)
def test_every_input_is_part_of_the_key(field: str) -> None:
    """Each input, changed alone to another plain value, gives another key."""
    base: Request = (ADMIN, "read", ROUTER, {"mfa": True})
    other = changed(base, field, "other", ("noc",) if field == "roles" else False)
    assert request_key(DIGEST, *base) != request_key(DIGEST, *other)


def test_roles_other_than_a_tuple_never_share_the_tuples_key() -> None:
    """The engine is handed the roles as given: a list (or a generator the key would use up)
    must not be answered from the entry of the same roles as a tuple."""
    key = request_key(DIGEST, ADMIN, "read", ROUTER, None)
    roles: Any = list(ADMIN.roles)
    assert request_key(DIGEST, replace(ADMIN, roles=roles), "read", ROUTER, None) != key


def test_the_policy_digest_is_part_of_every_key() -> None:
    """A decision of one policy version is never looked up for another."""
    with_tuple = Principal("u-1", "acme", ("customer-admin",), {"tenants": ("acme",)})
    for principal in (ADMIN, with_tuple):
        first = request_key("sha256:one", principal, "read", ROUTER, None)
        assert first != request_key("sha256:two", principal, "read", ROUTER, None)


@pytest.mark.parametrize(("first", "second"), [(1.0, 1 + 2**-30), (0.1, 0.10000000149011612)])
def test_floats_keep_all_their_bits(first: float, second: float) -> None:
    """Two floats that only differ past 32 bits are different values, with different keys."""
    keys = {
        request_key(DIGEST, replace(ADMIN, attributes={"x": value}), "read", ROUTER, None)
        for value in (first, second)
    }
    assert len(keys) == 2


def test_plain_requests_and_requests_holding_tuples_get_the_one_encoding() -> None:
    """Every library key is (digest, six names, one byte string), tuples and sets included."""
    plain = request_key(DIGEST, ADMIN, "read", ROUTER, {"channel": "portal"})
    assert plain is not None and len(plain) == 8
    with_tuple = Principal("u-1", "acme", ("customer-admin",), {"tenants": ("acme",)})
    tupled = request_key(DIGEST, with_tuple, "read", ROUTER, None)
    assert tupled is not None and len(tupled) == 8
    assert keyed_request(plain) is not None and keyed_request(tupled) is not None


@pytest.mark.parametrize(
    "value",
    [b"x", bytearray(b"x"), memoryview(b"x"), {"k": [b"x"]}, {"k": (b"x",)}, {b"k": 1}],
)
def test_keys_holding_byte_buffers_are_never_stored(value: Any) -> None:
    """marshal writes every byte buffer alike, so such keys are refused on the way in."""
    principal = Principal("u-1", "acme", ("customer-admin",), {"tag": value})
    key = request_key(DIGEST, principal, "read", ROUTER, None)
    assert key is not None and keyed_request(key) is None


@pytest.mark.parametrize(
    "value",
    [
        ...,
        StopIteration,
        frozenset({b"x"}),
        memoryview(b"abcd")[::2],  # not contiguous: marshal cannot write it
        complex(1, 2),
        (lambda: b"x").__code__,
    ],
    ids=[
        "ellipsis",
        "stopiteration",
        "bytes-in-frozenset",
        "strided-memoryview",
        "complex",
        "code",
    ],
)
def test_values_outside_the_plain_data_whitelist_are_never_stored(value: Any) -> None:
    """Only None, booleans, numbers, strings and containers of them are stored; anything else
    (singletons, buffers, code...) is refused without an error, and evaluated."""
    principal = Principal("u-1", "acme", ("customer-admin",), {"tag": value})
    key = request_key(DIGEST, principal, "read", ROUTER, None)
    assert key is None or keyed_request(key) is None


@pytest.mark.parametrize("where", ["attribute", "nested", "tuple", "context"])
def test_a_nan_is_never_stored(where: str) -> None:
    """Conditions compare containers with ==, which counts one NaN object as equal to itself
    and two as different: the same bits can get two answers, so no NaN key is stored."""
    nan = math.nan
    cases: dict[str, dict[str, Any]] = {
        "attribute": {"x": nan},
        "nested": {"x": [{"y": nan}]},
        "tuple": {"x": (nan,)},
        "context": {},
    }
    principal = Principal("u-1", "acme", ("customer-admin",), cases[where])
    context = {"x": nan} if where == "context" else None
    key = request_key(DIGEST, principal, "read", ROUTER, context)
    assert key is not None and keyed_request(key) is None
    finite = request_key(DIGEST, ADMIN, "read", ROUTER, {"x": 0.1})
    assert finite is not None and keyed_request(finite) is not None


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
    """A request far past the store's key bound is keyed, and the next key is unaffected."""
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
    """Threads keying different requests at once each get their own request's key; half of
    them hold a tuple."""
    variants = [
        (
            Principal(
                f"u-{n}", "acme", ("customer-admin",), {"n": n, **({"t": (n,)} if n % 2 else {})}
            ),
            "read",
        )
        for n in range(8)
    ]
    expected = [request_key(DIGEST, *v, ROUTER, None) for v in variants]
    assert sorted(len(key or ()) for key in expected) == [8] * 8
    failures: list[int] = []

    def work(index: int) -> None:
        for _ in range(1000):
            if request_key(DIGEST, *variants[index], ROUTER, None) != expected[index]:
                failures.append(index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(variants))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_marshal_format_2_writes_shared_and_interned_values_like_fresh_ones() -> None:
    """The library behaviour the key relies on: format 2 has no back-references and no
    interned-string marker, so sharing and interning never change a request's key."""
    fresh = "".join(["customer-", "admin"])
    interned = sys.intern("customer-admin")
    shared = {"a": 1}
    first = Principal("u-1", "acme", (fresh,), {"x": shared, "y": shared})
    second = Principal("u-1", "acme", (interned,), {"x": {"a": 1}, "y": {"a": 1}})
    assert request_key(DIGEST, first, "read", ROUTER, None) == request_key(
        DIGEST, second, "read", ROUTER, None
    )
