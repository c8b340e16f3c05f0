"""One corpus, every implementation: each bundle's own test cases against every way to decide.

The cases in `policies/*/tests/*_test.yaml` run against `Engine`, `CachedEngine` cold and warm,
the casbin reference and the sidecar over a real channel (`Check` and `CheckBatch`). Each gives
the case's `allowed` and rule ids (the `Engine`'s where a case names none); the casbin
reference only decides allow, deny or the default deny, and is held to that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cnm_policy import Engine
from cnm_policy.cache import CachedEngine
from cnm_policy.engine import PolicySnapshot, load_snapshot
from cnm_policy.engine.reference import Outcome, reference_outcome
from cnm_policy.engine.requests import prepare_actor, prepare_principal, validate_target
from cnm_policy.model import AccessRequest
from cnm_policy.server.wire.convert import access_request_to_proto
from cnm_policy.testing import TestCase, load_cases
from cnm_policy.v1 import policy_pb2 as pb
from tests.conftest import REPO_ROOT
from tests.e2e.harness import Served, serve

pytestmark = pytest.mark.e2e

BUNDLES = sorted(p.parent for p in (REPO_ROOT / "policies").glob("*/bundle.yaml"))

# What an implementation answers: allowed and the deciding rule ids, or the reference's outcome.
Verdict = tuple[bool, tuple[str, ...]] | Outcome


class _Clock:
    """The time every implementation reads: set to each case's own instant before it runs."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class _Corpus:
    """One bundle's snapshot and cases, with the sidecar serving it over a real channel."""

    snapshot: PolicySnapshot
    cases: tuple[TestCase, ...]
    clock: _Clock
    sidecar: Served


@pytest.fixture(scope="module", params=BUNDLES, ids=lambda p: p.name)
def corpus(request: pytest.FixtureRequest) -> Iterator[_Corpus]:
    """The bundle's cases, and one sidecar on it for the whole module."""
    bundle: Path = request.param
    snapshot = load_snapshot(bundle)
    cases, problems = load_cases(snapshot.bundle.source)
    assert (problems, bool(cases)) == ((), True)
    clock = _Clock()
    with serve(bundle, clock=clock) as sidecar:
        yield _Corpus(snapshot, cases, clock, sidecar)


def _request(case: TestCase) -> AccessRequest:
    """The case as one request, its actor included."""
    return AccessRequest(case.principal, case.action, case.resource, case.context, case.actor)


def _verdict(decision: Any) -> tuple[bool, tuple[str, ...]]:
    """A `Decision`'s or a `CheckResponse`'s allowed and rule ids."""
    return (bool(decision.allowed), tuple(decision.rule_ids))


def _engine(corpus: _Corpus) -> Callable[[TestCase], Verdict]:
    engine = Engine(corpus.snapshot, clock=corpus.clock)
    return lambda case: _verdict(engine.check_request(_request(case)))


def _cached_cold(corpus: _Corpus) -> Callable[[TestCase], Verdict]:
    def decide(case: TestCase) -> Verdict:
        cached = CachedEngine(Engine(corpus.snapshot, clock=corpus.clock))
        decision = cached.check_request(_request(case))
        assert not decision.cached, case.name
        return _verdict(decision)

    return decide


def _cached_warm(corpus: _Corpus) -> Callable[[TestCase], Verdict]:
    cached = CachedEngine(Engine(corpus.snapshot, clock=corpus.clock))

    def decide(case: TestCase) -> Verdict:
        cached.check_request(_request(case))
        decision = cached.check_request(_request(case))
        assert decision.cached, case.name
        return _verdict(decision)

    return decide


def _reference(corpus: _Corpus) -> Callable[[TestCase], Verdict]:
    def decide(case: TestCase) -> Verdict:
        prepared = prepare_principal(corpus.snapshot, case.principal)
        actor = None if case.actor is None else prepare_actor(corpus.snapshot, case.actor)
        context = validate_target(case.action, case.resource, case.context)
        return reference_outcome(
            corpus.snapshot, prepared, case.action, case.resource, context, case.now, actor
        )

    return decide


def _sidecar(corpus: _Corpus) -> Callable[[TestCase], Verdict]:
    def decide(case: TestCase) -> Verdict:
        request = access_request_to_proto(_request(case))
        return _verdict(corpus.sidecar.stub.Check(request, timeout=10))

    return decide


def _sidecar_batch(corpus: _Corpus) -> Callable[[TestCase], Verdict]:
    def decide(case: TestCase) -> Verdict:
        single = access_request_to_proto(_request(case))
        batch = pb.CheckBatchRequest(
            principal=single.principal,
            items=[pb.CheckBatchItem(action=single.action, resource=single.resource)],
            context=single.context,
        )
        if single.HasField("actor"):
            batch.actor.CopyFrom(single.actor)
        (result,) = corpus.sidecar.stub.CheckBatch(batch, timeout=10).results
        return _verdict(result)

    return decide


IMPLEMENTATIONS: dict[str, Callable[[_Corpus], Callable[[TestCase], Verdict]]] = {
    "engine": _engine,
    "cached-cold": _cached_cold,
    "cached-warm": _cached_warm,
    "casbin-reference": _reference,
    "sidecar": _sidecar,
    "sidecar-batch": _sidecar_batch,
}


def _expected(corpus: _Corpus, case: TestCase, *, outcome: bool) -> Verdict:
    """The case's expectation; its rule ids are the `Engine`'s where the case names none."""
    rules = case.expect_rules
    if rules is None:
        engine = Engine(corpus.snapshot, clock=lambda: case.now)
        rules = engine.check_request(_request(case)).rule_ids
    if outcome:
        return "allow" if case.expect_allowed else "deny" if rules else "default deny"
    return (case.expect_allowed, tuple(sorted(rules)))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_every_implementation_decides_the_corpus_as_its_cases_expect(
    corpus: _Corpus, implementation: str
) -> None:
    """Each implementation gives every case its expected allowed and rule ids."""
    decide = IMPLEMENTATIONS[implementation](corpus)
    outcome = implementation == "casbin-reference"
    mismatches = []
    for case in corpus.cases:
        corpus.clock.now = case.now
        expected = _expected(corpus, case, outcome=outcome)
        actual = decide(case)
        if expected != actual:
            mismatches.append(f"{case.file}:{case.line} {case.name}: {expected} != {actual}")
    assert mismatches == []
