"""CachedEngine: hits, keys, versions, expiry, bounds, counters and thread safety."""

from __future__ import annotations

import array
import copy
import functools
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cnm_policy import Decision, Engine, InvalidRequestError, Principal, Resource
from cnm_policy.cache import DEFAULT_MAXSIZE, CachedEngine, CacheStats
from cnm_policy.cache import batches as batch_module
from cnm_policy.cache import cached_engine as cache_module
from cnm_policy.cache.keys import batch_keys, keyed_request, request_key
from cnm_policy.cache.store import FifoStore
from cnm_policy.engine import PolicySnapshot, decide_batch, load_snapshot
from cnm_policy.model import AccessRequest
from tests.strategies_cache import NOW, FakeClock, LookAlikeStr, Opaque

ADMIN = Principal("u-1", "acme", ("customer-admin",), {"mfa": True})
NOC = Principal("n-1", "provider/noc", ("noc-engineer",), {"mfa": True})
ROUTER = Resource("device", "dev-1", "acme/emea")
NOC_DEVICE = Resource("device", "pe-1", "globex")
WINDOW = {"maintenance_window": {"start": NOW + 100, "end": NOW + 200}}


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand."""
    return FakeClock(NOW)


@pytest.fixture
def snapshot(default_bundle: Path) -> PolicySnapshot:
    """The default bundle, compiled."""
    return load_snapshot(default_bundle)


@pytest.fixture
def cached(snapshot: PolicySnapshot, clock: FakeClock) -> CachedEngine:
    """A cache with default bounds around an engine on the default bundle."""
    return CachedEngine(Engine(snapshot, clock=clock))


@pytest.fixture
def other_version(default_bundle: Path, tmp_path: Path) -> PolicySnapshot:
    """The default bundle with a new version number and customer reads removed."""
    target = tmp_path / "v2"
    for source in default_bundle.rglob("*.yaml"):
        path = target / source.relative_to(default_bundle)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    manifest = target / "bundle.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace('"1.0.0"', '"2.0.0"'), encoding="utf-8"
    )
    customer = target / "rules" / "customer.yaml"
    customer.write_text(
        customer.read_text(encoding="utf-8").replace(
            "resources: [device, interface, circuit, service, metrics]\n    actions: [read]",
            "resources: [metrics]\n    actions: [read]",
        ),
        encoding="utf-8",
    )
    return load_snapshot(target)


def fresh(
    cached: CachedEngine,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any] | None = None,
) -> Decision:
    """What an uncached evaluation says right now, on the snapshot serving now."""
    return decide_batch(cached.snapshot, principal, ((action, resource),), context, cached.clock())[
        0
    ]


def test_a_repeated_check_is_served_from_the_cache(cached: CachedEngine) -> None:
    """The first answer is evaluated, the second is the same decision marked cached."""
    first = cached.check(ADMIN, "read", ROUTER)
    second = cached.check(ADMIN, "read", ROUTER)
    assert (first.cached, second.cached) == (False, True)
    assert replace(second, cached=False) == first
    assert (cached.stats().hits, cached.stats().misses, cached.stats().size) == (1, 1, 1)


def test_stats_report_configuration_and_counters(snapshot: PolicySnapshot) -> None:
    """stats() is a frozen snapshot of hits, misses, evictions, size and the configuration."""
    cached = CachedEngine(Engine(snapshot), maxsize=10, ttl=5.0)
    cached.check(ADMIN, "read", ROUTER)
    stats = cached.stats()
    assert CacheStats(hits=0, misses=1, evictions=0, size=1, maxsize=10, ttl=5.0) == stats
    assert stats.enabled
    with pytest.raises(AttributeError):
        stats.hits = 3  # type: ignore[misc]


VARIANTS: dict[str, tuple[Principal, str, Resource, dict[str, Any] | None]] = {
    "principal id": (replace(ADMIN, id="u-2"), "read", ROUTER, None),
    "principal tenant": (replace(ADMIN, tenant="globex"), "read", ROUTER, None),
    "principal roles": (replace(ADMIN, roles=("customer-billing",)), "read", ROUTER, None),
    "principal attributes": (replace(ADMIN, attributes={"mfa": False}), "read", ROUTER, None),
    "action": (ADMIN, "configure", ROUTER, None),
    "resource kind": (ADMIN, "read", replace(ROUTER, kind="invoice"), None),
    "resource id": (ADMIN, "read", replace(ROUTER, id="dev-2"), None),
    "resource tenant": (ADMIN, "read", replace(ROUTER, tenant="globex"), None),
    "resource attributes": (ADMIN, "read", replace(ROUTER, attributes={"shared": True}), None),
    "context": (ADMIN, "read", ROUTER, {"channel": "api"}),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_input_is_part_of_the_key(cached: CachedEngine, name: str) -> None:
    """Changing any single input after caching a decision is a miss, answered afresh."""
    cached.check(ADMIN, "read", ROUTER)
    principal, action, resource, context = VARIANTS[name]
    decision = cached.check(principal, action, resource, context)
    assert not decision.cached
    assert fresh(cached, principal, action, resource, context) == decision
    assert cached.stats().size == 2


def test_one_tenants_decision_never_answers_another(cached: CachedEngine) -> None:
    """acme's allowed read, cached, does not let globex read the same resource id."""
    assert cached.check(ADMIN, "read", ROUTER).allowed
    intruder = replace(ADMIN, tenant="globex")
    assert not cached.check(intruder, "read", ROUTER).allowed
    assert not cached.check(intruder, "read", ROUTER).allowed


