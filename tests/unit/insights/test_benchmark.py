"""`python -m benchmarks.insights` keeps working; its synthetic log reads as real decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import insights
from cnm_policy.insights import build_report


def test_the_synthetic_log_is_all_decisions(tmp_path: Path) -> None:
    """Every generated line is a decision event (1% of them rejected calls), none a problem."""
    path = insights.write_log(tmp_path / "log.jsonl", 1_000)
    report = build_report([str(path)], None)
    assert report["problems"]["total"] == 0
    assert report["sources"]["decision_events"] == 1_000
    assert report["totals"]["rejected"] == 10


def test_a_tiny_run_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Both rows are printed with their budgets (timings are not asserted)."""
    assert insights.main(["--report-lines", "2000", "--replay-lines", "500", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| report, 2,000 lines (median of 1) |" in out
    assert "| replay, 495 decisions, load included (median of 1) |" in out
