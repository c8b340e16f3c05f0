"""Trace context: valid W3C traceparents give ids, anything else none; passive by default."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.errors import ServerConfigError
from cnm_policy.ops.tracing import Tracing, parse_traceparent, tracing_from_environment

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_a_valid_traceparent_gives_its_ids() -> None:
    """Version 00 with a sampled flag: the trace id and the caller's span id."""
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-01") == (TRACE, SPAN)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        f"00-{TRACE}-{SPAN}",
        f"00-{'0' * 32}-{SPAN}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"ff-{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-01-extra",
        f"00-{TRACE.upper()}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-01" + "x" * 600,
    ],
)
def test_invalid_traceparents_give_none(value: str | None) -> None:
    """Malformed, all-zero, version ff, extra fields on version 00, upper case, too long."""
    assert parse_traceparent(value) is None


def test_a_future_version_may_append_fields() -> None:
    """Versions after 00 may carry more fields: the first four still count."""
    assert parse_traceparent(f"01-{TRACE}-{SPAN}-01-more") == (TRACE, SPAN)


@given(st.text(max_size=100))
def test_any_metadata_value_is_parsed_or_ignored(value: str) -> None:
    """The caller's header never raises: ids of the right shape, or none."""
    ids = parse_traceparent(value)
    assert ids is None or (len(ids[0]), len(ids[1])) == (32, 16)


def test_passive_tracing_carries_the_callers_ids() -> None:
    """Not exporting: the events carry the caller's trace and span ids; no header, no trace."""
    tracing = Tracing()
    trace = tracing.begin("Check", f"00-{TRACE}-{SPAN}-01")
    assert trace is not None and trace.ids == {"trace_id": TRACE, "span_id": SPAN}
    assert tracing.begin("Check", None) is None


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_SERVICE_NAME": "x"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"},
    ],
)
def test_export_is_off_unless_an_endpoint_is_set(environ: dict[str, str]) -> None:
    """No OTLP endpoint, or the SDK disabled, or the exporter none: nothing is exported."""
    assert tracing_from_environment(environ).exporting is False


def test_export_is_on_with_an_endpoint() -> None:
    """An OTLP endpoint turns export on (spans are batched; nothing is sent until one ends)."""
    tracing = tracing_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    try:
        assert tracing.exporting is True
    finally:
        tracing.shutdown()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: `zipkin` is not supported"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL: `grpc` is not"),
    ],
)
def test_unsupported_exporters_are_configuration_errors(
    environ: dict[str, str], message: str
) -> None:
    """Asking for what is not installed fails loudly at startup, naming the variable."""
    with pytest.raises(ServerConfigError, match=message):
        tracing_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:1", **environ})
