"""Cached equals uncached: interleaved checks, policy swaps and clock moves, checked step by step.

The oracle is a fresh, uncached `decide_batch` on the snapshot serving now, at the time the
fake clock shows now. The cache may answer from memory or not, but never differently.
Checks go through the library keys and through caller-supplied fingerprints (an exact pickle
encoding, as the sidecar passes protobuf bytes) against the same cache. A caller's attribute
dicts may also change while their check is being decided, as another thread could change them.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from cnm_policy import Decision, Engine, InvalidRequestError, Principal, Resource
from cnm_policy.cache import CachedEngine
from cnm_policy.cache.keys import keyed_request
from cnm_policy.engine import PolicySnapshot, decide_batch
from tests.strategies import snapshot_of
from tests.strategies_cache import (
    ANCHOR_RULES,
    NOW,
    FakeClock,
    Request,
    Tweak,
    anchor_requests,
    cache_actions,
    cache_contexts,
    cache_principals,
    cache_requests,
    cache_resources,
    clock_steps,
    policy_versions,
    tweak,
    tweaks,
)

_steps = st.one_of(clock_steps, st.none())  # None: back to NOW, where the windows are


def _fresh(
    snapshot: PolicySnapshot,
    principal: Principal,
    items: list[tuple[str, Resource]],
    context: Mapping[str, Any] | None,
    now: float,
    explain: bool = False,
) -> list[Decision] | str:
    """The uncached answer, or the field of the InvalidRequestError it raises."""
    try:
        return decide_batch(snapshot, principal, items, context, now, explain=explain)
    except InvalidRequestError as exc:
        return exc.field


WAYS = ("check", "fingerprinted", "fingerprinted batch")


def _ask(
    cached: CachedEngine,
    way: str,
    principal: Principal,
    action: str,
    resource: Resource,
    context: dict[str, Any] | None = None,
) -> Decision:
    """One check through the library key or through caller fingerprints (exact pickles)."""
    if way == "check":
        return cached.check(principal, action, resource, context)
    if way == "fingerprinted":
        fingerprint = _pickled((principal, action, resource, context))
        return cached.check_fingerprinted(fingerprint, principal, action, resource, context)
    shared, item = _pickled((principal, context)), _pickled((action, resource))
    return cached.check_batch_fingerprinted(
        shared, [item], principal, [(action, resource)], context
    )[0]


class _Pickler(pickle.Pickler):
    """pickle, with a memoryview written as its type and contents (pickle refuses it)."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is memoryview:
            return memoryview, (obj.tobytes(),)
        return NotImplemented


def _pickled(value: Any) -> bytes:
    """An exact fingerprint of `value`: equal pickles are equal requests here."""
    buffer = io.BytesIO()
    _Pickler(buffer).dump(value)
    return buffer.getvalue()


def _uncached(decisions: list[Decision]) -> list[Decision]:
    return [replace(decision, cached=False) for decision in decisions]


