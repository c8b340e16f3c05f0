"""Shadow mode's pure parts: one divergence event per differing decision, sampling, no waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from cnm_policy import Decision, Engine, Principal, Resource
from cnm_policy.errors import ConditionError
from cnm_policy.insights import ShadowEvaluator, ShadowRunner, ShadowTask
from tests.unit.insights.scenario import ANN, BOB, GUS, PAT, POLICIES, SUE, device
from tests.unit.insights.test_replay import EDITS, _edited
from tests.unit.insights.test_replay_actors import ACTOR_EDITS

PARIS = device("dev-1", "acme/emea/paris")  # narrowed scope: allowed live, denied in the shadow
EMEA = device("dev-3", "acme/emea")  # allowed by both


@pytest.fixture
def engines(tmp_path: Path) -> tuple[Engine, Engine]:
    """The live engine and a candidate that narrows customer reads to their own tenant."""
    candidate = _edited(tmp_path / "candidate", *EDITS["narrowed-scope"])
    return Engine.from_path(POLICIES), Engine.from_path(candidate)


def _task(
    live: Engine,
    principal: Principal,
    action: str,
    resource: Resource,
    n: int,
    actor: Principal | None = None,
) -> ShadowTask:
    decision = live.check(principal, action, resource, {}, actor=actor)
    if actor is None:  # as `serve` built tasks before actors: positional, no actor
        return ShadowTask(principal, action, resource, {}, decision, f"d-{n}")
    return ShadowTask(principal, action, resource, {}, decision, f"d-{n}", actor=actor)


def test_a_divergence_is_one_event_naming_both_answers(engines: tuple[Engine, Engine]) -> None:
    """Live allow, shadow deny: the event carries both sides; an agreement is None."""
    live, candidate = engines
    evaluator = ShadowEvaluator(lambda: candidate)
    assert evaluator.compare(_task(live, ANN, "read", EMEA, 1)) is None
    event = evaluator.compare(_task(live, ANN, "read", PARIS, 2))
    assert event == {
        "decision_id": "d-2",
        "direction": "allow_to_deny",
        "principal_id": "ann",
        "principal_tenant": "acme/emea",
        "principal_roles": ["customer-viewer"],
        "action": "read",
        "resource_kind": "device",
        "resource_id": "dev-1",
        "resource_tenant": "acme/emea/paris",
        "live_allowed": True,
        "live_rule_ids": ["customer-read-network"],
        "live_policy_version": "1.0.0",
        "live_policy_digest": live.snapshot.digest,
        "shadow_allowed": False,
        "shadow_rule_ids": [],
        "shadow_policy_version": "1.0.0",
        "shadow_policy_digest": candidate.snapshot.digest,
    }


def test_the_candidate_decides_with_the_actor(tmp_path: Path) -> None:
    """`actor: forbidden` on reads: only the on-behalf-of reads diverge, naming the actor."""
    live = Engine.from_path(POLICIES)
    candidate = Engine.from_path(_edited(tmp_path / "c", *ACTOR_EDITS["actor-forbidden"]))
    events: list[dict[str, Any]] = []
    runner = ShadowRunner(ShadowEvaluator(lambda: candidate), events.append)
    for n, actor in enumerate((None, PAT, SUE, GUS)):
        assert runner.submit(_task(live, ANN, "read", PARIS, n, actor))
    runner.close()
    acted = [(e["decision_id"], e["actor_id"], e["actor_tenant"], e["actor_roles"]) for e in events]
    assert sorted(acted) == [
        ("d-1", "pat", "acme", ["customer-viewer"]),
        ("d-2", "sue", "provider", ["support-agent"]),
    ]
    assert [e["direction"] for e in events] == ["allow_to_deny"] * 2
    assert "actor_attributes" not in events[0]  # the actor's attributes are never logged


def test_sampling_draws_only_between_0_and_1() -> None:
    """Rate 1 always, 0 never (neither draws); between, a draw below the rate is sampled."""
    draws: Iterator[float] = iter([0.1, 0.9])
    assert ShadowEvaluator(lambda: None, sample=1.0, draw=lambda: 1 / 0).sampled()  # type: ignore[arg-type,return-value]
    assert not ShadowEvaluator(lambda: None, sample=0.0, draw=lambda: 1 / 0).sampled()  # type: ignore[arg-type,return-value]
    half = ShadowEvaluator(lambda: None, sample=0.5, draw=lambda: next(draws))  # type: ignore[arg-type,return-value]
    assert (half.sampled(), half.sampled()) == (True, False)
    with pytest.raises(ValueError, match="not between 0 and 1"):
        ShadowEvaluator(lambda: None, sample=1.5)  # type: ignore[arg-type,return-value]


def test_the_runner_sinks_exactly_one_event_per_divergence(engines: tuple[Engine, Engine]) -> None:
    """Ten requests, four differing: four events, and each task's live answer untouched."""
    live, candidate = engines
    events: list[dict[str, Any]] = []
    runner = ShadowRunner(ShadowEvaluator(lambda: candidate), events.append)
    tasks = [_task(live, ANN, "read", PARIS if n % 3 == 0 else EMEA, n) for n in range(10)]
    answers = [t.live for t in tasks]
    assert all(runner.submit(t) for t in tasks)
    runner.drain()
    runner.close()
    assert sorted(e["decision_id"] for e in events) == ["d-0", "d-3", "d-6", "d-9"]
    assert [t.live for t in tasks] == answers
    assert (runner.compared, runner.dropped, runner.failed) == (10, 0, 0)


class _Gate:
    """A candidate that holds its first check until released (to fill the queue)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.started = threading.Event()
        self.release = threading.Event()

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        actor: Principal | None = None,
    ) -> Decision:
        self.started.set()
        assert self.release.wait(timeout=30)
        return self.engine.check(principal, action, resource, context, actor=actor)


def test_a_full_queue_drops_instead_of_waiting(engines: tuple[Engine, Engine]) -> None:
    """With the worker busy and one slot taken, the next submit returns at once, dropped."""
    live, candidate = engines
    gate = _Gate(candidate)
    runner = ShadowRunner(ShadowEvaluator(lambda: gate), lambda _: None, maxsize=1)
    assert runner.submit(_task(live, ANN, "read", EMEA, 1))
    assert gate.started.wait(timeout=30)
    assert runner.submit(_task(live, ANN, "read", EMEA, 2))
    assert not runner.submit(_task(live, ANN, "read", EMEA, 3))
    gate.release.set()
    runner.close()
    assert (runner.compared, runner.dropped) == (2, 1)


class _Failing:
    """A candidate whose every check fails (as a broken condition runtime would)."""

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        actor: Principal | None = None,
    ) -> Decision:
        raise ConditionError("boom")


def test_a_failing_candidate_counts_as_a_deny(engines: tuple[Engine, Engine]) -> None:
    """Fail closed: the shadow's error is a deny, a divergence from a live allow only."""
    live, _ = engines
    evaluator = ShadowEvaluator(_Failing)
    event = evaluator.compare(_task(live, ANN, "read", EMEA, 1))
    assert event is not None
    assert (event["shadow_allowed"], event["shadow_error_code"]) == (False, "condition_error")
    assert evaluator.compare(_task(live, BOB, "configure", device("dev-2", "acme"), 2)) is None
