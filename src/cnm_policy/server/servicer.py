"""The `cnm_policy.v1.PolicyService` handlers: limits -> convert -> engine -> convert back.

Deliberately thin. Everything that decides lives in the engine; everything about the wire lives
in `convert`; every failure becomes a status in `errors`. What is left here is the order of those
steps, the deadline check before evaluating, and the one audit event per decision, whose
latency covers the sidecar's whole share of the call (limits, conversion, evaluation).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from cnm_policy.audit import DecisionLog
from cnm_policy.errors import InvalidRequestError
from cnm_policy.reload import ReloadStatus
from cnm_policy.server import convert
from cnm_policy.server.errors import DeadlineExceededError, abort_with
from cnm_policy.server.limits import Limits, check_batch_request, check_request
from cnm_policy.server.ports import CacheStatsView, DecisionEngine
from cnm_policy.v1 import policy_pb2 as pb
from cnm_policy.v1 import policy_pb2_grpc as pb_grpc

__all__ = ["REQUEST_ID_METADATA", "PolicyServicer"]

REQUEST_ID_METADATA = "x-request-id"


class PolicyServicer(pb_grpc.PolicyServiceServicer):
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
    ) -> None:
        self._engine = engine
        self._limits = limits
        self._log = decision_log
        self._reload_status = reload_status
        self._cache_stats = cache_stats
        self._timer = timer

    def Check(  # noqa: N802
        self, request: pb.CheckRequest, context: grpc.ServicerContext
    ) -> pb.CheckResponse:
        """One decision."""
        try:
            return self._check(request, context)
        except Exception as exc:
            abort_with(context, exc)

    def CheckBatch(  # noqa: N802
        self, request: pb.CheckBatchRequest, context: grpc.ServicerContext
    ) -> pb.CheckBatchResponse:
        """Many decisions for one principal, in request order."""
        try:
            return self._check_batch(request, context)
        except Exception as exc:
            abort_with(context, exc)

    def GetPolicyInfo(  # noqa: N802
        self, request: pb.GetPolicyInfoRequest, context: grpc.ServicerContext
    ) -> pb.GetPolicyInfoResponse:
        """The serving bundle, the reload history and the cache counters."""
        try:
            return convert.policy_info_to_proto(
                self._engine.snapshot,
                reload=self._reload_status() if self._reload_status else None,
                cache=self._cache_stats() if self._cache_stats else None,
                limits=self._limits,
            )
        except Exception as exc:
            abort_with(context, exc)

    def _check(self, request: pb.CheckRequest, context: grpc.ServicerContext) -> pb.CheckResponse:
        started = self._timer()
        check_request(request, self._limits)
        query = convert.access_request_from_proto(request, self._limits)
        _check_deadline(context)
        decision = self._engine.check(
            query.principal, query.action, query.resource, query.context, explain=request.explain
        )
        decision_id = self._log.new_decision_id()
        self._log.record(
            principal=query.principal,
            action=query.action,
            resource=query.resource,
            context=query.context,
            decision=decision,
            decision_id=decision_id,
            request_id=_request_id(context),
            latency_seconds=self._timer() - started,
        )
        return convert.decision_to_proto(decision, decision_id=decision_id)

    def _check_batch(
        self, request: pb.CheckBatchRequest, context: grpc.ServicerContext
    ) -> pb.CheckBatchResponse:
        started = self._timer()
        check_batch_request(request, self._limits)
        query = convert.batch_from_proto(request, self._limits)
        # A batch is bounded by `max_batch_items`, so one engine call is bounded too: the
        # deadline is checked before the work, like a single check.
        _check_deadline(context)
        try:
            decisions = self._engine.check_batch(
                query.principal, query.items, query.context, explain=request.explain
            )
        except InvalidRequestError as exc:
            raise self._locate(exc, query) from exc
        if len(decisions) != len(query.items):  # fail closed on a broken engine contract
            raise RuntimeError(f"engine returned {len(decisions)} decisions for {len(query.items)}")
        decision_ids = self._log.new_decision_ids(len(decisions))
        self._log.record_batch(
            principal=query.principal,
            items=query.items,
            context=query.context,
            decisions=decisions,
            decision_ids=decision_ids,
            request_id=_request_id(context),
            latency_seconds=self._timer() - started,
        )
        return convert.batch_to_proto(decisions, decision_ids)

    def _locate(self, error: InvalidRequestError, query: convert.BatchQuery) -> Exception:
        """Name the batch item behind an item-level error (``items[3].resource.tenant``).

        The engine validates items as it meets them and reports fields relative to the item;
        only on this error path is each item re-checked alone to find which one it was.
        """
        if not error.field.startswith(("action", "resource")):
            return error  # principal or context: not about one item
        for index, item in enumerate(query.items):
            try:
                self._engine.check_batch(query.principal, [item], query.context)
            except InvalidRequestError as item_error:
                return type(item_error)(f"items[{index}].{item_error.field}", item_error.message)
        return error


def _check_deadline(context: grpc.ServicerContext) -> None:
    remaining: Any = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceededError()


def _request_id(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == REQUEST_ID_METADATA:
            return value if isinstance(value, str) else value.decode("ascii", "replace")
    return None
