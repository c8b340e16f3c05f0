"""Shadow mode: a candidate policy decides a sample of live requests beside the live one.

It never changes an answer: `ShadowRunner` hands the decided request to one worker thread through
a bounded queue (full: dropped, never waited on); `ShadowEvaluator` decides it under the
candidate and returns a `shadow_divergence` event when they disagree, for `serve` to log.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

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


@dataclass(frozen=True, slots=True)
class ShadowTask:
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
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"shadow sample rate `{sample}` is not between 0 and 1")
        self._engine = engine
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
            shadow = self._engine().check(
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


_STOP: Final = object()


class ShadowRunner:
    """One worker thread deciding shadow tasks off the request path.

    `sink` receives each divergence event (log it, count the metric). `submit` never blocks:
    a full queue drops the task and counts it in `dropped`.
    """

    def __init__(
        self,
        evaluator: ShadowEvaluator,
        sink: Callable[[dict[str, Any]], None],
        *,
        maxsize: int = 10_000,
    ) -> None:
        self._evaluator = evaluator
        self._sink = sink
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self.compared = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._work, name="cnm-shadow", daemon=True)
        self._thread.start()

    def submit(self, task: ShadowTask) -> bool:
        """Queue `task` if sampled; False when it was not sampled or the queue was full."""
        if not self._evaluator.sampled():
            return False
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            self.dropped += 1  # one writer per counter in CPython's GIL: an estimate at worst
            return False
        return True

    def drain(self) -> None:
        """Wait until every queued task has been compared (for shutdown and tests)."""
        self._queue.join()

    def close(self) -> None:
        """Finish the queued tasks, then stop the worker."""
        self._queue.put(_STOP)
        self._thread.join()

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is _STOP:
                    return
                event = self._evaluator.compare(task)
                self.compared += 1
                if event is not None:
                    self._sink(event)
            except Exception:
                self.failed += 1
            finally:
                self._queue.task_done()