@pytest.mark.parametrize("seed", [True, 1, 1.0, "true", [True], {"v": True}])
def test_confusable_attribute_values_get_their_own_answers(cached: CachedEngine, seed: Any) -> None:
    """Only the boolean true enables configure, whichever confusable value was cached first."""
    window = dict(WINDOW)

    def configure(mfa: Any) -> Decision:
        return cached.check(replace(ADMIN, attributes={"mfa": mfa}), "configure", ROUTER, window)

    configure(seed)
    for value in (True, 1, 1.0, "true", [True], {"v": True}, False, 0, None):
        assert (value is True) == configure(value).allowed


def test_int_and_float_of_equal_value_get_the_same_answer(cached: CachedEngine) -> None:
    """1 and 1.0 are the same number to the engine, whether or not they share an entry."""
    first = cached.check(ADMIN, "read", replace(ROUTER, attributes={"shared": 1}))
    second = cached.check(ADMIN, "read", replace(ROUTER, attributes={"shared": 1.0}))
    assert replace(first, cached=False) == replace(second, cached=False)


def test_none_and_empty_context_share_an_entry(cached: CachedEngine) -> None:
    """`context=None` means an empty context, so either one hits the other's entry."""
    cached.check(ADMIN, "read", ROUTER, None)
    assert cached.check(ADMIN, "read", ROUTER, {}).cached


@pytest.mark.parametrize(
    "principal",
    [
        replace(ADMIN, attributes={"mfa": Opaque("true")}),
        replace(ADMIN, attributes={"tags": {"a", "b"}}),
        replace(ADMIN, tenant=LookAlikeStr("acme")),
        replace(ADMIN, roles=["customer-admin"]),  # type: ignore[arg-type]
    ],
    ids=["object", "set", "str-subclass", "list-roles"],
)
def test_values_that_are_not_plain_data_are_answered_correctly(
    cached: CachedEngine, principal: Principal
) -> None:
    """Look-alike or exotic values are evaluated every time (or keyed exactly), never confused."""
    for _ in range(2):
        decision = cached.check(principal, "read", ROUTER)
        assert fresh(cached, principal, "read", ROUTER) == replace(decision, cached=False)
    assert not cached.check(ADMIN, "read", ROUTER).cached  # nothing answered for plain ADMIN


@pytest.mark.parametrize(
    "request_",
    [
        (replace(ADMIN, id=LookAlikeStr("u-1")), "read", ROUTER),
        (replace(ADMIN, tenant=LookAlikeStr("acme")), "read", ROUTER),
        (ADMIN, LookAlikeStr("read"), ROUTER),
        (ADMIN, "read", replace(ROUTER, kind=LookAlikeStr("device"))),
        (ADMIN, "read", replace(ROUTER, id=LookAlikeStr("dev-1"))),
        (ADMIN, "read", replace(ROUTER, tenant=LookAlikeStr("acme/emea"))),
    ],
    ids=["principal-id", "principal-tenant", "action", "kind", "resource-id", "resource-tenant"],
)
def test_a_name_that_is_not_an_exact_string_is_never_a_key(request_: Any) -> None:
    """A str subclass could behave unlike the string it equals, so neither encoding takes one
    (the fallback keeps names as they are, where it could compare equal to a cached name)."""
    principal, action, resource = request_
    assert request_key("sha256:x", principal, action, resource, None) is None
    assert request_key("sha256:x", ADMIN, "read", ROUTER, None) is not None


