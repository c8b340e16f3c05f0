"""The decision log: one canonical ``decision`` event per access decision, through structlog.

Who was allowed what, by which rule, under which policy version is an audit fact, so every call
leaves events with the same keys every time. Attribute values are left out unless allow-listed:
they can carry customer data. Where events are written is `cnm_policy.log_pipeline`'s.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import structlog

from cnm_policy.engine.plan import Plan
from cnm_policy.log_pipeline import one_write
from cnm_policy.model import Decision, GrantDecision, Principal, Resource

__all__ = ["DECISION_EVENT", "AttributeAllowList", "DecisionFacts", "DecisionLog", "Observer"]

DECISION_EVENT: Final = "decision"
_SECTIONS: Final = ("principal", "resource", "context")
_MAX_REQUEST_ID_CHARS: Final = 128
_MAX_FIELD_CHARS: Final = 256


@dataclass(frozen=True, slots=True)
class AttributeAllowList:
    """Top-level attribute keys whose *values* may be logged, per section.

    Written as ``principal.<key>``, ``resource.<key>`` or ``context.<key>`` (the CLI's
    ``--log-attribute``). Everything not listed is omitted from decision events.
    """

    principal: frozenset[str] = frozenset()
    resource: frozenset[str] = frozenset()
    context: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, names: Iterable[str]) -> AttributeAllowList:
        """Build from ``section.key`` names; raises ValueError naming a malformed entry."""
        chosen: dict[str, set[str]] = {section: set() for section in _SECTIONS}
        for name in names:
            section, _, key = name.partition(".")
            if section not in chosen or not key:
                raise ValueError(
                    f"`{name}` is not `principal.<key>`, `resource.<key>` or `context.<key>`"
                )
            chosen[section].add(key)
        return cls(**{section: frozenset(keys) for section, keys in chosen.items()})


class DecisionFacts(NamedTuple):
    """One decision with its whole request, for observers (shadow mode, input capture)."""

    principal: Principal
    action: str
    resource: Resource
    context: Mapping[str, Any]
    decision: Decision
    decision_id: str
    actor: Principal | None


# Called after each decision is logged, on the serving thread: must be quick and never raise.
Observer = Callable[[DecisionFacts], None]


def _random_id() -> str:
    """128 random bits as 32 hex digits: unique like a uuid4 without a system call per id."""
    return random.getrandbits(128).to_bytes(16, "big").hex()


class DecisionLog:
    """Logs each decision as one ``decision`` event; ids and logger are injectable for tests.

    `peer` (``peer_subject``, ``peer_san``) names the caller's certificate under mTLS; `trace`
    (``trace_id``, ``span_id``) the W3C trace the call belongs to. Both are merged into events.
    """

    def __init__(
        self,
        *,
        allow: AttributeAllowList | None = None,
        new_id: Callable[[], str] = _random_id,
        logger: Any = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self._allow = allow or AttributeAllowList()
        self._observers = tuple(observers)
        self._new_id = new_id
        self._logger = logger if logger is not None else structlog.get_logger("cnm_policy.audit")
        self._info: Callable[..., Any] | None = None  # see `_log`

    def new_decision_id(self) -> str:
        """A fresh id, returned to the caller in the response and logged with the event."""
        return self._new_id()

    def new_decision_ids(self, count: int) -> list[str]:
        """Ids for the items of one batch: one fresh id, suffixed ``-<index>`` per item."""
        base = self._new_id()
        return [f"{base}-{index}" for index in range(count)]

    def record(
        self,
        *,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any],
        decision: Decision,
        decision_id: str,
        request_id: str | None,
        latency_seconds: float,
        peer: Mapping[str, Any] | None = None,
        actor: Principal | None = None,
        trace: Mapping[str, Any] | None = None,
    ) -> None:
        """Log the one decision of a Check call."""
        head = _head(request_id, latency_seconds, actor)
        head["decision_id"] = decision_id
        self._emit(head, principal, context, action, resource, decision, peer, trace, actor)

    def record_batch(
        self,
        *,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any],
        decisions: Sequence[Decision],
        decision_ids: Sequence[str],
        request_id: str | None,
        latency_seconds: float,
        peer: Mapping[str, Any] | None = None,
        actor: Principal | None = None,
        trace: Mapping[str, Any] | None = None,
    ) -> None:
        """Log every decision of a CheckBatch call, one event each (`latency_ms` is the batch's)."""
        if not len(items) == len(decisions) == len(decision_ids):
            raise ValueError(
                f"{len(items)} items, {len(decisions)} decisions, {len(decision_ids)} ids"
            )
        call = _head(request_id, latency_seconds, actor)
        with one_write():
            for index, ((action, resource), item) in enumerate(zip(items, decisions, strict=True)):
                head = {**call, "batch_size": len(items), "batch_index": index}
                head["decision_id"] = decision_ids[index]
                self._emit(head, principal, context, action, resource, item, peer, trace, actor)

    def record_rejected(
        self,
        *,
        error_code: str,
        error_field: str | None,
        request_id: str | None,
        latency_seconds: float,
        peer: Mapping[str, Any] | None = None,
        trace: Mapping[str, Any] | None = None,
    ) -> None:
        """Log a call refused before any decision: ``outcome: rejected`` and why (its
        `decision_id` names the event only: no decision was made, and none is returned)."""
        event = _head(request_id, latency_seconds)
        event.update(decision_id=self._new_id(), outcome="rejected", error_code=error_code)
        if error_field:
            event["error_field"] = error_field[:_MAX_FIELD_CHARS]
        (self._info or self._log())(DECISION_EVENT, **event, **(peer or {}), **(trace or {}))

    def record_grant(
        self,
        *,
        granter: Principal,
        role: str,
        grantee_tenant: str,
        answer: GrantDecision,
        decision_id: str,
        request_id: str | None,
        latency_seconds: float,
    ) -> None:
        """Log a delegation question (`CanGrant`): ``kind: grant``, who, what, where, the answer."""
        head = _head(request_id, latency_seconds)
        facts = {"role": role, "grantee_tenant": grantee_tenant, "allowed": answer.allowed}
        self._question("grant", head, decision_id, granter, answer.policy_digest, facts)

    def record_plan(
        self,
        *,
        principal: Principal,
        plan: Plan,
        decision_id: str,
        request_id: str | None,
        latency_seconds: float,
    ) -> None:
        """Log a query plan (`PlanResources`): ``kind: plan``, for whom, of what, its outcome."""
        head = _head(request_id, latency_seconds)
        facts: dict[str, Any] = {"action": plan.action, "resource_kind": plan.resource_kind}
        facts.update(plan_kind=plan.kind, rule_ids=list(plan.rule_ids), cached=plan.cached)
        self._question("plan", head, decision_id, principal, plan.policy_digest, facts)

    def _question(
        self,
        kind: str,
        event: dict[str, Any],
        decision_id: str,
        principal: Principal,
        digest: str,
        facts: dict[str, Any],
    ) -> None:
        """One event of another `kind` than a check's, with the asking principal."""
        event.update(decision_id=decision_id, kind=kind, principal_id=principal.id)
        event.update(principal_tenant=principal.tenant, principal_roles=list(principal.roles))
        (self._info or self._log())(DECISION_EVENT, **event, **facts, policy_digest=digest)

    def _emit(
        self,
        head: dict[str, Any],
        principal: Principal,
        context: Mapping[str, Any],
        action: str,
        resource: Resource,
        decision: Decision,
        peer: Mapping[str, Any] | None,
        trace: Mapping[str, Any] | None,
        actor: Principal | None,
    ) -> None:
        """Log `head`, then who asked what about which resource and the answer (new lists: a
        processor may edit an event in place); then tell the observers."""
        event: dict[str, Any] = {
            **head,
            "principal_id": principal.id,
            "principal_tenant": principal.tenant,
            "principal_roles": list(principal.roles),
            "action": action,
            "resource_kind": resource.kind,
            "resource_id": resource.id,
            "resource_tenant": resource.tenant,
            "allowed": decision.allowed,
            "rule_ids": list(decision.rule_ids),
            "matched_denies": list(decision.matched_denies),
            "policy_name": decision.policy_name,
            "policy_version": decision.policy_version,
            "policy_digest": decision.policy_digest,
            "cached": decision.cached,
        }
        if decision.errors:
            event["error_count"] = len(decision.errors)  # the texts can quote attribute values
        if decision.obligations:
            event["obligations"] = [o.type for o in decision.obligations]
        if decision.limits_exceeded:
            event["limits_exceeded"] = [o.name for o in decision.limits_exceeded]
        if decision.audit_class:
            event["class"] = decision.audit_class  # break_glass, self_managed_crossing
        if peer:
            event.update(peer)
        if trace:
            event.update(trace)
        if (allow := self._allow).principal or allow.resource or allow.context:
            for name, values, keys in (
                ("principal_attributes", principal.attributes, allow.principal),
                ("resource_attributes", resource.attributes, allow.resource),
                ("context", context, allow.context),
            ):
                if chosen := {key: values[key] for key in keys if key in values}:
                    event[name] = chosen
        (self._info or self._log())(DECISION_EVENT, **event)
        if self._observers:
            event_id = head["decision_id"]  # one DecisionFacts, shared by every observer
            facts = DecisionFacts(principal, action, resource, context, decision, event_id, actor)
            for observe in self._observers:
                observe(facts)

    def _log(self) -> Callable[..., Any]:
        """The bound logger's `info`, kept once structlog has cached that logger (the lazy proxy
        is then a detour per event); until then a bound logger per event, as configured now."""
        logger = self._logger
        bound = logger.bind() if hasattr(logger, "bind") else logger  # ReturnLogger: no bind
        if bound is logger or logger.bind() is bound:  # `cache_logger_on_first_use`
            self._info = bound.info
        return bound.info  # type: ignore[no-any-return]


def _head(
    request_id: str | None, latency_seconds: float, actor: Principal | None = None
) -> dict[str, Any]:
    """The call's request id (clipped, ``None`` if absent), latency in ms to the microsecond,
    and who acted on the principal's behalf, if anyone."""
    try:
        latency_ms = round(latency_seconds * 1_000_000) / 1000
    except (ValueError, OverflowError):  # a timer gone wrong costs the value, never the call
        latency_ms = float(latency_seconds)
    head: dict[str, Any] = {
        "request_id": request_id[:_MAX_REQUEST_ID_CHARS] if request_id else None,
        "latency_ms": latency_ms,
    }
    if actor is not None:
        head["actor_id"], head["actor_tenant"] = actor.id, actor.tenant
        head["actor_roles"] = list(actor.roles)
    return head
