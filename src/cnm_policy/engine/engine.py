"""The library's front door: `Engine` answers checks against the snapshot it currently holds.

An engine holds exactly one snapshot reference. Every check reads that reference once, so a
concurrent :meth:`Engine.swap` can never make one decision see two policy versions, and the
hot path takes no lock. The clock is injected so time-based conditions are testable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cnm_policy.engine.delegation import can_grant
from cnm_policy.engine.evaluate import decide
from cnm_policy.engine.explain import trace_rules
from cnm_policy.engine.plan import Plan, plan
from cnm_policy.engine.requests import prepare_actor, prepare_principal, validate_target
from cnm_policy.engine.snapshot import PolicySnapshot, load_snapshot
from cnm_policy.model import AccessRequest, Decision, GrantDecision, Principal, Resource

__all__ = ["Clock", "Engine"]

Clock = Callable[[], float]


class Engine:
    """Evaluates access checks against one immutable, swappable policy snapshot."""

    def __init__(self, snapshot: PolicySnapshot, *, clock: Clock = time.time) -> None:
        self._snapshot = snapshot
        self._clock = clock

    @classmethod
    def from_path(cls, path: str | Path, *, clock: Clock = time.time) -> Engine:
        """Load, validate and compile the bundle at `path` (raises BundleInvalidError)."""
        return cls(load_snapshot(path, loaded_at=clock()), clock=clock)

    @property
    def snapshot(self) -> PolicySnapshot:
        """The policy version serving right now."""
        return self._snapshot

    @property
    def clock(self) -> Clock:
        """The time source conditions read (epoch seconds)."""
        return self._clock

    def swap(self, snapshot: PolicySnapshot) -> PolicySnapshot:
        """Serve `snapshot` from now on; returns the one it replaced."""
        # INVARIANT: a single reference assignment; every check (and CachedEngine, through the
        # `snapshot` property) reads the reference exactly once.
        previous, self._snapshot = self._snapshot, snapshot
        return previous

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> Decision:
        """May `principal` do `action` on `resource` (with `actor` acting on its behalf)?
        Raises InvalidRequestError on bad input."""
        items = ((action, resource),)
        return self.check_batch(principal, items, context, explain=explain, actor=actor)[0]

    def check_request(self, request: AccessRequest, *, explain: bool = False) -> Decision:
        """:meth:`check` for a request already bundled as an :class:`AccessRequest`."""
        return self.check(
            request.principal,
            request.action,
            request.resource,
            request.context,
            explain=explain,
            actor=request.actor,
        )

    def check_batch(
        self,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> list[Decision]:
        """One decision per (action, resource), in order, all from the same policy version."""
        snapshot, now = self._snapshot, self._clock()
        return decide_batch(snapshot, principal, items, context, now, explain=explain, actor=actor)

    def can_grant(
        self,
        granter: Principal,
        role: str,
        grantee_tenant: str,
        valid_until: float | None = None,
    ) -> GrantDecision:
        """May `granter` give `role` to a user of `grantee_tenant` (until `valid_until`)?
        Raises InvalidRequestError on bad input (docs/design/governance.md)."""
        snapshot, now = self._snapshot, self._clock()
        return can_grant(snapshot, granter, role, grantee_tenant, valid_until, now)

    def plan(
        self,
        principal: Principal,
        action: str,
        kind: str,
        context: Mapping[str, Any] | None = None,
    ) -> Plan:
        """Which resources of `kind` may `principal` `action`? See docs/design/plans.md."""
        return plan(self._snapshot, principal, action, kind, context, self._clock())


def decide_batch(
    snapshot: PolicySnapshot,
    principal: Principal,
    items: Sequence[tuple[str, Resource]],
    context: Mapping[str, Any] | None,
    now: float,
    *,
    explain: bool = False,
    actor: Principal | None = None,
) -> list[Decision]:
    """Decisions for one principal against one snapshot at one instant; validates input."""
    prepared = prepare_principal(snapshot, principal)
    acting = None if actor is None else prepare_actor(snapshot, actor)
    decisions = []
    for action, resource in items:
        checked_context = validate_target(action, resource, context)
        decision = decide(snapshot, prepared, action, resource, checked_context, now, acting)
        if explain:
            traces = trace_rules(snapshot, prepared, action, resource, checked_context, now, acting)
            decision = replace(decision, trace=traces)
        decisions.append(decision)
    return decisions