class _Bytes(bytes):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = bytes.__hash__


@pytest.mark.parametrize(
    "value",
    [
        b"x",
        bytearray(b"x"),
        memoryview(b"x"),
        array.array("B", b"x"),
        _Bytes(b"x"),
        [{"nested": (b"x",)}],
        {memoryview(b"k"): 1},
    ],
    ids=["bytes", "bytearray", "memoryview", "array", "bytes-subclass", "nested", "dict-key"],
)
def test_requests_holding_bytes_like_values_are_never_stored(
    cached: CachedEngine, value: Any
) -> None:
    """Both encodings write every byte buffer as plain bytes, so such keys are not exact: they
    are answered afresh every time and never stored, so no buffer can answer for another."""
    principal = replace(ADMIN, attributes={"mfa": True, "tag": value})
    for _ in range(2):
        decision = cached.check(principal, "read", ROUTER)
        assert not decision.cached
        assert fresh(cached, principal, "read", ROUTER) == decision
        cached.check_batch(principal, [("read", ROUTER)])
    assert cached.stats().size == 0


def test_invalid_requests_raise_every_time_and_are_never_stored(cached: CachedEngine) -> None:
    """A malformed request raises the engine's error on every call and leaves no entry."""
    bad = replace(ROUTER, tenant="acme//emea")
    for _ in range(2):
        with pytest.raises(InvalidRequestError) as error:
            cached.check(ADMIN, "read", bad)
        assert error.value.field == "resource.tenant"
    assert (cached.stats().size, cached.stats().hits, cached.stats().misses) == (0, 0, 0)


def test_a_look_alike_principal_is_rejected_not_served(cached: CachedEngine) -> None:
    """A Principal look-alike gets the engine's error even when the real one is cached."""

    class Fake:
        id, tenant, roles, attributes = ADMIN.id, ADMIN.tenant, ADMIN.roles, ADMIN.attributes

    cached.check(ADMIN, "read", ROUTER)
    with pytest.raises(InvalidRequestError):
        cached.check(Fake(), "read", ROUTER)  # type: ignore[arg-type]


def test_explain_bypasses_the_cache(cached: CachedEngine) -> None:
    """Explain requests return a fresh trace and neither read nor fill the cache."""
    cached.check(ADMIN, "read", ROUTER)
    explained = cached.check(ADMIN, "read", ROUTER, explain=True)
    assert not explained.cached
    assert explained.trace
    assert (cached.stats().size, cached.stats().hits) == (1, 0)
    assert not cached.check(NOC, "read", ROUTER, explain=True).cached
    assert cached.stats().size == 1


def test_swap_serves_the_new_version_and_drops_old_entries(
    cached: CachedEngine, other_version: PolicySnapshot
) -> None:
    """After a swap the cached allow of version 1 is gone; version 2's deny is answered."""
    assert cached.check(ADMIN, "read", ROUTER).allowed
    cached.swap(other_version)
    decision = cached.check(ADMIN, "read", ROUTER)
    assert (False, False, other_version.digest) == (
        decision.allowed,
        decision.cached,
        decision.policy_digest,
    )
    assert cached.stats().size == 1


def test_a_swap_behind_the_caches_back_is_still_respected(
    cached: CachedEngine, other_version: PolicySnapshot
) -> None:
    """Swapping the engine directly cannot make the cache answer with the old version."""
    assert cached.check(ADMIN, "read", ROUTER).allowed
    cached.engine.swap(other_version)
    decision = cached.check(ADMIN, "read", ROUTER)
    assert (False, other_version.digest) == (decision.allowed, decision.policy_digest)


def test_swapping_back_answers_with_the_original_version(
    cached: CachedEngine, snapshot: PolicySnapshot, other_version: PolicySnapshot
) -> None:
    """A -> B -> A: decisions carry A's digest again and match A's answers."""
    cached.check(ADMIN, "read", ROUTER)
    cached.swap(other_version)
    assert not cached.check(ADMIN, "read", ROUTER).allowed
    cached.swap(snapshot)
    decision = cached.check(ADMIN, "read", ROUTER)
    assert (True, snapshot.digest) == (decision.allowed, decision.policy_digest)


