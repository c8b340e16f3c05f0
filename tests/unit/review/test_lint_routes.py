"""Lint for routes.yaml: an unreachable route is an error, an overlap a warning."""

from __future__ import annotations

from pathlib import Path

from cnm_policy.policy import read_bundle_dir
from cnm_policy.review.lint import Finding, Severity, lint_source
from tests.unit.review.bundles import source


def test_route_order_problems_are_found_where_they_are() -> None:
    """The route an earlier one covers, and the one that overlaps an earlier one."""
    routes = [f for f in lint_source(source("routes")).findings if f.file == "routes.yaml"]
    assert [(f.code, f.severity, f.line) for f in routes] == [
        ("route_unreachable", Severity.ERROR, 5),
        ("route_overlap", Severity.WARNING, 7),
    ]


def test_the_unreachable_route_names_the_route_that_wins() -> None:
    """The message says which earlier route decides instead."""
    report = lint_source(source("routes"))
    unreachable = next(f for f in report.findings if f.code == "route_unreachable")
    assert unreachable == Finding(
        "route_unreachable",
        Severity.ERROR,
        "route `GET /devices/dev-1` never matches: `GET /devices/{id}` (line 4) comes first and "
        "matches every request it would",
        "routes.yaml",
        5,
    )


def test_the_example_todo_routes_lint_clean() -> None:
    """The AuthZEN Todo example's routes neither shadow nor overlap."""
    bundle = Path(__file__).resolve().parents[3] / "examples" / "authzen-todo" / "bundle"
    assert lint_source(read_bundle_dir(bundle)).findings == ()
