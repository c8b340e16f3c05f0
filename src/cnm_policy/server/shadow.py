"""Shadow mode and input capture in the sidecar: observers of the decision log.

`--shadow-policies DIR` loads a candidate bundle beside the live one, through the same gate and
hot-reloaded the same way; every live decision is handed to a background runner that decides it
again under the candidate and logs `shadow_divergence` when the answers differ. It never changes
an answer. `--log-inputs FILE` writes each decision's whole request to a separate, sensitive file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from cnm_policy.audit import DecisionFacts
from cnm_policy.cache import DEFAULT_MAXSIZE, CachedEngine
from cnm_policy.engine import Clock, Engine, PolicySnapshot, load_snapshot
from cnm_policy.insights.capture import InputCapture
from cnm_policy.insights.shadow import (
    SHADOW_DIVERGENCE_EVENT,
    ShadowEvaluator,
    ShadowRunner,
    ShadowTask,
)
from cnm_policy.policy.commit import load_tree
from cnm_policy.reload import PolicyReloader

__all__ = ["Shadow", "ShadowOptions", "capture_observer"]


@dataclass(frozen=True, slots=True)
class ShadowOptions:
    """The candidate bundle and the share of live decisions it re-decides (0-1)."""

    policies: Path
    sample: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample <= 1.0:
            raise ValueError(f"--shadow-sample `{self.sample}` is not between 0 and 1")


class Shadow:
    """A gated, hot-reloaded candidate engine and the runner that compares against it."""

    def __init__(
        self,
        options: ShadowOptions,
        *,
        run_tests: Callable[[PolicySnapshot], Any],
        settle_seconds: float,
        clock: Clock,
        logger: Any = None,
    ) -> None:
        snapshot, fingerprint = load_tree(options.policies, load=load_snapshot, run_tests=run_tests)
        # The candidate's own decision cache, of the live one's default size.
        self.engine = CachedEngine(Engine(snapshot, clock=clock), maxsize=DEFAULT_MAXSIZE)
        self.reloader = PolicyReloader(
            self.engine,
            options.policies,
            load=load_snapshot,
            run_tests=run_tests,
            settle_seconds=settle_seconds,
            initial_fingerprint=fingerprint,
        )
        self._log = logger if logger is not None else structlog.get_logger("cnm_policy.shadow")
        self._lock = threading.Lock()
        # by direction, both exported from the start (the `shadow_divergences` metric)
        self._divergences = {"allow_to_deny": 0, "deny_to_allow": 0}
        evaluator = ShadowEvaluator(
            lambda: self.engine, sample=options.sample, fresh=lambda: self.engine.engine
        )
        self.runner = ShadowRunner(evaluator, sink=self._diverged)

    def observe(self, facts: DecisionFacts) -> None:
        """Queue one live decision for the candidate (never blocks; dropped when full)."""
        runner = self.runner
        if not runner.sampled():
            return
        task = ShadowTask(
            facts.principal,
            facts.action,
            facts.resource,
            facts.context,
            facts.decision,
            facts.decision_id,
            actor=facts.actor,
        )
        runner.force(task)

    def _diverged(self, event: dict[str, Any]) -> None:
        self._log.warning(SHADOW_DIVERGENCE_EVENT, **event)
        with self._lock:
            direction = str(event.get("direction"))
            self._divergences[direction] = self._divergences.get(direction, 0) + 1

    def divergences(self) -> dict[str, int]:
        """Divergences so far, by direction (a consistent copy)."""
        with self._lock:
            return dict(self._divergences)

    def start(self, interval: float | None) -> None:
        """Start watching the candidate bundle (reloads also on request, e.g. SIGHUP)."""
        self.reloader.start(interval)

    def stop(self) -> None:
        """Stop reloading, then let the runner finish what is queued."""
        self.reloader.stop()
        self.runner.close()


def capture_observer(capture: InputCapture) -> Callable[[DecisionFacts], None]:
    """An observer writing each decision's whole request to `capture`."""

    def observe(facts: DecisionFacts) -> None:
        capture.record(
            principal=facts.principal,
            action=facts.action,
            resource=facts.resource,
            context=facts.context,
            decision=facts.decision,
            decision_id=facts.decision_id,
            actor=facts.actor,
        )

    return observe
