"""Rendering: hostile ids and reasons stay inert text in Markdown and HTML; JSON is the data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from cnm_policy.insights import build_report, render_html, render_json, render_markdown
from cnm_policy.insights.render import cell_text
from cnm_policy.policy import load_bundle
from tests.unit.insights.scenario import EVE, POLICIES, Recorder, device, write_day

HOSTILE_ACTION = "x|<img src=x onerror=alert(1)>`*_[a](javascript:b)"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The day, plus one decision whose reason quotes a hostile action."""
    path = tmp_path_factory.mktemp("logs") / "day.jsonl"
    write_day(path)
    recorder = Recorder(path)
    recorder.at(200).check(EVE, HOSTILE_ACTION, device("dev-1", "acme"))
    recorder.close()
    return build_report([str(path)], load_bundle(POLICIES))


def test_the_hostile_reason_is_in_the_data(report: dict[str, Any]) -> None:
    """The report keeps the value as logged; only renderers escape."""
    reasons = [row["reason"] for row in report["deny_reasons"]]
    assert f"no rule allows `{HOSTILE_ACTION}` on `device` here" in reasons


def test_markdown_tables_keep_their_shape(report: dict[str, Any]) -> None:
    """No value adds a cell, a line, a tag, a link or a code span."""
    text = render_markdown(report)
    tables = re.findall(r"(?m)^(\|.*\|)\n\|(?:---\|)+\n((?:\|.*\|\n)*)", text)
    assert len(tables) > 10
    for header, body in tables:
        width = len(re.split(r"(?<!\\)\|", header))
        for row in body.splitlines():
            assert width == len(re.split(r"(?<!\\)\|", row))
    assert "<script>" not in text
    assert "<img" not in text
    assert re.findall(r"(?<!\\)\]\(", text) == []
    assert not any(line.startswith("# head") for line in text.splitlines())
    assert "eve&lt;script&gt;alert(1)&lt;/script&gt;\\|\\`x\\`\\\\u000a# head" in text


def test_html_escapes_every_value_and_loads_nothing(report: dict[str, Any]) -> None:
    """No tag from a value; no script, no remote reference; a policy forbidding both."""
    page = render_html(report)
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert re.findall(r"<[^>]*\s(?:src|href)\s*=", page) == []
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "Content-Security-Policy" in page


def test_html_draws_the_charts_inline(report: dict[str, Any]) -> None:
    """One chart over time and one per breakdown (method, side, kind, action)."""
    page = render_html(report)
    assert page.count("<svg") == 5
    assert page.count("<rect") > 10


def test_json_is_the_report_itself(report: dict[str, Any]) -> None:
    """The JSON output parses back to the report."""
    assert orjson.loads(render_json(report)) == report


def test_cells_are_one_short_line() -> None:
    """Control characters become escapes; long values end in an ellipsis; lists join."""
    assert cell_text("a\nb\x1b") == "a\\u000ab\\u001b"
    assert cell_text("x" * 500) == "x" * 199 + "…"
    assert cell_text(["a", "b"]) == "a, b"
    assert (cell_text(None), cell_text(True), cell_text(2.50)) == ("-", "yes", "2.5")


def test_an_empty_report_renders(tmp_path: Path) -> None:
    """A log with no decisions renders in every format, saying so."""
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    report = build_report([str(path)], None)
    assert "(none)" in render_markdown(report)
    assert "<svg" not in render_html(report)
    assert orjson.loads(render_json(report))["problems"]["total"] == 1
