"""Re-deciding one logged request under another snapshot, without guessing what was not logged.

`LoggedValues` stands in for attributes and context and notes every read of a key the log did
not keep; a decision that read one is undetermined. Evaluation is deterministic, so one that read
only logged values is the full request's decision (docs/design/insights.md).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cnm_policy.engine.evaluate import decide
from cnm_policy.engine.requests import (
    PreparedPrincipal,
    prepare_actor,
    prepare_principal,
    validate_target,
)
from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import Decision, Principal, Resource
from cnm_policy.policy import ASSIGNED_TENANTS_ATTRIBUTE, Scope

__all__ = ["LoggedRequest", "LoggedValues", "Redecided", "Redecider"]

_MAX_PRINCIPALS = 100_000  # prepared principals (and actors) kept for reuse
_Prepared = dict[Hashable, PreparedPrincipal | str]


class LoggedValues(Mapping[str, Any]):
    """The logged part of a mapping; reading a key the log may have left out is noted.

    `known_absent` are keys the log would have kept (allow-listed) and so truly were absent.
    """

    __slots__ = ("_known_absent", "_reads", "_section", "_values")

    def __init__(
        self,
        values: Mapping[str, Any],
        known_absent: frozenset[str],
        section: str,
        reads: list[str],
    ) -> None:
        self._values = values
        self._known_absent = known_absent
        self._section = section
        self._reads = reads

    def _unknown(self, key: object) -> bool:
        if key in self._values or key in self._known_absent:
            return False
        self._reads.append(f"{self._section}.{key}")
        return True

    def __getitem__(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        self._unknown(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The logged value, or `default` (noting the read when the log may have left it out)."""
        if key in self._values:
            return self._values[key]
        self._unknown(key)
        return default

    def __contains__(self, key: object) -> bool:
        if key in self._values:
            return True
        self._unknown(key)
        return False

    def __iter__(self) -> Iterator[str]:
        self._reads.append(f"{self._section}.*")  # every key: the unlogged ones too
        return iter(self._values)

    def __len__(self) -> int:
        self._reads.append(f"{self._section}.*")
        return len(self._values)


