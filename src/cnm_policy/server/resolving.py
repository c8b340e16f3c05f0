"""PolicyService when principals are resolved (`--directory`, `--jwt-*`): the gRPC door decides
through the same path as the HTTP doors, so nobody grants themselves a role over gRPC either.

Served only when a principal source is configured; otherwise the plain `PolicyServicer` (and
its fingerprinted fast path) serves. The bearer token is the ``authorization`` metadata.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.principals import bearer_token
from cnm_policy.server.calls import REQUEST_ID_METADATA, check_deadline
from cnm_policy.server.errors import abort_with
from cnm_policy.server.http.decide import HttpCall, HttpDecider
from cnm_policy.server.servicer import PolicyServicer
from cnm_policy.server.wire import convert
from cnm_policy.server.wire.decode import RequestDecoder

__all__ = ["AUTHORIZATION_METADATA", "ResolvingServicer"]

AUTHORIZATION_METADATA = "authorization"


class ResolvingServicer(PolicyServicer):
    """`Check` and `CheckBatch` with the principal completed by `decider`'s resolver."""

    def __init__(
        self,
        engine: Any,
        *,
        decider: HttpDecider,
        metrics: DecisionMetrics | None = None,
        **options: Any,
    ) -> None:
        super().__init__(engine, metrics=metrics, **options)
        self._decider = decider
        self._resolving_metrics = metrics
        self._requests = RequestDecoder(decider.limits)

    def check_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """One decision for the resolved principal (serialized messages)."""
        call = self._call(context)
        try:
            call.token = bearer_token(_metadata(context, AUTHORIZATION_METADATA))
            decoded = self._requests.check(request)
            check_deadline(context)
            decision, decision_id = self._decider.check(
                decoded.query, call, explain=decoded.explain
            )
            response = convert.decision_to_proto(decision, decision_id=decision_id)
        except Exception as exc:
            self._refused("Check", exc, call)
            abort_with(context, exc)
        self._decided("Check", call)
        return response.SerializeToString()

    def check_batch_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Decisions for the resolved principal, in request order (serialized messages)."""
        call = self._call(context)
        try:
            call.token = bearer_token(_metadata(context, AUTHORIZATION_METADATA))
            query = self._requests.batch(request)
            check_deadline(context)
            decisions, ids = self._decider.check_batch(
                query.principal,
                query.items,
                query.context,
                call,
                explain=query.explain,
                actor=query.actor,
            )
            response = convert.batch_to_proto(decisions, ids)
        except Exception as exc:
            self._refused("CheckBatch", exc, call)
            abort_with(context, exc)
        self._decided("CheckBatch", call)
        return response.SerializeToString()

    def _call(self, context: grpc.ServicerContext) -> HttpCall:
        if self._resolving_metrics is not None:
            self._resolving_metrics.begin()
        request_id = _metadata(context, REQUEST_ID_METADATA)
        return HttpCall(request_id=request_id[:128] if request_id else None)

    def _refused(self, method: str, error: Exception, call: HttpCall) -> None:
        self._decider.rejected(error, call)
        if self._resolving_metrics is not None:
            code = getattr(error, "code", "internal")
            seconds = time.perf_counter() - call.started
            self._resolving_metrics.rejected(method, str(code), seconds)

    def _decided(self, method: str, call: HttpCall) -> None:
        if self._resolving_metrics is not None:
            seconds = time.perf_counter() - call.started
            metrics = self._resolving_metrics
            metrics.decided_batch(method, call.allowed, call.denied, seconds, call.audited)


def _metadata(context: grpc.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata():
        if key == name:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None
