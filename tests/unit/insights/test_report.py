"""The report over a logged day: known counts in every section, whatever the input format."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cnm_policy import Engine, Resource
from cnm_policy.insights import (
    SHADOW_DIVERGENCE_EVENT,
    ReportOptions,
    ShadowEvaluator,
    ShadowTask,
    build_report,
)
from cnm_policy.policy import load_bundle
from tests.unit.insights.scenario import ANN, EVE, EVE_ID, POLICIES, T0, Recorder, device, write_day
from tests.unit.insights.test_replay import EDITS, _edited

BUNDLE = load_bundle(POLICIES)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario's day as one JSON-lines file."""
    path = tmp_path_factory.mktemp("logs") / "day.jsonl"
    write_day(path)
    return path


@pytest.fixture(scope="module")
def report(day: Path) -> dict[str, Any]:
    """The report over the day."""
    return build_report([str(day)], BUNDLE)


def _iso(minutes: float) -> str:
    moment = datetime.fromtimestamp(T0 + minutes * 60, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_totals_and_period(report: dict[str, Any]) -> None:
    """6 allows, 7 denies and 3 rejected calls, from the first to the last event."""
    assert report["totals"] == {"allow": 6, "deny": 7, "rejected": 3}
    assert (_iso(0), _iso(150)) == (report["period"]["first"], report["period"]["last"])
    assert (
        report["sources"]["lines"],
        report["sources"]["decision_events"],
        report["sources"]["other_events"],
        report["problems"]["total"],
    ) == (16, 16, 0, 0)


def test_decisions_per_hour_by_outcome(report: dict[str, Any]) -> None:
    """A day's span is counted per hour."""
    expected = [
        {"start": _iso(0), "allow": 3, "deny": 3, "rejected": 0},
        {"start": _iso(60), "allow": 2, "deny": 3, "rejected": 0},
        {"start": _iso(120), "allow": 1, "deny": 1, "rejected": 3},
    ]
    assert ("hour", expected) == (report["over_time"]["bucket"], report["over_time"]["rows"])


def _counts(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    return {row["value"]: (row["allow"], row["deny"], row["rejected"]) for row in rows}


def test_breakdowns_by_method_side_kind_and_action(report: dict[str, Any]) -> None:
    """Each breakdown counts allows, denies and rejections per value."""
    breakdowns = report["breakdowns"]
    assert _counts(breakdowns["method"]) == {"Check": (5, 6, 3), "CheckBatch": (1, 1, 0)}
    assert _counts(breakdowns["side"]) == {
        "customer": (4, 7, 0),
        "internal": (2, 0, 0),
        "unknown": (0, 0, 3),
    }
    assert _counts(breakdowns["resource_kind"]) == {
        "device": (4, 5, 0),
        "ticket": (1, 1, 0),
        "circuit": (1, 0, 0),
        "invoice": (0, 1, 0),
        "(none)": (0, 0, 3),
    }
    assert _counts(breakdowns["action"]) == {
        "read": (6, 4, 0),
        "configure": (0, 3, 0),
        "(none)": (0, 0, 3),
    }


def test_deny_reasons_and_rules(report: dict[str, Any]) -> None:
    """Reasons in the decision's own words, most first; rules named by denies."""
    assert report["deny_reasons"] == [
        {"reason": "denied by rule `deny-configure-without-mfa`", "denies": 2},
        {"reason": "no rule allows `read` on `device` here", "denies": 2},
        {"reason": "no rule allows `configure` on `device` here", "denies": 1},
        {"reason": "no rule allows `read` on `invoice` here", "denies": 1},
        {"reason": "no rule allows `read` on `ticket` here", "denies": 1},
    ]
    assert report["deny_rules"] == [{"rule_id": "deny-configure-without-mfa", "denies": 2}]


def test_who_is_stuck(report: dict[str, Any]) -> None:
    """Tenants and principals with the most denies."""
    assert report["most_denied"]["tenants"] == [
        {"tenant": "evil", "denies": 3, "principals": 1},
        {"tenant": "acme", "denies": 2, "principals": 1},
        {"tenant": "acme/emea", "denies": 2, "principals": 1},
    ]
    assert report["most_denied"]["principals"] == [
        {"principal_id": EVE_ID, "tenant": "evil", "denies": 3, "allows": 0},
        {"principal_id": "ann", "tenant": "acme/emea", "denies": 2, "allows": 4},
        {"principal_id": "bob", "tenant": "acme", "denies": 2, "allows": 0},
    ]


def test_who_probes_other_tenants(report: dict[str, Any]) -> None:
    """Only customer-side requests outside the principal's subtree count (staff reach any)."""
    assert report["cross_tenant"] == [
        {
            "principal_id": EVE_ID,
            "tenant": "evil",
            "requests": 3,
            "target_tenants": 2,
            "allowed": 0,
            "examples": ["acme/emea", "globex"],
        }
    ]


def test_unused_and_rarely_used_grants(report: dict[str, Any]) -> None:
    """Allow rules that granted nothing, and grants used by two principals or fewer."""
    used = {"customer-read-network", "noc-read-network", "support-assigned-read"}
    allow_rules = {rule.id for rule in BUNDLE.rules if rule.effect == "allow"}
    usage = report["rule_usage"]
    assert sorted(allow_rules - used) == usage["unused"]
    assert usage["rare"] == [
        {"rule_id": "noc-read-network", "principals": 1, "decisions": 1},
        {"rule_id": "support-assigned-read", "principals": 1, "decisions": 1},
        {"rule_id": "customer-read-network", "principals": 1, "decisions": 4},
    ]


def test_policy_versions_latency_cache_and_rejections(report: dict[str, Any]) -> None:
    """Versions with when they were seen; latency percentiles; cache hits; rejection codes."""
    versions = [
        (v["version"], v["first"], v["last"], v["decisions"]) for v in report["policy_versions"]
    ]
    assert [("1.0.0", _iso(0), _iso(120), 12), ("1.1.0", _iso(91), _iso(91), 1)] == versions
    assert report["latency_ms"] == {"count": 16, "p50": 2.5, "p90": 5.0, "p99": 5.85, "max": 6.0}
    assert {"hits": 2, "decisions": 13, "ratio": round(2 / 13, 4)} == report["cache"]
    assert report["rejected"] == [
        {"error_code": "invalid_request", "calls": 2},
        {"error_code": "limit_exceeded", "calls": 1},
    ]


def test_since_and_until_bound_the_period(day: Path) -> None:
    """`since` keeps events at or after it, `until` those strictly before it."""
    options = ReportOptions(since=T0 + 60 * 60, until=T0 + 120 * 60)
    report = build_report([str(day)], BUNDLE, options)
    assert report["totals"] == {"allow": 2, "deny": 3, "rejected": 0}
    assert (_iso(60), _iso(120)) == (report["period"]["since"], report["period"]["until"])


def test_gzip_globs_and_many_files_read_alike(day: Path, tmp_path: Path) -> None:
    """A gzip copy and a plain copy, named by a glob, count twice the day."""
    with day.open("rb") as plain, gzip.open(tmp_path / "b.jsonl.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    shutil.copy(day, tmp_path / "a.jsonl")
    report = build_report([str(tmp_path / "*.jsonl*")], BUNDLE)
    assert report["totals"] == {"allow": 12, "deny": 14, "rejected": 6}
    assert [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl.gz")] == report["sources"]["files"]


def test_parquet_reads_like_its_json_lines(
    day: Path, tmp_path: Path, report: dict[str, Any]
) -> None:
    """The day landed as Parquet (as a log pipeline would) gives the same report."""
    target = tmp_path / "day.parquet"
    duckdb.sql(
        f"COPY (SELECT * FROM read_json('{day}', format='newline_delimited')) "
        f"TO '{target}' (FORMAT parquet)"
    )
    from_parquet = build_report([str(target)], BUNDLE)
    for section in ("totals", "over_time", "breakdowns", "deny_reasons", "most_denied", "cache"):
        assert report[section] == from_parquet[section]


def test_a_missing_log_is_an_error_not_an_empty_report(tmp_path: Path) -> None:
    """A path or glob naming no file raises, naming it."""
    with pytest.raises(FileNotFoundError, match="matches no file"):
        build_report([str(tmp_path / "*.jsonl")], BUNDLE)
    with pytest.raises(FileNotFoundError, match="is not a readable file"):
        build_report([str(tmp_path / "nope.jsonl")], BUNDLE)


def test_shadow_divergences_are_counted_by_direction_kind_and_action(tmp_path: Path) -> None:
    """The shadow's events, as ShadowEvaluator makes them, are counted in their own section."""
    candidate = _edited(tmp_path / "candidate", *EDITS["narrowed-scope"])
    evaluator = ShadowEvaluator(lambda: Engine.from_path(candidate))
    recorder = Recorder(tmp_path / "log.jsonl")
    requests = [
        (ANN, device("dev-1", "acme/emea/paris")),  # allow -> deny
        (ANN, device("dev-3", "acme/emea")),  # the same answer
        (ANN, Resource("metrics", "m-1", "acme/emea/lyon", {})),  # allow -> deny
        (ANN, device("dev-4", "acme/emea/rome")),  # allow -> deny
    ]
    for minute, (principal, resource) in enumerate(requests):
        recorder.at(minute).check(principal, "read", resource)
        live = recorder.engine.check(principal, "read", resource, {})
        event = evaluator.compare(ShadowTask(principal, "read", resource, {}, live, f"d-{minute}"))
        if event is not None:
            recorder.logger.info(SHADOW_DIVERGENCE_EVENT, **event)
    recorder.close()
    report = build_report([str(tmp_path / "log.jsonl")], BUNDLE)
    assert report["shadow"] == {
        "total": 3,
        "by_direction": {"allow_to_deny": 3},
        "targets": [
            {
                "kind": "device",
                "action": "read",
                "allow_to_deny": 2,
                "deny_to_allow": 0,
                "principals": 1,
            },
            {
                "kind": "metrics",
                "action": "read",
                "allow_to_deny": 1,
                "deny_to_allow": 0,
                "principals": 1,
            },
        ],
    }
    assert (report["totals"]["allow"], report["sources"]["other_events"]) == (4, 3)


def test_lists_a_log_can_grow_without_bound_are_bounded(tmp_path: Path) -> None:
    """Thirty made-up kinds: the breakdown shows twenty, the rest summed in one row."""
    recorder = Recorder(tmp_path / "log.jsonl")
    for n in range(30):
        recorder.at(n).check(EVE, "read", Resource(f"k-{n:02d}", "x", "evil", {}))
    recorder.close()
    rows = build_report([str(tmp_path / "log.jsonl")], BUNDLE)["breakdowns"]["resource_kind"]
    assert [row["value"] for row in rows] == [f"k-{n:02d}" for n in range(20)] + ["(10 others)"]
    assert rows[-1] == {"value": "(10 others)", "allow": 0, "deny": 10, "rejected": 0, "total": 10}
