"""The decision log: one canonical `decision` event per decision, redacted, through one pipeline."""

from __future__ import annotations

import datetime
import json
import math
import re
import tempfile
import threading
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from cnm_policy import log_pipeline
from cnm_policy.audit import AttributeAllowList, DecisionFacts, DecisionLog
from cnm_policy.log_pipeline import configure_logging
from cnm_policy.model import Decision, Principal, Resource

PRINCIPAL = Principal("u-1", "acme", ("customer-admin",), {"mfa": True, "email": "ann@example.com"})
RESOURCE = Resource("device", "dev-1", "acme/emea", {"site": "paris", "serial": "SN-99"})
OTHER = Resource("ticket", "t-9", "acme", {"site": "lyon"})
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
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """`configure_logging` configures structlog process-wide; put the defaults back."""
    yield
    structlog.reset_defaults()


def _record(log: DecisionLog, **changes: Any) -> None:
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
    log.record(**arguments)


def _captured(log: DecisionLog, **changes: Any) -> list[MutableMapping[str, Any]]:
    with capture_logs() as logs:
        _record(log, **changes)
    return logs


def _batch(log: DecisionLog, items: list[tuple[str, Resource]], **changes: Any) -> list[str]:
    ids = log.new_decision_ids(len(items))
    arguments: dict[str, Any] = {
        "principal": PRINCIPAL,
        "items": items,
        "context": CONTEXT,
        "decisions": [DECISION] * len(items),
        "decision_ids": ids,
        "request_id": "req-2",
        "latency_seconds": 0.5,
    }
    arguments.update(changes)
    log.record_batch(**arguments)
    return ids