def test_swap_returns_the_replaced_snapshot(
    cached: CachedEngine, snapshot: PolicySnapshot, other_version: PolicySnapshot
) -> None:
    """swap() hands back the version it replaced, like Engine.swap."""
    assert snapshot is cached.swap(other_version)
    assert other_version is cached.snapshot


def test_a_window_decision_expires_at_the_window_end(
    cached: CachedEngine, clock: FakeClock
) -> None:
    """A reboot allowed inside the window is cached only until the window closes."""
    clock.now = NOW + 150
    allowed = cached.check(ADMIN, "reboot", ROUTER, WINDOW)
    assert (allowed.allowed, allowed.valid_until) == (True, NOW + 200)
    clock.now = NOW + 199.5
    assert cached.check(ADMIN, "reboot", ROUTER, WINDOW).cached
    clock.now = NOW + 200
    after = cached.check(ADMIN, "reboot", ROUTER, WINDOW)
    assert (after.allowed, after.cached) == (False, False)
    assert cached.stats().evictions == 1


def test_a_deny_before_the_window_expires_when_it_opens(
    cached: CachedEngine, clock: FakeClock
) -> None:
    """A reboot denied before the window is not served from the cache once it opens."""
    assert not cached.check(ADMIN, "reboot", ROUTER, WINDOW).allowed
    clock.now = NOW + 100
    opened = cached.check(ADMIN, "reboot", ROUTER, WINDOW)
    assert (opened.allowed, opened.cached) == (True, False)


def test_entries_expire_after_the_ttl(snapshot: PolicySnapshot, clock: FakeClock) -> None:
    """A decision is reused for `ttl` seconds, then evaluated again (counted as an eviction)."""
    cached = CachedEngine(Engine(snapshot, clock=clock), ttl=10.0)
    cached.check(ADMIN, "read", ROUTER)
    clock.now = NOW + 9.9
    assert cached.check(ADMIN, "read", ROUTER).cached
    clock.now = NOW + 10
    assert not cached.check(ADMIN, "read", ROUTER).cached
    assert CacheStats(1, 2, 1, 1, DEFAULT_MAXSIZE, 10.0) == cached.stats()


def test_a_clock_set_back_makes_younger_entries_misses(
    cached: CachedEngine, clock: FakeClock
) -> None:
    """After the clock goes back before the window, the in-window allow is not reused."""
    clock.now = NOW + 150
    assert cached.check(ADMIN, "reboot", ROUTER, WINDOW).allowed
    clock.now = NOW
    decision = cached.check(ADMIN, "reboot", ROUTER, WINDOW)
    assert (decision.allowed, decision.cached) == (False, False)


def test_the_clock_defaults_to_the_engines(snapshot: PolicySnapshot, clock: FakeClock) -> None:
    """Without a clock argument the cache reads the engine's clock; with one, its own."""
    engine = Engine(snapshot, clock=clock)
    assert clock is CachedEngine(engine).clock
    other = FakeClock(NOW + 150)
    own = CachedEngine(engine, clock=other)
    assert own.check(ADMIN, "reboot", ROUTER, WINDOW).allowed  # evaluated at NOW + 150


def test_size_is_bounded_by_maxsize(snapshot: PolicySnapshot) -> None:
    """A stream of unique requests keeps at most maxsize entries and counts evictions."""
    cached = CachedEngine(Engine(snapshot), maxsize=5)
    for index in range(12):
        cached.check(ADMIN, "read", replace(ROUTER, id=f"dev-{index}"))
    stats = cached.stats()
    assert (stats.size, stats.evictions, stats.misses) == (5, 7, 12)


def test_the_oldest_entries_go_first(snapshot: PolicySnapshot) -> None:
    """When full, the entry stored first is evicted (reads do not reorder: see the module)."""
    cached = CachedEngine(Engine(snapshot), maxsize=2)
    first, second, third = (replace(ROUTER, id=name) for name in ("first", "second", "third"))
    cached.check(ADMIN, "read", first)
    cached.check(ADMIN, "read", second)
    cached.check(ADMIN, "read", first)  # a hit, which does not make it younger
    cached.check(ADMIN, "read", third)
    assert cached.stats().evictions == 1
    assert cached.check(ADMIN, "read", second).cached
    assert not cached.check(ADMIN, "read", first).cached