class CacheMachine(RuleBasedStateMachine):
    """Drives a small CachedEngine and its oracle through the same history."""

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(NOW)
        self.versions: list[PolicySnapshot] = []
        self.answered = 0

    @initialize(
        versions=policy_versions(),
        maxsize=st.integers(1, 8),
        ttl=st.sampled_from((30.0, float("inf"), 4.0)),
    )
    def build(self, versions: list[PolicySnapshot], maxsize: int, ttl: float) -> None:
        """Serve the first version through a small cache."""
        self.versions = versions
        self.engine = Engine(versions[0], clock=self.clock)
        self.cached = CachedEngine(self.engine, maxsize=maxsize, ttl=ttl)
        self.maxsize = maxsize

    @rule(target=requests, request=cache_requests())
    def new_request(self, request: Request) -> Request:
        """Check a new request, and remember it so later steps repeat it (and hit the cache)."""
        self._check(request, explain=False)
        return request

    @rule(target=requests, request=requests, change=tweaks)
    def near_duplicate(self, request: Request, change: Tweak) -> Request:
        """A request differing in one input from one just cached gets its own answer."""
        variant = tweak(request, change)
        self._check(request, explain=False)
        self._check(variant, explain=False)
        return variant

    @rule(
        request=requests,
        step=st.one_of(st.just(0.0), _steps),
        explain=st.sampled_from((False, False, False, True)),
        fingerprinted=st.booleans(),
    )
    def check(
        self, request: Request, step: float | None, explain: bool, fingerprinted: bool
    ) -> None:
        """After a clock move, a repeated check answers exactly what the engine would now.

        Moving the clock here as well as in `move_clock` keeps "cache, time passes, ask again"
        likely even when hypothesis' swarm testing switches some rules off for a run.
        """
        self.move_clock(step)
        self._check(request, explain, fingerprinted=fingerprinted and not explain)

    def _check(self, request: Request, explain: bool, *, fingerprinted: bool = False) -> None:
        principal, action, resource, context = request
        expected = _fresh(
            self.engine.snapshot, principal, [(action, resource)], context, self.clock(), explain
        )
        actual: list[Decision] | str
        try:
            decision = (
                self.cached.check_fingerprinted(
                    _pickled(request), principal, action, resource, context
                )
                if fingerprinted
                else self.cached.check(principal, action, resource, context, explain=explain)
            )
        except InvalidRequestError as exc:
            actual = exc.field
        else:
            self.answered += 1
            assert self.engine.snapshot.digest == decision.policy_digest
            actual = _uncached([decision])
        assert expected == actual

    @rule(
        principal=cache_principals(),
        context=cache_contexts(),
        picks=st.lists(st.tuples(cache_actions, cache_resources()), max_size=4),
        repeats=st.lists(requests, max_size=4),
        fingerprinted=st.booleans(),
        asker=st.one_of(st.none(), requests),
    )
    def check_batch(
        self,
        principal: Principal,
        context: dict[str, Any] | None,
        picks: list[tuple[str, Resource]],
        repeats: list[Request],
        fingerprinted: bool,
        asker: Request | None,
    ) -> None:
        """A batch (new items and items seen before) answers item by item like the engine,
        asked twice (the second time from the cache, as far as it can).

        `asker`: the principal and context of a request seen before, so that batches repeat
        what they share (and fingerprinted batches can hit).
        """
        if asker is not None:
            principal, context = asker[0], asker[3]
        items = picks + [(action, resource) for _, action, resource, _ in repeats]
        for _ in range(2):
            self._check_batch(principal, items, context, fingerprinted=fingerprinted)

    def _check_batch(
        self,
        principal: Principal,
        items: list[tuple[str, Resource]],
        context: dict[str, Any] | None,
        *,
        fingerprinted: bool,
    ) -> None:
        expected = _fresh(self.engine.snapshot, principal, items, context, self.clock())
        actual: list[Decision] | str
        try:
            decisions = (
                self.cached.check_batch_fingerprinted(
                    _pickled((principal, context)),
                    [_pickled(item) for item in items],
                    principal,
                    items,
                    context,
                )
                if fingerprinted
                else self.cached.check_batch(principal, items, context)
            )
        except InvalidRequestError as exc:
            actual = exc.field
        else:
            self.answered += len(decisions)
            assert {d.policy_digest for d in decisions} <= {self.engine.snapshot.digest}
            actual = _uncached(decisions)
        assert expected == actual

    @rule(request=requests, other=requests, batch=st.booleans())
    def facts_change_while_deciding(self, request: Request, other: Request, batch: bool) -> None:
        """While `request` is being decided (alone, or in a batch with `other`'s item), its
        attribute and context dicts take `other`'s contents (as another thread holding them
        could), and get their own back afterwards.

        Whatever the racing call answers, nothing it stores may answer for facts it was not
        computed from: later checks of both requests (and `entries_answer_for_their_keys`)
        must still agree with the engine.
        """
        principal, action, resource, context = request
        swaps = [
            (mine, theirs)
            for mine, theirs in (
                (principal.attributes, other[0].attributes),
                (resource.attributes, other[2].attributes),
                (context, other[3]),
            )
            if type(mine) is dict and type(theirs) is dict and mine is not theirs
        ]
        saved = [dict(mine) for mine, _ in swaps]

        def racing(*args: Any, **kwargs: Any) -> list[Decision]:
            for mine, theirs in swaps:
                mine.clear()
                mine.update(theirs)
            return decide_batch(*args, **kwargs)

        with mock.patch("cnm_policy.cache.cached_engine.decide_batch", racing):
            try:
                if batch:
                    items = [(action, resource), (other[1], other[2])]
                    self.answered += len(self.cached.check_batch(principal, items, context))
                else:
                    self.cached.check(principal, action, resource, context)
                    self.answered += 1
            except InvalidRequestError:
                pass
        for (mine, _), contents in zip(swaps, saved, strict=True):
            mine.clear()
            mine.update(contents)
        self._check(request, explain=False)
        self._check(other, explain=False)

    @rule(how=st.sampled_from(("cache", "engine", "clear")), index=st.integers(0, 2))
    def change_version(self, how: str, index: int) -> None:
        """Reload through the cache, or behind its back (the key's digest must save us), or
        just drop every entry (which changes nothing but speed)."""
        if how == "clear":
            self.cached.clear()
        else:
            (self.cached if how == "cache" else self.engine).swap(self.versions[index])

    @rule(step=_steps)
    def move_clock(self, step: float | None) -> None:
        """Time passes, or the wall clock is set back (`None`: to the start, near the windows)."""
        self.clock.now = NOW if step is None else self.clock.now + step

    @invariant()
    def entries_answer_for_their_keys(self) -> None:
        """Every stored library entry holds the engine's decision on the request its key
        encodes, at the time it was stored, on the version its digest names."""
        store = self.cached._store
        if store is None:
            return
        versions = {version.digest: version for version in self.versions}
        for key, (decision, stored_at, _) in list(store.items()):
            rebuilt = keyed_request(key)
            if rebuilt is None:  # a caller fingerprint: `_check` covers those
                continue
            principal, action, resource, context, actor = rebuilt
            assert actor is None  # the machine's requests name no actor
            expected = _fresh(versions[key[0]], principal, [(action, resource)], context, stored_at)
            assert expected == _uncached([decision])

    @invariant()
    def counters_add_up(self) -> None:
        """Every answered decision is a hit or a miss; the size never exceeds maxsize."""
        stats = self.cached.stats()
        assert self.answered == stats.hits + stats.misses
        assert 0 <= stats.size <= self.maxsize


CacheMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestCacheMachine = CacheMachine.TestCase


@settings(max_examples=60, deadline=None)
@given(
    versions=policy_versions(),
    steps=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 2)),
            st.booleans(),
            cache_principals(),
            cache_actions,
            cache_resources(),
        ),
        min_size=1,
        max_size=20,
    ),
)
@pytest.mark.parametrize("way", WAYS)
def test_cache_never_answers_with_another_version(
    way: str,
    versions: list[PolicySnapshot],
    steps: list[tuple[int | None, bool, Principal, str, Resource]],
) -> None:
    """Whatever the swaps (through the cache or behind it), a decision names the serving digest.

    After each swap every request seen so far is asked again: those are the stale candidates.
    """
    engine = Engine(versions[0], clock=FakeClock(NOW))
    cached = CachedEngine(engine, maxsize=64)
    seen: list[tuple[Principal, str, Resource]] = []
    for swap_to, behind, principal, action, resource in steps:
        if swap_to is not None:
            (engine if behind else cached).swap(versions[swap_to])
        seen.append((principal, action, resource))
        for asked in [*seen, seen[-1]]:  # the last one twice: a fresh entry, then a hit
            try:
                decision = _ask(cached, way, *asked)
            except InvalidRequestError:
                continue
            assert engine.snapshot.digest == decision.policy_digest


@settings(max_examples=300, deadline=None)
@given(request=anchor_requests(), changes=st.lists(tweaks, min_size=1, max_size=3))
@pytest.mark.parametrize("way", WAYS)
def test_near_duplicates_of_a_cached_request_get_their_own_answers(
    way: str, request: Request, changes: list[Tweak]
) -> None:
    """Changing any one input of a cached request yields that request's own fresh answer."""
    snapshot = snapshot_of(list(ANCHOR_RULES))
    cached = CachedEngine(Engine(snapshot, clock=FakeClock(NOW)))
    with contextlib.suppress(InvalidRequestError):
        _ask(cached, way, *request)
    for change in changes:
        variant = tweak(request, change)
        principal, action, resource, context = variant
        expected = _fresh(snapshot, principal, [(action, resource)], context, NOW)
        try:
            actual: list[Decision] | str = _uncached([_ask(cached, way, *variant)])
        except InvalidRequestError as exc:
            actual = exc.field
        assert expected == actual


@settings(max_examples=300, deadline=None)
@given(request=anchor_requests(), steps=st.lists(_steps, min_size=1, max_size=6))
@pytest.mark.parametrize("way", WAYS)
def test_time_dependent_answers_follow_the_clock(
    way: str, request: Request, steps: list[float | None]
) -> None:
    """With no TTL to hide behind, every answer after a clock move is the fresh one."""
    snapshot = snapshot_of(list(ANCHOR_RULES))
    clock = FakeClock(NOW)
    cached = CachedEngine(Engine(snapshot, clock=clock), ttl=float("inf"))
    principal, action, resource, context = request
    for step in [0.0, *steps]:
        clock.now = NOW if step is None else clock.now + step
        expected = _fresh(snapshot, principal, [(action, resource)], context, clock.now)
        try:
            actual: list[Decision] | str = _uncached([_ask(cached, way, *request)])
        except InvalidRequestError as exc:
            actual = exc.field
        assert expected == actual