def _lines(path: Path) -> list[dict[str, Any]]:
    # Split on newlines only: JSON leaves U+0085 and U+2028 raw, and splitlines() breaks there.
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def test_decision_event_has_the_canonical_fields() -> None:
    """The event carries who, what, on what, the answer, why, which policy, and how fast."""
    assert _captured(DecisionLog()) == [
        {
            "event": "decision",
            "log_level": "info",
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
    rendered = repr(_captured(DecisionLog()))
    for secret in ("ann@example.com", "SN-99", "paris", "CHG-1", "portal", "secret-value"):
        assert secret not in rendered


def test_allow_listed_attributes_are_logged() -> None:
    """Only the allow-listed keys appear, grouped by where they came from."""
    allow = AttributeAllowList.parse(["resource.site", "context.channel", "principal.absent"])
    (event,) = _captured(DecisionLog(allow=allow))
    assert event["resource_attributes"] == {"site": "paris"}
    assert event["context"] == {"channel": "portal"}
    assert "principal_attributes" not in event


@pytest.mark.parametrize("name", ["site", "resource.", "request.site"])
def test_malformed_allow_list_entries_are_rejected(name: str) -> None:
    """Allow-list entries must be `principal.<key>`, `resource.<key>` or `context.<key>`."""
    with pytest.raises(ValueError, match="is not"):
        AttributeAllowList.parse([name])


def test_batch_logs_one_event_per_item_with_its_position() -> None:
    """A CheckBatch logs each decision, in order, saying which item of how many it is."""
    allow = AttributeAllowList.parse(["resource.site", "context.channel"])
    log = DecisionLog(allow=allow, new_id=lambda: "call-1")
    with capture_logs() as logs:
        ids = _batch(log, [("reboot", RESOURCE), ("read", OTHER)])
    assert ids == ["call-1-0", "call-1-1"]
    assert [
        (e["decision_id"], e["batch_index"], e["batch_size"], e["resource_id"]) for e in logs
    ] == [("call-1-0", 0, 2, "dev-1"), ("call-1-1", 1, 2, "t-9")]
    assert [e["resource_attributes"] for e in logs] == [{"site": "paris"}, {"site": "lyon"}]
    assert {e["request_id"] for e in logs} == {"req-2"}
    assert {e["latency_ms"] for e in logs} == {500.0}
    assert {str(e["context"]) for e in logs} == {str({"channel": "portal"})}


def test_a_batch_needs_one_decision_and_one_id_per_item() -> None:
    """A caller passing one id too few is told so, and nothing is logged."""
    with capture_logs() as logs, pytest.raises(ValueError, match="2 items, 2 decisions, 1 ids"):
        _batch(DecisionLog(), [("read", RESOURCE), ("read", OTHER)], decision_ids=["a"])
    assert logs == []


def test_an_empty_batch_logs_nothing() -> None:
    """A batch of zero items leaves no event behind."""
    with capture_logs() as logs:
        _batch(DecisionLog(), [])
    assert logs == []


def test_a_processor_editing_an_event_leaves_the_next_one_alone() -> None:
    """Each event of a batch has values of its own: editing one in place changes no other."""

    def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event["principal_roles"].append("scrubbed")
        event["rule_ids"].clear()
        return event

    with capture_logs(processors=[scrub]) as logs:
        _batch(DecisionLog(), [("read", RESOURCE), ("read", OTHER)])
    assert [e["principal_roles"] for e in logs] == [["customer-admin", "scrubbed"]] * 2
    assert [e["rule_ids"] for e in logs] == [[], []]


def test_missing_request_id_is_null_and_long_ones_are_clipped() -> None:
    """The caller-supplied request id is optional and cannot bloat the log."""
    (without,) = _captured(DecisionLog(), request_id=None)
    (clipped,) = _captured(DecisionLog(), request_id="r" * 1000)
    assert without["request_id"] is None
    assert len(clipped["request_id"]) == 128


def test_decision_ids_come_from_the_injected_source() -> None:
    """Decision ids are injectable (tests) and unique by default."""
    assert DecisionLog(new_id=lambda: "fixed").new_decision_id() == "fixed"
    default = DecisionLog()
    assert default.new_decision_id() != default.new_decision_id()


def test_default_decision_ids_are_128_random_bits() -> None:
    """Without an injected source, ids are 32 hex digits and do not repeat."""
    log = DecisionLog()
    ids = {log.new_decision_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_non_finite_latency_is_logged_not_raised(tmp_path: Path) -> None:
    """A timer gone wrong costs the event its latency value (null in JSON), never the call."""
    with capture_logs() as logs:
        _record(DecisionLog(), latency_seconds=math.inf)
    assert [event["latency_ms"] for event in logs] == [math.inf]
    configure_logging(tmp_path / "audit.log", "json", "info")
    _record(DecisionLog(), latency_seconds=math.nan)
    assert [event["latency_ms"] for event in _lines(tmp_path / "audit.log")] == [None]


def test_each_event_names_its_own_caller() -> None:
    """Two callers sending the same request are each logged as themselves (mTLS)."""
    log = DecisionLog()
    subjects = [
        _captured(log, peer={"peer_subject": subject})[0]["peer_subject"]
        for subject in ("CN=portal", "CN=billing")
    ]
    assert subjects == ["CN=portal", "CN=billing"]


def test_a_rejected_call_is_one_json_line_with_its_error(tmp_path: Path) -> None:
    """A call refused before deciding still leaves one `decision` line: outcome, code, field."""
    configure_logging(tmp_path / "audit.log", "json", "info")
    DecisionLog(new_id=lambda: "ev-1").record_rejected(
        error_code="invalid_request",
        error_field="resource.tenant" + "x" * 1000,
        request_id="req-9",
        latency_seconds=0.0005,
        peer={"peer_subject": "CN=portal"},
    )
    ((line,),) = [_lines(tmp_path / "audit.log")]
    assert TIMESTAMP.fullmatch(line.pop("timestamp"))
    assert line == {
        "level": "info",
        "event": "decision",
        "request_id": "req-9",
        "latency_ms": 0.5,
        "outcome": "rejected",
        "error_code": "invalid_request",
        "error_field": ("resource.tenant" + "x" * 1000)[:256],
        "peer_subject": "CN=portal",
        "decision_id": "ev-1",
    }


# --- the pipeline: JSON lines through orjson and structlog's BytesLogger ----------------------


def test_json_lines_lead_with_time_level_and_event(tmp_path: Path) -> None:
    """Each batch item is a line in item order, starting timestamp (UTC, ms), level, event."""
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    configure_logging(tmp_path / "audit.log", "json", "info")
    _batch(DecisionLog(new_id=lambda: "call"), [("read", RESOURCE), ("read", OTHER)])
    events = _lines(tmp_path / "audit.log")
    assert [(e["decision_id"], e["resource_id"]) for e in events] == [
        ("call-0", "dev-1"),
        ("call-1", "t-9"),
    ]
    assert all(list(e)[:3] == ["timestamp", "level", "event"] for e in events)
    assert {(e["level"], e["event"]) for e in events} == {("info", "decision")}
    for event in events:
        assert TIMESTAMP.fullmatch(event["timestamp"])
        when = datetime.datetime.fromisoformat(event["timestamp"])
        assert before <= when <= datetime.datetime.now(datetime.UTC)


def test_json_lines_say_what_structlog_was_handed(tmp_path: Path) -> None:
    """The file's events are the captured events, plus the time the pipeline added."""
    allow = AttributeAllowList.parse(["principal.mfa", "context.channel"])

    def log_everything(log: DecisionLog) -> None:
        _record(log, peer={"peer_subject": "CN=portal", "peer_san": ["spiffe://cnm/portal"]})
        _batch(log, [("read", RESOURCE), ("read", OTHER)])
        log.record_rejected(error_code="c", error_field=None, request_id=None, latency_seconds=0)

    with capture_logs() as captured:
        log_everything(DecisionLog(allow=allow, new_id=lambda: "c"))
    configure_logging(tmp_path / "audit.log", "json", "info")
    log_everything(DecisionLog(allow=allow, new_id=lambda: "c"))
    written = _lines(tmp_path / "audit.log")
    for event in written:
        del event["timestamp"]
        event["log_level"] = event.pop("level")
    assert written == captured


def test_a_level_above_info_drops_decision_events(tmp_path: Path) -> None:
    """`--log-level warning` keeps warnings and drops decisions (one filter for both)."""
    configure_logging(tmp_path / "audit.log", "json", "warning")
    _record(DecisionLog())
    structlog.get_logger("ops").warning("policy_reload_failed")
    assert [e["event"] for e in _lines(tmp_path / "audit.log")] == ["policy_reload_failed"]


@pytest.mark.parametrize(
    ("value", "expected_text"),
    [
        (2**70, "1180591620717411303424"),
        ({1: "é", "big": 2**70}, '{"1":"é","big":1180591620717411303424}'),
        ({"big": 2**70, "nan": math.nan}, '{"big":1180591620717411303424,"nan":null}'),
        ({datetime.date(2026, 1, 2): "x"}, '{"2026-01-02":"x"}'),
        ((1, 2), "[1,2]"),
        (object, json.dumps(repr(object))),
        ("lone \udcff surrogate", '"lone \\udcff surrogate"'),
    ],
)
def test_values_orjson_cannot_encode_still_make_a_compact_line(
    tmp_path: Path, value: Any, expected_text: str
) -> None:
    """An odd allow-listed value never costs the decision its line, nor the line its style."""
    configure_logging(tmp_path / "audit.log", "json", "info")
    _record(DecisionLog(allow=AttributeAllowList.parse(["context.odd"])), context={"odd": value})
    text = (tmp_path / "audit.log").read_text(encoding="utf-8")
    assert f',"context":{{"odd":{expected_text}}}' in text
    (event,) = _lines(tmp_path / "audit.log")
    assert event["decision_id"] == "dec-1"


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


@given(
    st.integers(0, _LAST_MS),
    st.lists(st.integers(-2_500, 2_500) | st.sampled_from([1, -1, 999, 1000]), max_size=30),
)
def test_timestamps_match_datetime_to_the_millisecond(start_ms: int, steps: list[int]) -> None:
    """The remembered second answers only for its own milliseconds, whichever way time moves."""
    epoch_ms = start_ms
    for step in [0, *steps]:
        epoch_ms = min(max(0, epoch_ms + step), _LAST_MS)
        when = _EPOCH + datetime.timedelta(milliseconds=epoch_ms)
        expected = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert log_pipeline.log_timestamp(epoch_ms) == expected


_texts = st.text(st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    request_id=st.none() | _texts,
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _texts,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
        max_leaves=8,
    ),
    latency_seconds=st.floats(),
)
def test_any_text_or_latency_makes_one_valid_json_line(
    request_id: str | None, value: Any, latency_seconds: float
) -> None:
    """Control characters, quotes and line breaks are escaped; a non-finite latency is null."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.log"
        configure_logging(path, "json", "info")
        log = DecisionLog(allow=AttributeAllowList.parse(["context.x"]))
        _record(log, request_id=request_id, context={"x": value}, latency_seconds=latency_seconds)
        (event,) = _lines(path)
        structlog.reset_defaults()
    assert event["request_id"] == (request_id[:128] if request_id else None)
    assert event["context"] == {"x": value}
    product = latency_seconds * 1_000_000
    expected = round(product) / 1000 if math.isfinite(product) else latency_seconds
    assert event["latency_ms"] == (expected if math.isfinite(expected) else None)


def test_concurrent_decisions_and_operational_events_stay_whole_lines(tmp_path: Path) -> None:
    """Threads logging batches and long operational events into one file: every line parses."""
    configure_logging(tmp_path / "audit.log", "json", "info")
    log = DecisionLog()
    items = [("read", replace(RESOURCE, id=f"dev-{i}")) for i in range(3)]

    def work() -> None:
        operational = structlog.get_logger("ops")
        for _ in range(50):
            _batch(log, items)
            operational.info("tick", detail="x" * 20_000)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = [event["event"] for event in _lines(tmp_path / "audit.log")]
    assert (names.count("decision"), names.count("tick")) == (4 * 50 * 3, 4 * 50)


class _SlowFile:
    """A binary file that writes each chunk in two halves, yielding to other threads between."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> int:
        middle = len(chunk) // 2
        self.data += chunk[:middle]
        time.sleep(0)
        self.data += chunk[middle:]
        return len(chunk)

    def flush(self) -> None:
        """Nothing is buffered."""


def test_bytes_loggers_of_one_file_share_one_lock() -> None:
    """Pinned: structlog's BytesLoggers of one file (one per logger name) write lines whole."""
    file = _SlowFile()
    factory = structlog.BytesLoggerFactory(file)  # type: ignore[arg-type]

    def work(name: str) -> None:
        logger = factory(name)
        for index in range(200):
            logger.msg(f"{name}-{index}-{name * 300}".encode())

    threads = [threading.Thread(target=work, args=(name,)) for name in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = file.data.decode().splitlines()
    assert len(lines) == 800
    for line in lines:
        name, index, body = line.split("-")
        assert body == name * 300 and 0 <= int(index) < 200


class _CountingFile(_SlowFile):
    """A `_SlowFile` that also counts the write calls it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, chunk: bytes) -> int:
        self.writes += 1
        return super().write(chunk)


def _pipeline_into(file: _CountingFile) -> None:
    """Configure the JSON pipeline of `configure_logging`, writing into `file`."""
    configure_logging(None, "json", "info")
    lines = structlog.BytesLoggerFactory(file)  # type: ignore[arg-type]
    structlog.configure(logger_factory=lambda *args: log_pipeline._CallLines(lines(*args)))


def test_a_batch_is_written_in_one_write() -> None:
    """A batch's lines reach the file in one write call, each a whole JSON line, in order."""
    file = _CountingFile()
    _pipeline_into(file)
    items = [("read", replace(RESOURCE, id=f"dev-{i}")) for i in range(50)]
    _batch(DecisionLog(), items)
    events = [json.loads(line) for line in file.data.decode().splitlines()]
    assert file.writes == 1
    assert [event["batch_index"] for event in events] == list(range(50))


def test_concurrent_batches_keep_their_lines_together() -> None:
    """Four threads logging batches and single events: each batch's lines stay contiguous."""
    file = _CountingFile()
    _pipeline_into(file)
    log = DecisionLog()
    items = [("read", replace(RESOURCE, id=f"dev-{i}")) for i in range(20)]

    def work() -> None:
        for _ in range(25):
            _batch(log, items)
            _record(log)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = [json.loads(line) for line in file.data.decode().splitlines()]
    batched = [event for event in events if "batch_index" in event]
    assert (len(batched), len(events) - len(batched)) == (4 * 25 * 20, 4 * 25)
    runs = [batched[start : start + 20] for start in range(0, len(batched), 20)]
    for run in runs:
        assert [event["batch_index"] for event in run] == list(range(20))
        assert len({event["decision_id"].rpartition("-")[0] for event in run}) == 1


def test_trace_ids_are_merged_into_every_kind_of_event() -> None:
    """`trace=` puts trace_id/span_id into Check, batch and rejected events, beside the peer."""
    trace = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}
    peer = {"peer_subject": "CN=portal"}
    log = DecisionLog(new_id=lambda: "c")
    with capture_logs() as events:
        _record(log, peer=peer, trace=trace)
        _batch(log, [("read", RESOURCE), ("read", OTHER)], trace=trace)
        log.record_rejected(
            error_code="c", error_field=None, request_id=None, latency_seconds=0, trace=trace
        )
    assert [{key: event.get(key) for key in (*trace, *peer)} for event in events] == [
        {**trace, **peer},
        {**trace, "peer_subject": None},
        {**trace, "peer_subject": None},
        {**trace, "peer_subject": None},
    ]


def test_a_log_follows_the_configuration_in_force(tmp_path: Path) -> None:
    """Used before `configure_logging`, a log then writes where configured; once structlog has
    cached its logger, `capture_logs` still sees its events."""
    log = DecisionLog()
    assert [event["decision_id"] for event in _captured(log)] == ["dec-1"]
    configure_logging(tmp_path / "audit.log", "json", "info")
    _record(log, decision_id="dec-2")
    assert [event["decision_id"] for event in _captured(log, decision_id="dec-3")] == ["dec-3"]
    _record(log, decision_id="dec-4")
    assert [event["decision_id"] for event in _lines(tmp_path / "audit.log")] == ["dec-2", "dec-4"]


def test_a_log_built_before_a_warning_level_drops_its_decisions(tmp_path: Path) -> None:
    """The level configured after the log was built filters its events, first and later."""
    log = DecisionLog()
    configure_logging(tmp_path / "audit.log", "json", "warning")
    _record(log)
    _batch(log, [("read", RESOURCE), ("read", OTHER)])
    assert (tmp_path / "audit.log").read_bytes() == b""


def test_observers_share_one_fact_per_decision_after_it_is_logged() -> None:
    """Each observer gets the same DecisionFacts per Check and per batch item, once logged."""
    seen: list[tuple[str, DecisionFacts, int]] = []
    with capture_logs() as logs:
        log = DecisionLog(
            observers=[
                lambda facts: seen.append(("a", facts, len(logs))),
                lambda facts: seen.append(("b", facts, len(logs))),
            ]
        )
        _record(log, actor=PRINCIPAL)
        _batch(log, [("read", RESOURCE), ("read", OTHER)])
    single = DecisionFacts(PRINCIPAL, "reboot", RESOURCE, CONTEXT, DECISION, "dec-1", PRINCIPAL)
    assert seen[:2] == [("a", single, 1), ("b", single, 1)]
    assert [(name, facts.decision_id, count) for name, facts, count in seen[2:]] == [
        ("a", logs[1]["decision_id"], 2),
        ("b", logs[1]["decision_id"], 2),
        ("a", logs[2]["decision_id"], 3),
        ("b", logs[2]["decision_id"], 3),
    ]
    assert all(seen[index][1] is seen[index + 1][1] for index in (0, 2, 4))
    assert [facts.resource for _, facts, _ in seen[2::2]] == [RESOURCE, OTHER]