def test_huge_requests_are_answered_but_not_stored(snapshot: PolicySnapshot) -> None:
    """A request whose key exceeds max_key_bytes is evaluated, so memory stays bounded."""
    cached = CachedEngine(Engine(snapshot), max_key_bytes=256)
    big = replace(ROUTER, attributes={"notes": "x" * 300})
    assert cached.check(ADMIN, "read", big).allowed
    assert not cached.check(ADMIN, "read", big).cached
    assert cached.stats().size == 0


@pytest.mark.parametrize(
    "request_",
    [
        (replace(ADMIN, id="u" * 257), "read", ROUTER),
        (ADMIN, "r" * 257, ROUTER),
        (ADMIN, "read", replace(ROUTER, id="d" * 257)),
        (ADMIN, "read", replace(ROUTER, kind="k" * 257)),
    ],
)
def test_names_too_long_to_count_are_refused_before_storing(
    snapshot: PolicySnapshot, request_: tuple[Principal, str, Resource]
) -> None:
    """The key bound counts no names: the engine refuses a name past 256 characters first."""
    cached = CachedEngine(Engine(snapshot))
    with pytest.raises(InvalidRequestError):
        cached.check(*request_)
    assert cached.stats().size == 0


@pytest.mark.parametrize("options", [{"maxsize": 0}, {"enabled": False}])
def test_a_disabled_cache_passes_through_and_counts(
    snapshot: PolicySnapshot, options: dict[str, Any]
) -> None:
    """maxsize=0 or enabled=False evaluates every check and still counts it as a miss."""
    cached = CachedEngine(Engine(snapshot), **options)
    for _ in range(3):
        assert not cached.check(ADMIN, "read", ROUTER).cached
    assert CacheStats(0, 3, 0, 0, 0, 60.0) == cached.stats()
    assert not cached.stats().enabled


@pytest.mark.parametrize(
    "options", [{"maxsize": -1}, {"maxsize": 1.5}, {"ttl": 0}, {"ttl": -1.0}, {"ttl": float("nan")}]
)
def test_nonsense_configuration_is_refused(
    snapshot: PolicySnapshot, options: dict[str, Any]
) -> None:
    """A negative or fractional size, or a TTL that is not positive, is a ValueError."""
    with pytest.raises(ValueError, match=r"maxsize|ttl"):
        CachedEngine(Engine(snapshot), **options)


def test_clear_empties_the_cache_but_keeps_counting(cached: CachedEngine) -> None:
    """After clear() the next check is a miss; counters are cumulative."""
    cached.check(ADMIN, "read", ROUTER)
    cached.check(ADMIN, "read", ROUTER)
    cached.clear()
    assert not cached.check(ADMIN, "read", ROUTER).cached
    assert CacheStats(1, 2, 0, 1, DEFAULT_MAXSIZE, 60.0) == cached.stats()


def test_equal_decisions_share_one_object(cached: CachedEngine) -> None:
    """Entries with the same decision point at one shared object (memory under many keys)."""
    cached.check(ADMIN, "read", ROUTER)
    cached.check(ADMIN, "read", replace(ROUTER, id="dev-2"))
    assert cached.check(ADMIN, "read", ROUTER) is cached.check(
        ADMIN, "read", replace(ROUTER, id="dev-2")
    )


def test_reading_the_counters_does_not_change_them(cached: CachedEngine) -> None:
    """Single-check hits are counted without a lock; reading them, again and again, is exact."""
    cached.check(ADMIN, "read", ROUTER)
    for _ in range(3):
        cached.check(ADMIN, "read", ROUTER)
    assert [cached.stats().hits for _ in range(3)] == [3, 3, 3]
    cached.check(ADMIN, "read", ROUTER)
    cached.check_batch(ADMIN, [("read", ROUTER)])
    assert (cached.stats().hits, cached.stats().misses) == (5, 1)


