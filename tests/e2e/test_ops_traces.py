"""Traces: the caller's traceparent reaches the decision log, and with OTEL_* set, server spans
with those very ids arrive at a real OTLP/HTTP receiver started by the test."""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from structlog.testing import capture_logs

from cnm_policy.ops.tracing import tracing_from_environment
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.runtime import RuntimeOptions, open_runtime
from tests.e2e.harness import copy_bundle, policy_stub, serve
from tests.e2e.test_ops_metrics import ALLOW, DENY

pytestmark = pytest.mark.e2e

TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{CALLER_SPAN}-01"


class _Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: decodes each export request and keeps its spans."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Any] = []
        self.paths: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        """Accept one ExportTraceServiceRequest (protobuf, maybe gzip)."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        self.server.paths.append(self.path)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.server.spans.extend(scope_spans.spans)
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    """A receiver on a free loopback port, shut down after the test."""
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_traceparent_ids_reach_the_decision_log_without_export(tmp_path: Path) -> None:
    """Export off (the default): the event carries the caller's trace id and span id."""
    with serve(copy_bundle(tmp_path / "bundle")) as served, capture_logs() as logs:
        served.stub.Check(ALLOW, metadata=(("traceparent", TRACEPARENT),), timeout=5)
        served.stub.Check(ALLOW, metadata=(("traceparent", "garbage"),), timeout=5)
    events = [event for event in logs if event["event"] == "decision"]
    assert [(e.get("trace_id"), e.get("span_id")) for e in events] == [
        (TRACE, CALLER_SPAN),
        (None, None),
    ]


def test_spans_arrive_at_the_otlp_receiver_with_the_logged_ids(
    tmp_path: Path, receiver: _Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, each call's server span is exported, child of the
    caller's span, and the decision event names that span."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.server_port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "cnm-policy-e2e")
    tracing = tracing_from_environment(dict(os.environ))
    assert tracing.exporting
    runtime = open_runtime(
        RuntimeOptions(
            policies=copy_bundle(tmp_path / "bundle"), watch_interval=None, tracing=tracing
        ),
        ServerConfig(listen="127.0.0.1:0", grace_seconds=2.0),
    )
    address = runtime.start()
    try:
        with grpc.insecure_channel(address) as channel, capture_logs() as logs:
            stub = policy_stub(channel)
            stub.Check(ALLOW, metadata=(("traceparent", TRACEPARENT),), timeout=5)
            stub.Check(DENY, timeout=5)  # no caller trace: a new trace starts here
    finally:
        runtime.stop(grace=2.0)  # flushes the batch of spans
    events = [event for event in logs if event["event"] == "decision"]
    logged = [(event["trace_id"], event["span_id"]) for event in events]
    exported = {(span.trace_id.hex(), span.span_id.hex()): span for span in receiver.spans}
    assert set(logged) <= set(exported)
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    traced = exported[logged[0]]
    assert (logged[0][0], traced.parent_span_id.hex()) == (TRACE, CALLER_SPAN)
    assert logged[0][1] != CALLER_SPAN  # the server's own span, not the caller's
    fresh = exported[logged[1]]
    assert (logged[1][0] != TRACE, fresh.parent_span_id) == (True, b"")
    outcomes = [
        {kv.key: kv.value.string_value for kv in exported[ids].attributes}["cnm_policy.outcome"]
        for ids in logged
    ]
    assert outcomes == ["allow", "deny"]
    assert traced.name == "cnm_policy.v1.PolicyService/Check"
