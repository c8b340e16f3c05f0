"""The report's security sections: who used break-glass, who crossed, who acted for whom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from cnm_policy.insights import build_report, render_html, render_markdown
from cnm_policy.policy import load_bundle
from tests.unit.insights.scenario import POLICIES, write_governed

BUNDLE = load_bundle(POLICIES)
AUDITED_KEYS = ("class", "principal_id", "tenant", "decisions", "target_tenants", "examples")
ACTOR_KEYS = ("actor_id", "actor_tenant", "decisions", "allowed", "denied", "principals")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report over the governed scenario's log."""
    path = tmp_path_factory.mktemp("logs") / "governed.jsonl"
    write_governed(path)
    return build_report([str(path)], BUNDLE)


def test_audited_classes_are_counted_by_class_principal_and_tenant(
    report: dict[str, Any],
) -> None:
    """Three break-glass allows (sam 2 at two tenants, kim 1), one crossing (bob)."""
    audited = report["audited"]
    assert audited["by_class"] == {"break_glass": 3, "self_managed_crossing": 1}
    rows = [tuple(r[k] for k in AUDITED_KEYS) for r in audited["principals"]]
    assert rows == [
        ("break_glass", "sam", "provider", 2, 2, ["globex", "initech"]),
        ("break_glass", "kim", "provider", 1, 1, ["globex/us"]),
        ("self_managed_crossing", "bob", "acme", 1, 1, ["acme/emea/labs"]),
    ]
    sam = audited["principals"][0]
    assert (sam["first"], sam["last"]) == ("2026-03-02T10:00:00.000Z", "2026-03-02T10:01:00.000Z")


def test_on_behalf_of_decisions_are_counted_by_actor(report: dict[str, Any]) -> None:
    """Four decisions by three actors for ann: pat's read and configure, gus's, sue's."""
    on_behalf = report["on_behalf"]
    assert (on_behalf["decisions"], on_behalf["allowed"], on_behalf["actors"]) == (4, 2, 3)
    rows = [tuple(a[k] for k in ACTOR_KEYS) for a in on_behalf["by_actor"]]
    assert [a["target_tenants"] for a in on_behalf["by_actor"]] == [1, 1, 1]
    assert rows == [
        ("pat", "acme", 2, 1, 1, 1),
        ("gus", "globex", 1, 0, 1, 1),
        ("sue", "provider", 1, 1, 0, 1),
    ]


def test_both_sections_are_rendered(report: dict[str, Any]) -> None:
    """Markdown and HTML carry the two sections, with their counts in the prose."""
    markdown, html = render_markdown(report), render_html(report)
    for text in (markdown, html):
        assert "Audited access: break-glass and self-managed crossings" in text
        assert "Break-glass decisions: 3; crossings into self-managed tenants: 1." in text
        assert "4 decisions were asked by an actor for a principal (2 allowed), by 3 actors." in (
            text
        )
    assert "| break\\_glass | sam | provider | 2 | 2 | globex, initech |" in markdown


def test_a_log_without_governance_fields_reports_zeros(tmp_path: Path) -> None:
    """No class and no actor in the log: empty tables, zero counts, never an error."""
    path = tmp_path / "plain.jsonl"
    path.write_text(
        '{"event":"decision","timestamp":"2026-03-02T10:00:00Z","allowed":true,'
        '"principal_id":"a","principal_tenant":"t","action":"read","resource_kind":"device",'
        '"resource_tenant":"t"}\n'
    )
    report = build_report([str(path)], None)
    assert report["audited"] == {"by_class": {}, "principals": []}
    assert report["on_behalf"] == {"decisions": 0, "allowed": 0, "actors": 0, "by_actor": []}


def test_parquet_gives_the_same_security_sections(report: dict[str, Any], tmp_path: Path) -> None:
    """The governed log landed as Parquet: the same audited and on-behalf-of sections."""
    source = tmp_path / "governed.jsonl"
    write_governed(source)
    target = tmp_path / "governed.parquet"
    duckdb.sql(
        f"COPY (SELECT * FROM read_json('{source}', format='newline_delimited')) "
        f"TO '{target}' (FORMAT parquet)"
    )
    from_parquet = build_report([str(target)], BUNDLE)
    assert (from_parquet["audited"], from_parquet["on_behalf"]) == (
        report["audited"],
        report["on_behalf"],
    )