def test_an_expired_entry_is_dropped_only_if_it_is_still_the_one_stored() -> None:
    """A hit path that read an expired entry without the lock must not drop its replacement
    (stored by another thread meanwhile), nor count an eviction for it."""
    store: FifoStore[Any, Any] = FifoStore(4)
    key = ("sha256:x", b"", b"req")
    expired: Any = (None, 0.0, 10.0)
    replacement: Any = (None, 20.0, 80.0)
    store.put(key, replacement)
    store.discard(key, expired)
    assert (store.get(key), store.evictions) == (replacement, 0)
    store.put(key, expired)
    store.discard(key, expired)
    assert (store.get(key), store.evictions) == (None, 1)


def test_check_request_is_check(cached: CachedEngine) -> None:
    """check_request unpacks an AccessRequest and shares the cache with check."""
    cached.check(ADMIN, "read", ROUTER, {"channel": "portal"})
    decision = cached.check_request(AccessRequest(ADMIN, "read", ROUTER, {"channel": "portal"}))
    assert decision.cached


def test_batch_answers_in_order_and_shares_entries_with_check(cached: CachedEngine) -> None:
    """A batch mixes hits and misses in request order; its entries serve later single checks."""
    items = [("read", ROUTER), ("configure", ROUTER), ("read", replace(ROUTER, tenant="globex"))]
    cached.check(ADMIN, *items[1])
    decisions = cached.check_batch(ADMIN, items)
    expected = decide_batch(cached.snapshot, ADMIN, items, None, NOW)
    assert expected == [replace(d, cached=False) for d in decisions]
    assert [d.cached for d in decisions] == [False, True, False]
    assert all(cached.check(ADMIN, action, resource).cached for action, resource in items)
    assert (cached.stats().hits, cached.stats().misses) == (4, 3)


def test_batch_with_an_invalid_item_raises_like_the_engine(cached: CachedEngine) -> None:
    """One malformed item fails the batch with the engine's error; nothing is stored or counted."""
    cached.check(ADMIN, "read", ROUTER)
    items = [("read", ROUTER), ("read", replace(ROUTER, kind="")), ("read", NOC_DEVICE)]
    with pytest.raises(InvalidRequestError) as error:
        cached.check_batch(ADMIN, items)
    assert error.value.field == "resource.kind"
    assert CacheStats(0, 1, 0, 1, DEFAULT_MAXSIZE, 60.0) == cached.stats()


def test_an_empty_batch_still_validates_the_principal(cached: CachedEngine) -> None:
    """No items: an empty answer for a valid principal, the engine's error for an invalid one."""
    assert cached.check_batch(ADMIN, []) == []
    with pytest.raises(InvalidRequestError):
        cached.check_batch(replace(ADMIN, tenant=""), [])


def test_batch_accepts_any_iterable_of_items(cached: CachedEngine) -> None:
    """A generator of items works like a list."""
    decisions = cached.check_batch(ADMIN, (item for item in [("read", ROUTER)]))  # type: ignore[arg-type]
    assert [d.allowed for d in decisions] == [True]


def test_batch_explain_bypasses_the_cache(cached: CachedEngine) -> None:
    """Explained batches carry traces and leave the cache empty."""
    decisions = cached.check_batch(ADMIN, [("read", ROUTER)], explain=True)
    assert decisions[0].trace
    assert cached.stats().size == 0


def assert_entries_answer_for_their_keys(cached: CachedEngine) -> None:
    """Every stored library entry is the engine's decision on exactly what its key encodes."""
    assert cached._store is not None
    for key, (decision, stored_at, _) in cached._store.items():
        rebuilt = keyed_request(key)
        assert rebuilt is not None
        principal, action, resource, context, actor = rebuilt
        expected = decide_batch(
            cached.snapshot, principal, [(action, resource)], context, stored_at, actor=actor
        )
        assert expected == [replace(decision, cached=False)]


