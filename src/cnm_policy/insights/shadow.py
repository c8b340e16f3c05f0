"""Shadow mode: a candidate policy decides a sample of live requests beside the live one.

It never changes an answer: `ShadowRunner` hands the decided request to one worker thread through
a bounded queue (full: dropped, never waited on); `ShadowEvaluator` decides it under the
candidate and returns a `shadow_divergence` event when they disagree, for `serve` to log.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple, Protocol

from cnm_policy.errors import CnmPolicyError
from cnm_policy.model import Decision, Principal, Resource

__all__ = ["SHADOW_DIVERGENCE_EVENT", "ShadowEvaluator", "ShadowRunner", "ShadowTask"]

SHADOW_DIVERGENCE_EVENT: Final = "shadow_divergence"


class Checker(Protocol):
    """What decides in the shadow: an `Engine` or a `CachedEngine` over the candidate."""

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        actor: Principal | None = None,
    ) -> Decision: ...


class ShadowTask(NamedTuple):  # a tuple: built on the serving thread for every decision
    """One live decision and its request (`actor`: who acted on the principal's behalf)."""

    principal: Principal
    action: str
    resource: Resource
    context: Mapping[str, Any]
    live: Decision
    decision_id: str
    actor: Principal | None = None


class ShadowEvaluator:
    """Decides sampled requests under the candidate; a divergence becomes one event dict.

    `engine` is read through a callable so a hot reload of the candidate is seen at once.
    `sample` is the share of requests decided (0-1); `draw` is injectable for tests.
    """

    def __init__(
        self,
        engine: Callable[[], Checker],
        *,
        sample: float = 1.0,
        draw: Callable[[], float] = random.random,
        fresh: Callable[[], Checker] | None = None,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"shadow sample rate `{sample}` is not between 0 and 1")
        self._engine = engine
        # For requests the live cache had not seen: an uncached engine, as a cache miss there
        # costs more than deciding (the request's repeats go to `engine`, which caches).
        self._fresh = fresh or engine
        self._sample = sample
        self._draw = draw

    def sampled(self) -> bool:
        """Whether this request goes to the shadow (1.0: every one; 0.0: none)."""
        return self._sample >= 1.0 or (self._sample > 0.0 and self._draw() < self._sample)

    def compare(self, task: ShadowTask) -> dict[str, Any] | None:
        """The `shadow_divergence` event's fields when the candidate decides otherwise, else None.

        A request the candidate refuses (invalid under its definitions) or fails on counts as
        a deny there: fail closed, and a divergence worth seeing when the live one allowed.
        """
        live, actor = task.live, task.actor
        try:
            chosen = self._engine if live.cached else self._fresh
            shadow = chosen().check(
                task.principal, task.action, task.resource, task.context, actor=actor
            )
        except CnmPolicyError as exc:
            rule_ids: tuple[str, ...] = ()
            shadow_allowed, version, digest = False, None, None
            error: str | None = exc.code
        else:
            shadow_allowed, rule_ids = shadow.allowed, shadow.rule_ids
            version, digest, error = shadow.policy_version, shadow.policy_digest, None
        if shadow_allowed == live.allowed:
            return None
        event: dict[str, Any] = {
            "decision_id": task.decision_id,
            "direction": "deny_to_allow" if shadow_allowed else "allow_to_deny",
            "principal_id": task.principal.id,
            "principal_tenant": task.principal.tenant,
            "principal_roles": list(task.principal.roles),
            **({} if actor is None else _actor_fields(actor)),
            "action": task.action,
            "resource_kind": task.resource.kind,
            "resource_id": task.resource.id,
            "resource_tenant": task.resource.tenant,
            "live_allowed": live.allowed,
            "live_rule_ids": list(live.rule_ids),
            "live_policy_version": live.policy_version,
            "live_policy_digest": live.policy_digest,
            "shadow_allowed": shadow_allowed,
            "shadow_rule_ids": list(rule_ids),
            "shadow_policy_version": version,
            "shadow_policy_digest": digest,
        }
        if error is not None:
            event["shadow_error_code"] = error
        return event


def _actor_fields(actor: Principal) -> dict[str, Any]:
    """Who acted, in the decision event's field names (never the actor's attributes)."""
    return {"actor_id": actor.id, "actor_tenant": actor.tenant, "actor_roles": list(actor.roles)}


class ShadowRunner:
    """One worker thread deciding shadow tasks off the request path, in batches.

    `submit` appends to a deque and returns (never blocks, never wakes a thread): a full
    backlog drops the task and counts it in `dropped`. The worker wakes every `linger` seconds
    (or at once on `drain`/`close`) and compares everything pending. Waking once per task cost
    the live path ~20% CPU on cached checks (docs/design/insights.md). `sink` receives each
    divergence event (log it, count the metric).
    """

    def __init__(
        self,
        evaluator: ShadowEvaluator,
        sink: Callable[[dict[str, Any]], None],
        *,
        maxsize: int = 10_000,
        linger: float = 0.05,
    ) -> None:
        self._evaluator = evaluator
        self._sink = sink
        self._maxsize = maxsize
        self._linger = linger
        self._pending: deque[ShadowTask] = deque()  # append/popleft are atomic in CPython
        self._busy = False  # the worker is comparing a batch (written by the worker only)
        self._wake = threading.Event()
        self._finished = threading.Condition()
        self._closing = False
        self.dropped = 0
        self.compared = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._work, name="cnm-shadow", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """Whether the next decision goes to the shadow (ask before building its task)."""
        return self._evaluator.sampled()

    def submit(self, task: ShadowTask) -> bool:
        """Queue `task` if sampled; False when it was not sampled or the backlog was full."""
        return self._evaluator.sampled() and self.force(task)

    def force(self, task: ShadowTask) -> bool:
        """Queue `task` (already sampled); False when the backlog was full."""
        if len(self._pending) >= self._maxsize:
            self.dropped += 1  # one writer per counter in CPython's GIL: an estimate at worst
            return False
        self._pending.append(task)
        return True

    def drain(self) -> None:
        """Wait until every task submitted so far has been compared (shutdown and tests)."""
        with self._finished:
            while (self._pending or self._busy) and self._thread.is_alive():
                self._wake.set()
                self._finished.wait(0.1)

    def close(self) -> None:
        """Finish the pending tasks, then stop the worker."""
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _work(self) -> None:
        while True:
            self._wake.wait(self._linger)
            self._wake.clear()
            self._busy = True
            while self._pending:
                self._compare(self._pending.popleft())
            with self._finished:
                self._busy = False
                self._finished.notify_all()
            if self._closing and not self._pending:
                return

    def _compare(self, task: ShadowTask) -> None:
        try:
            event = self._evaluator.compare(task)
            self.compared += 1
            if event is not None:
                self._sink(event)
        except Exception:
            self.failed += 1
