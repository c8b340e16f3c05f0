"""The HTTP doors' one decision path: complete the principal, then decide exactly as gRPC does.

A request parsed from JSON is turned into the `CheckRequest` message gRPC would have carried
and handed to the sidecar's own decoder (`wire/decode.py`): the same limits, the same attribute
depth rule, the same numbers, the same cache key. Only what an HTTP call adds is here: the
principal resolved from a token or the directory, a decision capped by the token's ``exp``,
and where the principal came from in the decision log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cnm_policy.audit import DecisionLog
from cnm_policy.engine.plan import Plan
from cnm_policy.errors import CnmPolicyError, InvalidRequestError
from cnm_policy.model import AccessRequest, Decision, GrantDecision, Principal, Resource
from cnm_policy.ops.health import Freshness
from cnm_policy.principals import PrincipalResolver, ResolvedPrincipal, capped
from cnm_policy.reload import ReloadStatus
from cnm_policy.server.deciding import decide_check, decide_query_batch
from cnm_policy.server.limits import Limits
from cnm_policy.server.ports import CacheStatsView, DecisionEngine, FingerprintedEngine
from cnm_policy.server.queries import (
    Asked,
    GrantingEngine,
    PlanningEngine,
    answer_grant,
    answer_plan,
)
from cnm_policy.server.wire import convert
from cnm_policy.server.wire.decode import RequestDecoder
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["HttpCall", "HttpDecider"]

_SOURCE_KEY = "principal_source"


@dataclass(slots=True)
class HttpCall:
    """What an HTTP request carries besides its body (request id, bearer token, start time),
    and the decisions it made (for the metrics: one call, any number of decisions)."""

    request_id: str | None = None
    token: str | None = None
    started: float = field(default_factory=time.perf_counter)
    allowed: int = 0
    denied: int = 0
    audited: list[str] = field(default_factory=list)  # audit classes of its decisions


class HttpDecider:
    """Decides for the HTTP doors with `engine` (swapped under it at any time, as for gRPC)."""

    def __init__(
        self,
        engine: DecisionEngine,
        *,
        limits: Limits,
        decision_log: DecisionLog,
        resolver: PrincipalResolver | None = None,
        default_tenant: str | None = None,
        reload_status: Callable[[], ReloadStatus] | None = None,
        cache_stats: Callable[[], CacheStatsView] | None = None,
        freshness: Freshness | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.default_tenant = default_tenant
        self.reload_status = reload_status
        self.cache_stats = cache_stats
        self._fingerprinted = engine if isinstance(engine, FingerprintedEngine) else None
        self._log = decision_log
        self._resolver = resolver or PrincipalResolver()
        self._timer = timer
        self._decoder = RequestDecoder(limits)
        # With --max-policy-age, a policy its source has not confirmed lately decides nothing.
        self._freshness = freshness

    @property
    def completes_principals(self) -> bool:
        """True when the server completes principals (a request may name one by id alone)."""
        return self._resolver.configured

    def check(
        self, request: AccessRequest, call: HttpCall, *, explain: bool = False
    ) -> tuple[Decision, str]:
        """One decision and its id; raises a CnmPolicyError otherwise (the door logs it)."""
        self._check_fresh()
        resolved = self._resolve(request.principal, call)
        actor = None if request.actor is None else self._resolver.resolve_actor(request.actor)
        message = convert.access_request_to_proto(
            replace(request, principal=resolved.principal, actor=actor), explain=explain
        )
        decoded = self._decoder.check(message.SerializeToString())
        query = decoded.query
        decision = decide_check(self.engine, self._fingerprinted, decoded)
        decision = capped(decision, resolved.expires_at)
        decision_id = self._log.new_decision_id()
        self._log.record(
            principal=query.principal,
            action=query.action,
            resource=query.resource,
            context=query.context,
            decision=decision,
            decision_id=decision_id,
            request_id=call.request_id,
            latency_seconds=self._timer() - call.started,
            peer={_SOURCE_KEY: resolved.source},
            actor=query.actor,
        )
        if decision.allowed:
            call.allowed += 1
        else:
            call.denied += 1
        if decision.audit_class is not None:
            call.audited.append(decision.audit_class)
        return decision, decision_id

    def check_batch(
        self,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any],
        call: HttpCall,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> tuple[list[Decision], list[str]]:
        """Decisions for one principal, in order, and their ids (errors name the item)."""
        self._check_fresh()
        resolved = self._resolve(principal, call)
        message = pb.CheckBatchRequest(
            principal=convert.principal_to_proto(resolved.principal),
            context=convert.dict_to_struct(context, "context"),
            explain=explain,
        )
        if actor is not None:
            message.actor.CopyFrom(convert.principal_to_proto(self._resolver.resolve_actor(actor)))
        for action, resource in items:
            message.items.add(action=action, resource=convert.resource_to_proto(resource))
        query = self._decoder.batch(message.SerializeToString())
        decisions = decide_query_batch(self.engine, self._fingerprinted, query)
        decisions = [capped(d, resolved.expires_at) for d in decisions]
        ids = self._log.new_decision_ids(len(decisions))
        self._log.record_batch(
            principal=query.principal,
            items=query.items,
            context=query.context,
            decisions=decisions,
            decision_ids=ids,
            request_id=call.request_id,
            latency_seconds=self._timer() - call.started,
            peer={_SOURCE_KEY: resolved.source},
            actor=query.actor,
        )
        allowed = sum(1 for d in decisions if d.allowed)
        call.allowed += allowed
        call.denied += len(decisions) - allowed
        call.audited.extend(d.audit_class for d in decisions if d.audit_class is not None)
        return decisions, ids

    def plan(self, message: pb.PlanResourcesRequest, call: HttpCall) -> tuple[Plan, str]:
        """A query plan for the principal (resolved as for checks) and its id."""
        self._check_fresh()
        engine = self.engine
        if not isinstance(engine, PlanningEngine):
            raise RuntimeError("this engine builds no plans")
        return answer_plan(engine, message, self.limits, self._asked(call))

    def can_grant(self, message: pb.CanGrantRequest, call: HttpCall) -> tuple[GrantDecision, str]:
        """A delegation answer for the granter (resolved as principals are) and its id."""
        self._check_fresh()
        engine = self.engine
        if not isinstance(engine, GrantingEngine):
            raise RuntimeError("this engine answers no delegation")
        return answer_grant(engine, message, self.limits, self._asked(call))

    def _asked(self, call: HttpCall) -> Asked:
        """Logging for one call; the principal vouched for as checks' are (token, directory)."""
        return Asked(
            self._log,
            call.request_id,
            lambda: self._timer() - call.started,
            lambda principal: self._resolve(principal, call).principal,
        )

    def _check_fresh(self) -> None:
        if self._freshness is not None and self._freshness.stale:
            raise self._freshness.error()

    def _resolve(self, principal: Principal, call: HttpCall) -> ResolvedPrincipal:
        if not principal.tenant and self.default_tenant and not self._resolver.configured:
            principal = replace(principal, tenant=self.default_tenant)
        resolved = self._resolver.resolve(principal, call.token)
        if not resolved.principal.tenant and self.default_tenant:
            resolved = replace(
                resolved, principal=replace(resolved.principal, tenant=self.default_tenant)
            )
        return resolved

    def rejected(self, error: Exception, call: HttpCall) -> None:
        """One ``outcome: rejected`` event for a request refused before its decision."""
        if not isinstance(error, CnmPolicyError):
            return
        with contextlib.suppress(Exception):
            self._log.record_rejected(
                error_code=error.code,
                error_field=error.field if isinstance(error, InvalidRequestError) else None,
                request_id=call.request_id,
                latency_seconds=self._timer() - call.started,
            )
