"""Decision sinks: one JSON line per decision, one write per call, nothing lost or interleaved."""

from __future__ import annotations

import datetime
import io
import json
import math
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from cnm_policy.audit import (
    AttributeAllowList,
    DecisionLog,
    JsonLinesSink,
    StructlogSink,
    render_json_lines,
    sinks,
)
from cnm_policy.cli.serve import configure_logging, decision_sink
from cnm_policy.model import Decision, Principal, Resource

PRINCIPAL = Principal("u-1", "acme", ("customer-admin",), {"mfa": True})
RESOURCES = [Resource("device", f"dev-{i}", "acme/emea") for i in range(3)]
DECISION = Decision(
    allowed=True,
    rule_ids=("allow-read",),
    reason="allowed by rule `allow-read`",
    policy_name="cnm",
    policy_version="1.0.0",
    policy_digest="sha256:abc",
)


ENVELOPE = {
    "timestamp": "t",
    "level": "info",
    "event": "decision",
    "request_id": None,
    "latency_ms": 0.5,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


class CountingStream(io.StringIO):
    """A text stream that counts the writes and flushes it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _record_batch(log: DecisionLog, count: int = 3) -> None:
    log.record_batch(
        principal=PRINCIPAL,
        items=[("read", resource) for resource in RESOURCES[:count]],
        context={},
        decisions=[DECISION] * count,
        decision_ids=log.new_decision_ids(count),
        request_id="req-1",
        latency_seconds=0.002,
    )


def test_a_batch_is_one_json_line_per_decision_written_and_flushed_once() -> None:
    """Each decision is its own line, in item order; the call costs one write and one flush."""
    stream = CountingStream()
    _record_batch(DecisionLog(sink=JsonLinesSink(stream), new_id=lambda: "call"))
    lines = stream.getvalue().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["resource_id"] for e in events] == ["dev-0", "dev-1", "dev-2"]
    assert [e["decision_id"] for e in events] == ["call-0", "call-1", "call-2"]
    assert all(list(e)[:3] == ["timestamp", "level", "event"] for e in events)
    assert {(e["level"], e["event"]) for e in events} == {("info", "decision")}
    assert (stream.writes, stream.flushes) == (1, 1)


def _record_twice(log: DecisionLog) -> None:
    """A batch and a Check, each twice, with fingerprints: the second time from remembered parts."""
    for _ in range(2):
        log.record_batch(
            principal=PRINCIPAL,
            items=[("read", resource) for resource in RESOURCES],
            context={"channel": "portal"},
            decisions=[DECISION] * len(RESOURCES),
            decision_ids=log.new_decision_ids(len(RESOURCES)),
            request_id="req-1",
            latency_seconds=0.002,
            shared_fingerprint=b"principal",
            item_fingerprints=[b"item-%d" % index for index in range(len(RESOURCES))],
        )
        log.record(
            principal=PRINCIPAL,
            action="read",
            resource=RESOURCES[0],
            context={},
            decision=DECISION,
            decision_id=log.new_decision_id(),
            request_id=None,
            latency_seconds=float("nan"),
            fingerprint=b"check",
        )


def test_json_lines_carry_the_same_fields_as_the_structlog_pipeline() -> None:
    """Switching sinks changes how events are written, never what they say or in which order
    (structlog places the event name and level itself)."""
    stream = io.StringIO()
    clock = lambda: 1_767_225_600.0  # noqa: E731
    allow = AttributeAllowList.parse(["principal.mfa", "context.channel"])
    _record_twice(
        DecisionLog(sink=JsonLinesSink(stream), new_id=lambda: "c", clock=clock, allow=allow)
    )
    with capture_logs() as captured:
        _record_twice(
            DecisionLog(sink=StructlogSink(), new_id=lambda: "c", clock=clock, allow=allow)
        )
    written = [json.loads(line) for line in stream.getvalue().splitlines()]
    for event in captured:
        event["level"] = event.pop("log_level")
        if math.isnan(event["latency_ms"]):
            event["latency_ms"] = None  # JSON has no NaN: the JSON sink writes null
    assert written == captured
    assert [[k for k in e if k not in ("event", "level")] for e in written] == [
        [k for k in e if k not in ("event", "level")] for e in captured
    ]


def test_structlog_processors_cannot_change_remembered_parts() -> None:
    """A processor editing an event's values in place leaves the next event of the same
    request untouched."""

    def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event["principal_roles"].append("scrubbed")
        event["rule_ids"].clear()
        return event

    log = DecisionLog(sink=StructlogSink(), new_id=lambda: "c")
    with capture_logs(processors=[scrub]) as captured:
        for _ in range(2):
            log.record_batch(
                principal=PRINCIPAL,
                items=[("read", RESOURCES[0])],
                context={},
                decisions=[DECISION],
                decision_ids=["d"],
                request_id=None,
                latency_seconds=0.0,
                shared_fingerprint=b"principal",
                item_fingerprints=[b"item"],
            )
    assert [e["principal_roles"] for e in captured] == [["customer-admin", "scrubbed"]] * 2
    assert [e["rule_ids"] for e in captured] == [[], []]


def test_an_empty_call_writes_nothing() -> None:
    """A batch of zero items leaves no empty line behind."""
    stream = CountingStream()
    sink = JsonLinesSink(stream)
    sink.emit(timestamp="t", request_id=None, latency_ms=1.0, shared="", decisions=[], batch=True)
    assert (stream.getvalue(), stream.writes) == ("", 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2**70, 2**70), (object, repr(object)), ({1: "x"}, {"1": "x"}), ((1, 2), [1, 2])],
)
def test_values_orjson_cannot_encode_still_produce_a_valid_line(value: Any, expected: Any) -> None:
    """An odd allow-listed attribute value never costs the decision its log line."""
    shared = JsonLinesSink(io.StringIO()).prepare({"context": {"odd": value}})
    (line,) = render_json_lines("t", None, 0.5, shared, [("d", "")], batch=False)
    assert json.loads(line) == {**ENVELOPE, "context": {"odd": expected}, "decision_id": "d"}


def test_concurrent_batches_and_operational_events_never_interleave(tmp_path: Path) -> None:
    """Decision lines and structlog's own events share the stream (and its lock) line by line."""
    stream = configure_logging(tmp_path / "audit.log", "json", "info")
    log = DecisionLog(sink=decision_sink(stream, "json", "info"))
    operational = structlog.get_logger("ops")

    def work() -> None:
        for _ in range(50):
            _record_batch(log)
            operational.info("tick", detail="x" * 200)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.flush()
    events = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    names = [event["event"] for event in events]
    assert (names.count("decision"), names.count("tick")) == (4 * 50 * 3, 4 * 50)


@pytest.mark.parametrize(
    ("log_format", "level", "sink"),
    [
        ("json", "info", JsonLinesSink),
        ("auto", "debug", JsonLinesSink),  # not a terminal: JSON
        ("console", "info", StructlogSink),
        ("json", "warning", StructlogSink),  # structlog's level filter drops decisions
    ],
)
def test_serve_picks_the_sink_from_its_logging_flags(
    log_format: str, level: str, sink: type[object]
) -> None:
    """JSON at info level (the production setting) takes the one-write-per-call path."""
    assert type(decision_sink(io.StringIO(), log_format, level)) is sink


def _fields(prefix: str) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.text(max_size=5).map(lambda key: prefix + key)
    return st.dictionaries(keys, json_values, max_size=4)


@given(
    timestamp=st.text(max_size=8),
    request_id=st.none() | st.text(max_size=8),
    latency_ms=st.floats(),
    shared=_fields("s"),
    decisions=st.lists(st.tuples(st.text(max_size=8), _fields("o")), max_size=3),
    batch=st.booleans(),
)
def test_each_line_is_the_merged_event_in_order(
    timestamp: str,
    request_id: str | None,
    latency_ms: float,
    shared: dict[str, Any],
    decisions: list[tuple[str, dict[str, Any]]],
    batch: bool,
) -> None:
    """Envelope text, prepared parts and ids join into exactly the documented event.

    Any text is escaped where it must be, and a non-finite latency (which JSON cannot hold)
    is written as null.
    """
    sink = JsonLinesSink(io.StringIO())
    prepared = [(decision_id, sink.prepare(outcome)) for decision_id, outcome in decisions]
    lines = render_json_lines(
        timestamp, request_id, latency_ms, sink.prepare(shared), prepared, batch=batch
    )
    expected = []
    for index, (decision_id, outcome) in enumerate(decisions):
        event: dict[str, Any] = {
            "timestamp": timestamp,
            "level": "info",
            "event": "decision",
            "request_id": request_id,
            "latency_ms": latency_ms if math.isfinite(latency_ms) else None,
        }
        event.update({"batch_size": len(decisions)} if batch else {})
        event.update(shared)
        event.update({"batch_index": index} if batch else {})
        event.update({"decision_id": decision_id}, **outcome)
        expected.append(event)
    parsed = [json.loads(line) for line in lines]
    assert parsed == expected
    assert [list(event) for event in parsed] == [list(event) for event in expected]


@pytest.mark.parametrize(
    ("value", "expected_text"),
    [
        ({datetime.date(2026, 1, 2): "x"}, '{"2026-01-02":"x"}'),
        ({1: "é", "big": 2**70}, '{"1":"é","big":1180591620717411303424}'),
        ({"big": 2**70, "nan": math.nan}, '{"big":1180591620717411303424,"nan":null}'),
    ],
)
def test_odd_values_render_compact_like_every_other_line(value: Any, expected_text: str) -> None:
    """Non-string keys and huge integers keep the compact, unescaped style of orjson lines."""
    shared = JsonLinesSink(io.StringIO()).prepare({"context": value})
    (line,) = render_json_lines("t", None, 0.5, shared, [("d", "")], batch=False)
    assert line == (
        '{"timestamp":"t","level":"info","event":"decision","request_id":null,"latency_ms":0.5,'
        '"context":' + expected_text + ',"decision_id":"d"}'
    )


_LATENCIES = (
    st.sampled_from([0.0, -0.0, 0.012, 1.5, -0.012, math.nan, math.inf, 1e300]) | st.floats()
)
_TIMESTAMPS = st.sampled_from(["2026-11-24T01:02:03.004Z", 'a "quoted" \\ one', "é\n"])


@given(st.lists(st.tuples(_TIMESTAMPS, _LATENCIES), max_size=30))
def test_remembered_timestamps_and_latencies_never_change_a_line(
    calls: list[tuple[str, float]],
) -> None:
    """The latest timestamp's JSON and recent latencies' texts are remembered; every line still
    holds exactly its own values (0.0 and -0.0 are equal keys but different numbers)."""
    for timestamp, latency_ms in calls:
        (line,) = render_json_lines(timestamp, None, latency_ms, "", [("d", "")], batch=False)
        event = json.loads(line)
        assert event["timestamp"] == timestamp
        assert f',"latency_ms":{orjson.dumps(latency_ms).decode()},' in line
        if math.isfinite(latency_ms):
            assert event["latency_ms"] == latency_ms
            assert math.copysign(1.0, event["latency_ms"]) == math.copysign(1.0, latency_ms)
        else:
            assert event["latency_ms"] is None


def test_remembered_latency_texts_stay_bounded() -> None:
    """A stream of distinct latencies never grows the remembered texts past their bound."""
    for micros in range(1, 10_000):
        render_json_lines("t", None, micros / 1000, "", [("d", "")], batch=False)
        assert len(sinks._latency_texts) <= sinks._LATENCY_TEXTS
