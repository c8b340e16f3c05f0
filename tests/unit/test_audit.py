"""Decision events: one canonical `decision` event per decision, attribute values redacted."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from cnm_policy.audit import AttributeAllowList, DecisionLog, JsonLinesSink, format_timestamp
from cnm_policy.model import Decision, Principal, Resource

PRINCIPAL = Principal("u-1", "acme", ("customer-admin",), {"mfa": True, "email": "ann@example.com"})
RESOURCE = Resource("device", "dev-1", "acme/emea", {"site": "paris", "serial": "SN-99"})
CONTEXT = {"channel": "portal", "ticket": "CHG-1"}
DECISION = Decision(
    allowed=False,
    rule_ids=("deny-freeze",),
    reason="denied by rule `deny-freeze`",
    policy_name="cnm",
    policy_version="1.2.0",
    policy_digest="sha256:abc",
    errors=("window start `secret-value` is not an RFC 3339 timestamp",),
    cached=True,
    matched_denies=("deny-freeze", "deny-shared"),
)


def _record(log: DecisionLog, **changes: Any) -> list[MutableMapping[str, Any]]:
    arguments: dict[str, Any] = {
        "principal": PRINCIPAL,
        "action": "reboot",
        "resource": RESOURCE,
        "context": CONTEXT,
        "decision": DECISION,
        "decision_id": "dec-1",
        "request_id": "req-1",
        "latency_seconds": 0.0012345,
    }
    arguments.update(changes)
    with capture_logs() as logs:
        log.record(**arguments)
    return logs


def test_decision_event_has_the_canonical_fields() -> None:
    """The event carries who, what, on what, the answer, why, which policy, and how fast."""
    logs = _record(DecisionLog(clock=lambda: 1_767_225_600.25))
    assert logs == [
        {
            "event": "decision",
            "log_level": "info",
            "timestamp": "2026-01-01T00:00:00.250Z",
            "decision_id": "dec-1",
            "request_id": "req-1",
            "principal_id": "u-1",
            "principal_tenant": "acme",
            "principal_roles": ["customer-admin"],
            "action": "reboot",
            "resource_kind": "device",
            "resource_id": "dev-1",
            "resource_tenant": "acme/emea",
            "allowed": False,
            "rule_ids": ["deny-freeze"],
            "matched_denies": ["deny-freeze", "deny-shared"],
            "policy_name": "cnm",
            "policy_version": "1.2.0",
            "policy_digest": "sha256:abc",
            "cached": True,
            "latency_ms": 1.234,
            "error_count": 1,
        }
    ]


def test_attribute_values_are_not_logged_by_default() -> None:
    """No attribute or context value (nor condition error text) reaches the log unless listed."""
    logs = _record(DecisionLog())
    rendered = repr(logs)
    for secret in ("ann@example.com", "SN-99", "paris", "CHG-1", "portal", "secret-value"):
        assert secret not in rendered


def test_allow_listed_attributes_are_logged() -> None:
    """Only the allow-listed keys appear, grouped by where they came from."""
    allow = AttributeAllowList.parse(["resource.site", "context.channel", "principal.absent"])
    (event,) = _record(DecisionLog(allow=allow))
    assert event["resource_attributes"] == {"site": "paris"}
    assert event["context"] == {"channel": "portal"}
    assert "principal_attributes" not in event


def test_batch_logs_one_event_per_item_with_its_position() -> None:
    """A CheckBatch logs each decision, in order, saying which item of how many it is."""
    other = Resource("ticket", "t-9", "acme", {"site": "lyon"})
    allow = AttributeAllowList.parse(["resource.site", "context.channel"])
    log = DecisionLog(allow=allow, new_id=lambda: "call-1", clock=lambda: 0.0)
    ids = log.new_decision_ids(2)
    with capture_logs() as logs:
        log.record_batch(
            principal=PRINCIPAL,
            items=[("reboot", RESOURCE), ("read", other)],
            context=CONTEXT,
            decisions=[DECISION, DECISION],
            decision_ids=ids,
            request_id="req-2",
            latency_seconds=0.5,
        )
    assert ids == ["call-1-0", "call-1-1"]
    assert [
        (e["decision_id"], e["batch_index"], e["batch_size"], e["resource_id"]) for e in logs
    ] == [("call-1-0", 0, 2, "dev-1"), ("call-1-1", 1, 2, "t-9")]
    assert [e["resource_attributes"] for e in logs] == [{"site": "paris"}, {"site": "lyon"}]
    assert {e["request_id"] for e in logs} == {"req-2"}
    assert {e["latency_ms"] for e in logs} == {500.0}
    assert {str(e["context"]) for e in logs} == {str({"channel": "portal"})}


def test_missing_request_id_is_null_and_long_ones_are_clipped() -> None:
    """The caller-supplied request id is optional and cannot bloat the log."""
    (without,) = _record(DecisionLog(), request_id=None)
    (clipped,) = _record(DecisionLog(), request_id="r" * 1000)
    assert without["request_id"] is None
    assert len(clipped["request_id"]) == 128


def test_decision_ids_come_from_the_injected_source() -> None:
    """Decision ids are injectable (tests) and unique by default (uuid4)."""
    assert DecisionLog(new_id=lambda: "fixed").new_decision_id() == "fixed"
    default = DecisionLog()
    assert default.new_decision_id() != default.new_decision_id()


@pytest.mark.parametrize("name", ["site", "resource.", "request.site"])
def test_malformed_allow_list_entries_are_rejected(name: str) -> None:
    """Allow-list entries must be `principal.<key>`, `resource.<key>` or `context.<key>`."""
    with pytest.raises(ValueError, match="is not"):
        AttributeAllowList.parse([name])


def test_timestamps_are_rfc3339_utc_with_milliseconds() -> None:
    """Timestamps sort lexically and say UTC explicitly."""
    assert format_timestamp(1.5) == "1970-01-01T00:00:01.500Z"


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_timestamps_match_the_datetime_rendering(epoch: float) -> None:
    """The fast formatter (cached second) agrees with datetime to the millisecond, rounding too."""
    expected = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    assert expected.replace("+00:00", "Z") == format_timestamp(epoch)


def _datetime_text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@given(
    st.floats(min_value=-6e10, max_value=2.5e11, allow_nan=False),
    st.lists(
        st.sampled_from([0.0, 2.4e-7, 5e-7, 1e-6, 1.5e-6, 9.985e-4, 1e-3])
        | st.floats(min_value=-2e-3, max_value=2e-3),
        max_size=40,
    ),
)
def test_readings_close_together_match_the_datetime_rendering(
    start: float, steps: list[float]
) -> None:
    """The per-millisecond cache never outlives its millisecond, at any epoch."""
    epoch = start
    for step in [0.0, *steps]:
        epoch += step
        assert format_timestamp(epoch) == _datetime_text(epoch)


@pytest.mark.parametrize(
    "readings",
    [
        [1000.9999996, 1000.0005],  # rounded up into the next second; the clock steps back
        [1000.5005, 1000.49999945],  # a reading just before the remembered millisecond
        [2.0**32 + 0.5005, 2.0**32 + 0.5009, 2.0**32 + 0.50099],  # floats 1 us apart
        [34534517946.411575, 34534517946.412],  # floats 4 us apart: no range is exact
    ],
)
def test_the_remembered_millisecond_answers_only_for_its_own_readings(
    readings: list[float],
) -> None:
    """Carries, readings that go back, and epochs where floats are coarse."""
    assert [format_timestamp(epoch) for epoch in readings] == [
        _datetime_text(epoch) for epoch in readings
    ]


@pytest.mark.parametrize("start", [1_700_000_000.0, 4_294_967_295.997, 12.0, 2.0**32 + 7])
def test_every_float_across_millisecond_edges_formats_like_datetime(start: float) -> None:
    """Walking across three milliseconds in steps finer than a microsecond (two floats apart
    at today's epochs, where floats are a quarter microsecond apart)."""
    epoch, end = start, start + 0.003
    while epoch < end:
        assert format_timestamp(epoch) == _datetime_text(epoch)
        epoch += max(2 * math.ulp(epoch), 1e-7)


def test_default_decision_ids_are_128_random_bits() -> None:
    """Without an injected source, ids are 32 hex digits and do not repeat."""
    log = DecisionLog()
    ids = {log.new_decision_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_non_finite_latency_is_logged_not_raised() -> None:
    """A timer gone wrong costs the event its latency value, never the call."""
    log = DecisionLog(clock=lambda: 0.0, new_id=lambda: "d")
    with capture_logs() as logs:
        log.record(
            principal=Principal("u", "acme", ("viewer",)),
            action="read",
            resource=Resource("device", "x", "acme"),
            context={},
            decision=Decision(False, (), "", "p", "1", "d"),
            decision_id="d",
            request_id=None,
            latency_seconds=float("inf"),
        )
    assert [event["latency_ms"] for event in logs] == [float("inf")]


# --- parts prepared once per fingerprint (the sidecar's repeated requests) ------------------


class CountingSink:
    """A JSON-lines sink that counts how often it is asked to prepare a part."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.inner = JsonLinesSink(self.stream)
        self.prepared = 0

    def prepare(self, fields: Mapping[str, Any]) -> str:
        self.prepared += 1
        return self.inner.prepare(fields)

    def emit(self, **parts: Any) -> None:
        self.inner.emit(**parts)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


def _log(sink: Any, allow: AttributeAllowList | None = None) -> DecisionLog:
    ids = iter(range(10**6))
    return DecisionLog(sink=sink, allow=allow, clock=lambda: 0.0, new_id=lambda: str(next(ids)))


def _check(log: DecisionLog, decision: Decision = DECISION, **changes: Any) -> None:
    arguments: dict[str, Any] = {
        "principal": PRINCIPAL,
        "action": "reboot",
        "resource": RESOURCE,
        "context": CONTEXT,
        "decision": decision,
        "decision_id": log.new_decision_id(),
        "request_id": "req-1",
        "latency_seconds": 0.001,
    }
    arguments.update(changes)
    log.record(**arguments)


def test_a_repeated_fingerprint_prepares_its_parts_once() -> None:
    """The request's parts are prepared on the first call only; every event is still whole."""
    sink = CountingSink()
    log = _log(sink)
    for _ in range(3):
        _check(log, fingerprint=b"request-1")
    events = sink.events()
    assert sink.prepared == 2  # who asked, and the outcome
    assert [event["decision_id"] for event in events] == ["0", "1", "2"]
    assert all(
        {k: v for k, v in e.items() if k != "decision_id"}
        == {k: v for k, v in events[0].items() if k != "decision_id"}
        for e in events
    )


def test_a_new_answer_for_a_remembered_fingerprint_is_logged_as_it_is() -> None:
    """A remembered outcome only serves the decision it was prepared for."""
    sink = CountingSink()
    log = _log(sink)
    _check(log, fingerprint=b"request-1")
    _check(log, replace(DECISION, allowed=True, rule_ids=("allow",)), fingerprint=b"request-1")
    _check(log, replace(DECISION, cached=False), fingerprint=b"request-1")
    assert [(e["allowed"], e["rule_ids"], e["cached"]) for e in sink.events()] == [
        (False, ["deny-freeze"], True),
        (True, ["allow"], True),
        (False, ["deny-freeze"], False),
    ]


def test_item_fingerprints_must_match_the_items() -> None:
    """A caller passing one fingerprint too few is told so, and nothing is logged."""
    sink = CountingSink()
    with pytest.raises(ValueError, match="1 fingerprints for 2 items"):
        _log(sink).record_batch(
            principal=PRINCIPAL,
            items=[("read", RESOURCE), ("reboot", RESOURCE)],
            context=CONTEXT,
            decisions=[DECISION, DECISION],
            decision_ids=["a", "b"],
            request_id=None,
            latency_seconds=0.0,
            shared_fingerprint=b"p",
            item_fingerprints=[b"a"],
        )
    assert sink.events() == []


_POOL_PRINCIPALS = [PRINCIPAL, replace(PRINCIPAL, id="u-2"), replace(PRINCIPAL, roles=("noc",))]
_POOL_ITEMS = [("reboot", RESOURCE), ("read", RESOURCE), ("read", replace(RESOURCE, id="dev-2"))]
_POOL_DECISIONS = [
    DECISION,
    replace(DECISION, allowed=True, rule_ids=("allow",), errors=()),
    replace(DECISION, cached=False),
]
_calls = st.lists(
    st.tuples(
        st.integers(0, len(_POOL_PRINCIPALS) - 1),
        st.lists(
            st.tuples(
                st.integers(0, len(_POOL_ITEMS) - 1), st.integers(0, len(_POOL_DECISIONS) - 1)
            ),
            min_size=1,
            max_size=3,
        ),
        st.booleans(),
    ),
    max_size=12,
)


@given(_calls, st.sampled_from([None, AttributeAllowList.parse(["resource.site", "context.x"])]))
def test_fingerprints_never_change_what_is_logged(
    calls: list[tuple[int, list[tuple[int, int]], bool]], allow: AttributeAllowList | None
) -> None:
    """Remembering parts by fingerprint writes byte for byte what preparing them anew writes,
    over repeated requests, repeated items in other batches, and answers that change."""
    remembering, forgetting = CountingSink(), CountingSink()
    logs = _log(remembering, allow), _log(forgetting, allow)
    for principal_index, item_choices, as_batch in calls:
        principal = _POOL_PRINCIPALS[principal_index]
        items = [_POOL_ITEMS[item] for item, _ in item_choices]
        decisions = [_POOL_DECISIONS[decision] for _, decision in item_choices]
        for log, remember in zip(logs, (True, False), strict=True):
            if as_batch:
                log.record_batch(
                    principal=principal,
                    items=items,
                    context=CONTEXT,
                    decisions=decisions,
                    decision_ids=log.new_decision_ids(len(items)),
                    request_id="r",
                    latency_seconds=0.002,
                    shared_fingerprint=b"p%d" % principal_index if remember else None,
                    item_fingerprints=(
                        [b"i%d" % item for item, _ in item_choices] if remember else None
                    ),
                )
            else:
                _check(
                    log,
                    decisions[0],
                    principal=principal,
                    action=items[0][0],
                    resource=items[0][1],
                    fingerprint=(
                        b"c%d-%d" % (principal_index, item_choices[0][0]) if remember else None
                    ),
                )
    assert remembering.stream.getvalue() == forgetting.stream.getvalue()
    assert remembering.prepared <= forgetting.prepared


def test_a_rejected_call_is_one_json_line_with_its_error() -> None:
    """A call refused before deciding still leaves one `decision` line: outcome, code, field."""
    stream = io.StringIO()
    log = DecisionLog(
        clock=lambda: 1_767_225_600.25, new_id=lambda: "ev-1", sink=JsonLinesSink(stream)
    )
    log.record_rejected(
        error_code="invalid_request",
        error_field="resource.tenant",
        request_id="req-9",
        latency_seconds=0.0005,
        peer={"peer_subject": "CN=portal"},
    )
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [
        {
            "timestamp": "2026-01-01T00:00:00.250Z",
            "level": "info",
            "event": "decision",
            "request_id": "req-9",
            "latency_ms": 0.5,
            "outcome": "rejected",
            "error_code": "invalid_request",
            "error_field": "resource.tenant",
            "peer_subject": "CN=portal",
            "decision_id": "ev-1",
        }
    ]


def test_the_caller_identity_is_logged_but_never_remembered_with_the_request() -> None:
    """Two callers sending the same request bytes are each logged as themselves."""
    log = DecisionLog()
    subjects = []
    for subject in ("CN=portal", "CN=billing"):
        logs = _record(log, fingerprint=b"same-request", peer={"peer_subject": subject})
        subjects.append(logs[0]["peer_subject"])
    assert subjects == ["CN=portal", "CN=billing"]
