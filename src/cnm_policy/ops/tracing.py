"""W3C trace context for decisions: the caller's `traceparent` into each decision event, and
server spans over OTLP only when the standard ``OTEL_*`` variables ask for them.

Off by default and then nearly free: a call without ``traceparent`` costs one dict lookup;
one with it costs a regex match. The OpenTelemetry SDK is imported only when exporting.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from cnm_policy.errors import ServerConfigError

__all__ = [
    "CallTrace",
    "Tracing",
    "decision_facts",
    "parse_traceparent",
    "tracing_from_environment",
]

TRACEPARENT = "traceparent"
_MAX_TRACEPARENT_CHARS = 512  # a future version may append fields; the caller's input is bounded
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace_id, parent span_id) from a valid W3C traceparent; ``None`` for anything else."""
    if not value or len(value) > _MAX_TRACEPARENT_CHARS:
        return None
    found = _TRACEPARENT.fullmatch(value.strip())
    if found is None:
        return None
    version, trace_id, span_id, _flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def decision_facts(decision: Any) -> dict[str, str]:
    """A decision's span attributes: which policy decided (never who asked)."""
    return {
        "cnm_policy.policy_version": decision.policy_version,
        "cnm_policy.policy_digest": decision.policy_digest,
    }


class CallTrace(Protocol):
    """One call's trace: the ids its decision events carry, and its end."""

    ids: dict[str, str]

    def end(self, outcome: str, attributes: Mapping[str, str] | None = None) -> None:
        """The call's answer is known (``allow``, ``deny``, ``rejected``, ``error``)."""


class _Passive:
    """Not exporting: the events carry the caller's trace id and span id."""

    __slots__ = ("ids",)

    def __init__(self, trace_id: str, span_id: str) -> None:
        self.ids = {"trace_id": trace_id, "span_id": span_id}

    def end(self, outcome: str, attributes: Mapping[str, str] | None = None) -> None:
        """Nothing to export."""


class _Exported:
    """A server span, child of the caller's; the events carry its trace id and its own id."""

    __slots__ = ("_span", "ids")

    def __init__(self, span: Any) -> None:
        self._span = span
        context = span.get_span_context()
        self.ids = {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}

    def end(self, outcome: str, attributes: Mapping[str, str] | None = None) -> None:
        """Set the outcome and end the span (the SDK batches and exports it)."""
        self._span.set_attribute("cnm_policy.outcome", outcome)
        for key, value in (attributes or {}).items():
            self._span.set_attribute(key, value)
        self._span.end()


class Tracing:
    """Begins a `CallTrace` per call; exports spans only when built with a tracer provider."""

    def __init__(self, provider: Any = None, service: str = "cnm_policy.v1.PolicyService") -> None:
        self._provider = provider
        self._service = service
        self._tracer = provider.get_tracer("cnm_policy") if provider is not None else None
        self.exporting = provider is not None

    def begin(self, method: str, traceparent: str | None) -> CallTrace | None:
        """The call's trace, or ``None`` when not exporting and the caller sent no valid one."""
        if self._tracer is None:
            ids = parse_traceparent(traceparent)
            return None if ids is None else _Passive(*ids)
        return _Exported(self._start(method, traceparent))

    def _start(self, method: str, traceparent: str | None) -> Any:
        from opentelemetry.trace import SpanKind  # noqa: PLC0415 - only when exporting
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        parent = None
        if parse_traceparent(traceparent) is not None:
            parent = TraceContextTextMapPropagator().extract({TRACEPARENT: str(traceparent)})
        assert self._tracer is not None
        return self._tracer.start_span(
            f"{self._service}/{method}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": self._service, "rpc.method": method},
        )

    def shutdown(self, timeout: float = 3.0) -> None:
        """Export what is pending and stop, waiting at most `timeout` seconds.

        The SDK's own flush waits up to 30 s for an unreachable collector: a sidecar's stop
        must not (the export thread is a daemon and is left behind).
        """
        if self._provider is not None:
            flusher = threading.Thread(target=self._provider.shutdown, daemon=True)
            flusher.start()
            flusher.join(timeout)


def tracing_from_environment(environ: Mapping[str, str]) -> Tracing:
    """Exporting over OTLP/HTTP when an OTLP endpoint is set and the SDK is not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Tracing()
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter == "none" or not any(environ.get(name) for name in _ENDPOINTS):
        return Tracing()
    if exporter != "otlp":
        raise ServerConfigError(f"OTEL_TRACES_EXPORTER: `{exporter}` is not supported (otlp)")
    for name in _PROTOCOLS:
        protocol = environ.get(name, "http/protobuf").strip()
        if protocol != "http/protobuf":
            raise ServerConfigError(f"{name}: `{protocol}` is not supported (http/protobuf)")
    try:
        return Tracing(_provider(environ))
    except ImportError as exc:  # e.g. another package's copy of the OTLP protos over ours
        raise ServerConfigError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT: the OTLP exporter cannot be loaded: {exc}"
        ) from exc


def _provider(environ: Mapping[str, str]) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    defaults = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": "cnm-policy"}
    provider = TracerProvider(resource=Resource.create(defaults))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