@pytest.mark.parametrize("way", ["check", "check_batch"])
@pytest.mark.parametrize("where", ["principal attributes", "resource attributes", "context"])
def test_facts_changed_while_a_check_is_decided_never_poison_the_cache(
    cached: CachedEngine, monkeypatch: pytest.MonkeyPatch, where: str, way: str
) -> None:
    """Another thread changes a dict of the request after it was keyed, before it is evaluated
    (MFA set, a change freeze lifted, a maintenance window dropped): every stored entry is
    still the engine's answer for the facts the check was asked with."""
    principal_attributes: dict[str, Any] = {"mfa": True}
    resource_attributes: dict[str, Any] = {}
    context: dict[str, Any] = {}
    action = "configure"
    change: Callable[[], None]
    if where == "principal attributes":
        principal_attributes["mfa"] = False
        change = functools.partial(principal_attributes.update, mfa=True)
    elif where == "resource attributes":
        resource_attributes["change_freeze"] = True
        change = functools.partial(resource_attributes.update, change_freeze=False)
    else:
        action = "reboot"
        context["maintenance_window"] = {"start": NOW - 10, "end": NOW + 100}
        change = context.clear
    principal = Principal("u-1", "acme", ("customer-admin",), principal_attributes)
    resource = Resource("device", "dev-1", "acme/emea", resource_attributes)
    asked = copy.deepcopy((principal, action, resource, context))

    def racing(*args: Any, **kwargs: Any) -> list[Decision]:
        change()
        return decide_batch(*args, **kwargs)

    monkeypatch.setattr(cache_module, "decide_batch", racing)
    monkeypatch.setattr(batch_module, "decide_batch", racing)
    if way == "check":
        cached.check(principal, action, resource, context)
    else:
        second = Resource("device", "dev-2", "acme", resource_attributes)
        cached.check_batch(principal, [(action, resource), (action, second)], context)
    monkeypatch.undo()
    changed = fresh(cached, principal, action, resource, context)
    assert fresh(cached, *asked).allowed != changed.allowed  # the change matters
    again = cached.check(*asked)
    assert again.cached
    assert replace(again, cached=False) == fresh(cached, *asked)
    assert_entries_answer_for_their_keys(cached)


