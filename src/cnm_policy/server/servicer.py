"""The `cnm_policy.v1.PolicyService` handlers: decode -> engine -> log -> encode.

Deliberately thin: the engine decides, `wire/` turns bytes into model values and back, `errors`
turns every failure into a status. What is left here is the order of those steps, the deadline
check before evaluating, and the one decision event per decision (its latency covers decoding,
evaluation and logging). `Check` and `CheckBatch` are served on raw bytes (`rpc_handlers`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import grpc

from cnm_policy.audit import DecisionLog
from cnm_policy.errors import CnmPolicyError, InvalidRequestError
from cnm_policy.ops.health import Freshness
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.ops.tracing import CallTrace, Tracing, decision_facts
from cnm_policy.reload import ReloadStatus
from cnm_policy.server.calls import (
    REQUEST_ID_METADATA,
    call_metadata,
    check_deadline,
    peer_identity,
)
from cnm_policy.server.deciding import decide_check, decide_query_batch
from cnm_policy.server.errors import abort_with
from cnm_policy.server.handlers import rpc_handlers
from cnm_policy.server.limits import Limits
from cnm_policy.server.ports import CacheStatsView, DecisionEngine, FingerprintedEngine
from cnm_policy.server.queries import QueryCalls
from cnm_policy.server.wire import convert
from cnm_policy.server.wire.decode import RequestDecoder, parse_request
from cnm_policy.server.wire.info import policy_info_to_proto
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "REQUEST_ID_METADATA",
    "SERVICE_NAME",
    "PolicyServicer",
    "peer_identity",
    "rpc_handlers",
]

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["PolicyService"].full_name


def _no_peer(_context: grpc.ServicerContext) -> None:
    return None


class PolicyServicer(QueryCalls):
    """Serves decisions from `engine`, which may be swapped under it at any time."""

    def __init__(
        self,
        engine: DecisionEngine,
        *,
        limits: Limits,
        decision_log: DecisionLog,
        reload_status: Callable[[], ReloadStatus] | None = None,
        cache_stats: Callable[[], CacheStatsView] | None = None,
        timer: Callable[[], float] = time.perf_counter,
        identify_peers: bool = False,
        metrics: DecisionMetrics | None = None,
        freshness: Freshness | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._engine = engine
        # A caching engine is keyed by the request bytes it would otherwise re-encode.
        self._fingerprinted = engine if isinstance(engine, FingerprintedEngine) else None
        self._limits = limits
        self._log = decision_log
        self._reload_status = reload_status
        self._cache_stats = cache_stats
        self._timer = timer
        # With mTLS, decision events name the caller's certificate.
        self._peer: Callable[[grpc.ServicerContext], Any] = (
            peer_identity if identify_peers else _no_peer
        )
        self._decoder = RequestDecoder(limits)
        self._metrics = metrics
        # With --max-policy-age, a policy its source has not confirmed lately decides nothing.
        self._freshness = freshness
        self._tracing = tracing or Tracing()

    def check_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """One decision: a serialized `CheckRequest` in, a serialized `CheckResponse` out."""
        started = self._timer()
        if self._metrics is not None:
            self._metrics.begin()
        request_id, traceparent = call_metadata(context)
        trace = self._tracing.begin("Check", traceparent)
        try:
            if self._freshness is not None and self._freshness.stale:
                raise self._freshness.error()
            decoded = self._decoder.check(request)
            query = decoded.query
            check_deadline(context)
            decision = decide_check(self._engine, self._fingerprinted, decoded)
            decision_id = self._log.new_decision_id()
            latency = self._timer() - started
            self._log.record(
                principal=query.principal,
                action=query.action,
                resource=query.resource,
                context=query.context,
                decision=decision,
                decision_id=decision_id,
                request_id=request_id,
                latency_seconds=latency,
                peer=self._peer(context),
                trace=None if trace is None else trace.ids,
                actor=query.actor,
            )
            if self._metrics is not None:
                self._metrics.decided("Check", decision.allowed, latency, decision.audit_class)
            if trace is not None:
                trace.end("allow" if decision.allowed else "deny", decision_facts(decision))
            return convert.decision_to_proto(decision, decision_id=decision_id).SerializeToString()
        except Exception as exc:
            self._log_rejected("Check", exc, context, started, request_id, trace)
            abort_with(context, exc)

    def check_batch_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Many decisions for one principal, in request order (serialized messages)."""
        started = self._timer()
        if self._metrics is not None:
            self._metrics.begin()
        request_id, traceparent = call_metadata(context)
        trace = self._tracing.begin("CheckBatch", traceparent)
        try:
            if self._freshness is not None and self._freshness.stale:
                raise self._freshness.error()
            return self._check_batch(request, context, started, request_id, trace)
        except Exception as exc:
            self._log_rejected("CheckBatch", exc, context, started, request_id, trace)
            abort_with(context, exc)

    def _log_rejected(
        self,
        method: str,
        error: Exception,
        context: grpc.ServicerContext,
        started: float,
        request_id: str | None,
        trace: CallTrace | None,
    ) -> None:
        """One ``outcome: rejected`` event for a call refused before its decision.

        Unexpected errors are logged as ``internal_error`` (with an incident id) instead. A log,
        metric or span that fails here must not change the status the caller gets.
        """
        code = error.code if isinstance(error, CnmPolicyError) else "internal"
        with contextlib.suppress(Exception):
            latency = self._timer() - started
            if self._metrics is not None:
                self._metrics.rejected(method, code, latency)
            if trace is not None:
                trace.end("rejected", {"cnm_policy.error_code": code})
            if isinstance(error, CnmPolicyError):
                self._log.record_rejected(
                    error_code=code,
                    error_field=error.field if isinstance(error, InvalidRequestError) else None,
                    request_id=request_id,
                    latency_seconds=latency,
                    peer=self._peer(context),
                    trace=None if trace is None else trace.ids,
                )

    def Check(  # noqa: N802
        self, request: pb.CheckRequest, context: grpc.ServicerContext
    ) -> pb.CheckResponse:
        """`check_bytes` for a message (in-process callers and tests)."""
        return pb.CheckResponse.FromString(self.check_bytes(request.SerializeToString(), context))

    def CheckBatch(  # noqa: N802
        self, request: pb.CheckBatchRequest, context: grpc.ServicerContext
    ) -> pb.CheckBatchResponse:
        """`check_batch_bytes` for a message (in-process callers and tests)."""
        response = self.check_batch_bytes(request.SerializeToString(), context)
        return pb.CheckBatchResponse.FromString(response)

    def policy_info_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """`GetPolicyInfo` on serialized messages: undecodable bytes are INVALID_ARGUMENT."""
        try:
            parse_request(pb.GetPolicyInfoRequest, request)
        except Exception as exc:
            abort_with(context, exc)
        return self.GetPolicyInfo(pb.GetPolicyInfoRequest(), context).SerializeToString()

    def GetPolicyInfo(  # noqa: N802
        self, request: pb.GetPolicyInfoRequest, context: grpc.ServicerContext
    ) -> pb.GetPolicyInfoResponse:
        """The serving bundle, the reload history and the cache counters."""
        try:
            return policy_info_to_proto(
                self._engine.snapshot,
                reload=self._reload_status() if self._reload_status else None,
                cache=self._cache_stats() if self._cache_stats else None,
                limits=self._limits,
            )
        except Exception as exc:
            abort_with(context, exc)

    def _check_batch(
        self,
        request: bytes,
        context: grpc.ServicerContext,
        started: float,
        request_id: str | None,
        trace: CallTrace | None,
    ) -> bytes:
        query = self._decoder.batch(request)
        # A batch is bounded by `max_batch_items`, so one engine call is bounded too: the
        # deadline is checked before the work, like a single check.
        check_deadline(context)
        decisions = decide_query_batch(self._engine, self._fingerprinted, query)
        decision_ids = self._log.new_decision_ids(len(decisions))
        latency = self._timer() - started
        self._log.record_batch(
            principal=query.principal,
            items=query.items,
            context=query.context,
            decisions=decisions,
            decision_ids=decision_ids,
            request_id=request_id,
            latency_seconds=latency,
            peer=self._peer(context),
            trace=None if trace is None else trace.ids,
            actor=query.actor,
        )
        if self._metrics is not None or trace is not None:
            allowed = sum(1 for decision in decisions if decision.allowed)
            if self._metrics is not None:
                classes = (decision.audit_class for decision in decisions)
                self._metrics.decided_batch(
                    "CheckBatch", allowed, len(decisions) - allowed, latency, classes
                )
            if trace is not None:
                trace.end("decided", {"cnm_policy.allowed": str(allowed)})
        return convert.batch_to_proto(decisions, decision_ids).SerializeToString()