@dataclass(frozen=True, slots=True)
class Redecided:
    """The candidate's decision, or why there is none: `unlogged` inputs it read, or `invalid`."""

    decision: Decision | None
    unlogged: tuple[str, ...] = ()
    invalid: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One logged request: what the log kept of it, and whether that is all of it.

    `actor`: who acted on the principal's behalf, if anyone (a decision line logs no actor
    attributes: every read of one is unlogged, unless the request is `complete`).
    """

    principal: Principal
    action: str
    resource: Resource
    context: Mapping[str, Any]
    now: float
    complete: bool
    principal_key: Hashable | None = None  # equal keys: the same principal, prepared once
    actor: Principal | None = None
    actor_key: Hashable | None = None  # as `principal_key`, for the actor


class Redecider:
    """Decides logged requests under one snapshot; `logged_keys` are the log's allow-list."""

    def __init__(
        self, snapshot: PolicySnapshot, logged_keys: Mapping[str, frozenset[str]] | None = None
    ) -> None:
        self._snapshot = snapshot
        self._logged = dict(logged_keys or {})
        # The roles that can reach a resource through `assigned_tenants`.
        self._assigned_roles = frozenset(
            role
            for rule in snapshot.bundle.rules
            if rule.scope is Scope.ASSIGNED
            for role in rule.roles
        )
        self._principals: _Prepared = {}
        self._actors: _Prepared = {}

    @property
    def snapshot(self) -> PolicySnapshot:
        """The candidate policy."""
        return self._snapshot

    def decide(self, request: LoggedRequest) -> Redecided:
        """The candidate's decision on `request`, or the unlogged inputs it would need."""
        prepared = self._prepare(
            self._principals, request.principal_key, request.principal, prepare_principal
        )
        if isinstance(prepared, str):
            return Redecided(None, invalid=prepared)
        actor = None
        if request.actor is not None:
            acting = self._prepare(self._actors, request.actor_key, request.actor, prepare_actor)
            if isinstance(acting, str):
                return Redecided(None, invalid=acting)
            actor = acting
        if request.complete:
            return self._decide_prepared(
                prepared, request, request.resource, request.context, actor
            )
        return self._decide_logged(prepared, actor, request)

    def _decide_logged(
        self, prepared: PreparedPrincipal, actor: PreparedPrincipal | None, request: LoggedRequest
    ) -> Redecided:
        """Decide over the logged values, noting each read of a value the log did not keep."""
        reads: list[str] = []
        logged = self._logged
        if actor is not None and request.actor is not None:
            actor_view = dict(actor.view)
            actor_view["attributes"] = LoggedValues(
                request.actor.attributes, logged.get("actor", frozenset()), "actor", reads
            )
            actor = _with(actor, actor.assigned, actor_view)
        attributes = request.principal.attributes
        known = logged.get("principal", frozenset())
        view = dict(prepared.view)
        view["attributes"] = LoggedValues(attributes, known, "principal", reads)
        prepared = _with(prepared, prepared.assigned, view)
        target = request.resource
        resource = Resource(
            target.kind,
            target.id,
            target.tenant,
            LoggedValues(target.attributes, logged.get("resource", frozenset()), "resource", reads),
        )
        context = LoggedValues(
            request.context, logged.get("context", frozenset()), "context", reads
        )
        first = self._decide_prepared(prepared, request, resource, context, actor)
        assigned_known = ASSIGNED_TENANTS_ATTRIBUTE in attributes or (
            ASSIGNED_TENANTS_ATTRIBUTE in known
        )
        if not assigned_known and self._assigned_roles.intersection(prepared.roles):
            # Both cases of the unlogged list: it reaches the resource's tenant, or it does not.
            reaching = _with(prepared, (target.tenant,), view)
            other = self._decide_prepared(reaching, request, resource, context, actor)
            if first.decision is None or other.decision is None:
                return first if first.decision is None else other
            if other.decision.allowed != first.decision.allowed:
                reads.append(f"principal.{ASSIGNED_TENANTS_ATTRIBUTE}")
        if reads:
            return Redecided(None, unlogged=tuple(dict.fromkeys(reads)))
        return first

    def _prepare(
        self,
        cache: _Prepared,
        key: Hashable | None,
        who: Principal,
        prepare: Callable[[PolicySnapshot, object], PreparedPrincipal],
    ) -> PreparedPrincipal | str:
        """`who` validated and its roles resolved (kept per key in `cache`), or why not."""
        found = cache.get(key) if key is not None else None
        if found is None:
            try:
                found = prepare(self._snapshot, who)
            except InvalidRequestError as exc:
                found = str(exc)
            if key is not None:
                if len(cache) >= _MAX_PRINCIPALS:
                    cache.clear()  # bounded memory; a cold start costs only time
                cache[key] = found
        return found

    def _decide_prepared(
        self,
        prepared: PreparedPrincipal,
        request: LoggedRequest,
        resource: Resource,
        context: Mapping[str, Any],
        actor: PreparedPrincipal | None = None,
    ) -> Redecided:
        try:
            checked = validate_target(request.action, resource, context)
            decision = decide(
                self._snapshot, prepared, request.action, resource, checked, request.now, actor
            )
        except InvalidRequestError as exc:
            return Redecided(None, invalid=str(exc))
        return Redecided(decision)


def _with(
    prepared: PreparedPrincipal, assigned: tuple[str, ...], view: Mapping[str, Any]
) -> PreparedPrincipal:
    """`prepared` with other assigned tenants and view (a direct build: `replace` costs more)."""
    return PreparedPrincipal(
        principal=prepared.principal,
        roles=prepared.roles,
        unknown_roles=prepared.unknown_roles,
        side=prepared.side,
        mixed_sides=prepared.mixed_sides,
        assigned=assigned,
        view=view,
    )