def test_a_principal_changed_while_a_batch_is_keyed_stores_only_what_was_decided(
    cached: CachedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MFA is set between the keys of two batch items: the batch is decided for the facts of
    its first item, and the second item's (MFA) key is left empty rather than given a
    decision made without MFA."""
    attributes = {"mfa": False}
    shared = Principal("u-1", "acme", ("customer-admin",), attributes)
    other = Resource("device", "dev-2", "acme")
    real = batch_keys

    def racing(
        digest: str, principal: Principal, items: Any, context: Any, actor: Any = None
    ) -> list[Any]:
        keys = real(digest, principal, items[:1], context, actor)
        attributes["mfa"] = True
        return keys + real(digest, principal, items[1:], context, actor)

    monkeypatch.setattr(batch_module, "batch_keys", racing)
    decisions = cached.check_batch(shared, [("configure", ROUTER), ("configure", other)])
    monkeypatch.undo()
    assert [decision.allowed for decision in decisions] == [False, False]
    assert cached.stats().size == 1
    assert_entries_answer_for_their_keys(cached)
    with_mfa = Principal("u-1", "acme", ("customer-admin",), {"mfa": True})
    answer = cached.check(with_mfa, "configure", other)
    assert not answer.cached and answer.allowed


def test_concurrent_checks_and_swaps_stay_consistent(
    snapshot: PolicySnapshot, other_version: PolicySnapshot
) -> None:
    """Threads checking while another swaps versions always get a valid answer of one version."""
    cached = CachedEngine(Engine(snapshot, clock=lambda: NOW), maxsize=16)
    requests = [(ADMIN, "read", replace(ROUTER, id=f"dev-{i % 24}")) for i in range(400)]
    answers = {
        version.digest: decide_batch(version, ADMIN, [("read", ROUTER)], None, NOW)[0]
        for version in (snapshot, other_version)
    }
    failures: list[str] = []
    done = threading.Event()

    def worker() -> None:
        for principal, action, resource in requests:
            decision = cached.check(principal, action, resource)
            expected = answers.get(decision.policy_digest)
            if expected is None or expected.allowed != decision.allowed:
                failures.append(repr(decision))

    def swapper() -> None:
        versions = (other_version, snapshot)
        index = 0
        while not done.is_set():
            cached.swap(versions[index % 2])
            index += 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    swapping = threading.Thread(target=swapper)
    swapping.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    swapping.join()
    stats = cached.stats()
    assert failures == []
    assert 4 * len(requests) == stats.hits + stats.misses
    assert stats.size <= 16


# --- caller fingerprints (the sidecar's request bytes) -------------------------------------


def test_a_repeated_fingerprint_is_served_from_the_cache(cached: CachedEngine) -> None:
    """check_fingerprinted answers like check, and the same fingerprint hits."""
    first = cached.check_fingerprinted(b"req-1", ADMIN, "read", ROUTER)
    second = cached.check_fingerprinted(b"req-1", ADMIN, "read", ROUTER)
    assert (first.allowed, first.cached, second.cached) == (True, False, True)
    assert replace(second, cached=False) == first
    assert (cached.stats().hits, cached.stats().misses) == (1, 1)


def test_fingerprint_keys_and_library_keys_never_answer_each_other(cached: CachedEngine) -> None:
    """Even a fingerprint equal to a library key's own bytes is a key of another shape: an
    entry of one kind never answers the other (here all three ask about one request)."""
    cached.check(ADMIN, "read", ROUTER)
    library_key = request_key(cached.snapshot.digest, ADMIN, "read", ROUTER, None)
    assert library_key is not None
    same_bytes = library_key[-1]
    assert not cached.check_fingerprinted(same_bytes, ADMIN, "read", ROUTER).cached
    batch = cached.check_batch_fingerprinted(same_bytes, [same_bytes], ADMIN, [("read", ROUTER)])
    assert not batch[0].cached
    assert cached.stats().size == 3


def test_fingerprinted_batches_share_entries_per_shared_part_and_item(
    cached: CachedEngine,
) -> None:
    """Batch items hit by (shared, item) fingerprint, in any batch, in order."""
    items = [("read", ROUTER), ("configure", ROUTER)]
    cached.check_batch_fingerprinted(b"p1", [b"a", b"b"], ADMIN, items)
    again = cached.check_batch_fingerprinted(b"p1", [b"b", b"a"], ADMIN, items[::-1])
    other = cached.check_batch_fingerprinted(b"p2", [b"a"], ADMIN, items[:1])
    assert [d.cached for d in again] == [True, True]
    assert [d.allowed for d in again] == [
        d.allowed for d in cached.engine.check_batch(ADMIN, items[::-1])
    ]
    assert not other[0].cached


def test_fingerprint_arguments_are_checked(cached: CachedEngine) -> None:
    """A count mismatch or an empty shared part is a caller bug, refused before deciding."""
    with pytest.raises(ValueError, match="2 fingerprints for 1 items"):
        cached.check_batch_fingerprinted(b"p", [b"a", b"b"], ADMIN, [("read", ROUTER)])
    with pytest.raises(ValueError, match="must not be empty"):
        cached.check_batch_fingerprinted(b"", [b"a"], ADMIN, [("read", ROUTER)])
    assert cached.stats().misses == 0


def test_a_fingerprint_that_is_not_bytes_is_answered_but_not_stored(
    cached: CachedEngine,
) -> None:
    """Only exact bytes key the cache; anything else is evaluated every time."""
    for _ in range(2):
        decision = cached.check_fingerprinted("req-1", ADMIN, "read", ROUTER)  # type: ignore[arg-type]
        assert (decision.allowed, decision.cached) == (True, False)
    assert cached.stats().size == 0


def test_huge_fingerprints_are_answered_but_not_stored(snapshot: PolicySnapshot) -> None:
    """The max_key_bytes bound covers fingerprints, shared part included."""
    cached = CachedEngine(Engine(snapshot), max_key_bytes=10)
    cached.check_fingerprinted(b"x" * 11, ADMIN, "read", ROUTER)
    cached.check_batch_fingerprinted(b"x" * 6, [b"y" * 5], ADMIN, [("read", ROUTER)])
    cached.check_batch_fingerprinted(b"x" * 5, [b"y" * 5], ADMIN, [("read", ROUTER)])
    assert cached.stats().size == 1


def test_the_serving_version_is_read_through_the_engines_public_snapshot(
    snapshot: PolicySnapshot, other_version: PolicySnapshot
) -> None:
    """The cache asks the engine's `snapshot` property, never its private attribute: an engine
    that serves another version through the property is obeyed, single checks and batches."""

    class Redirected(Engine):
        @property
        def snapshot(self) -> PolicySnapshot:
            return other_version

    cached = CachedEngine(Redirected(snapshot))
    assert cached.check(ADMIN, "read", ROUTER).policy_digest == other_version.digest
    batch = cached.check_batch(ADMIN, [("read", ROUTER)])
    assert [d.policy_digest for d in batch] == [other_version.digest]
