"""Rendering: text for terminals, JSON for machines, Markdown safe for pull-request comments."""

from __future__ import annotations

import json
from pathlib import Path

from cnm_policy.review.diff import diff_bundles
from cnm_policy.review.lint import lint_source
from cnm_policy.review.render_diff import render_diff
from cnm_policy.review.render_findings import render_lint, render_validation
from cnm_policy.review.render_runs import render_test
from cnm_policy.review.report import Format, md_cell, md_code, md_table
from cnm_policy.review.testrun import run_bundle_tests
from cnm_policy.review.validate import validate_source
from tests.unit.review.bundles import edited, fixture, load, source

NO_MFA = (
    "    scope: subtree\n    when: principal.attributes.mfa == true\n",
    "    scope: subtree\n",
)


def test_table_cells_cannot_break_the_table() -> None:
    """Pipes, backslashes and newlines in user text are escaped."""
    assert md_cell("a|b\\c\nd") == "a\\|b\\\\c<br>d"


def test_inline_code_survives_backticks() -> None:
    """Text containing a backtick gets a longer fence."""
    assert (md_code("x"), md_code("a `b`")) == ("`x`", "`` a `b` ``")


def test_markdown_tables_have_a_header_rule() -> None:
    """Rows follow a header and a separator line."""
    assert md_table(("a", "b"), [["1", "2"]]) == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_validation_text_is_one_line_per_problem_then_a_summary() -> None:
    """Compiler-style `file:line: severity [code] message` lines end with the verdict."""
    lines = render_validation(validate_source(source("broken")), Format.TEXT).splitlines()
    assert lines[0] == "bundle.yaml:2: error [invalid_value] version `1 0` is not a version string"
    assert lines[-1].endswith("broken: invalid (9 errors, 1 warning)")


def test_validation_markdown_has_a_status_heading_and_table() -> None:
    """The Markdown report leads with a verdict and lists problems in a table."""
    text = render_validation(validate_source(source("good")), Format.MARKDOWN)
    assert text.splitlines()[0].startswith("### ✅ Policy validation: `")
    text = render_validation(validate_source(source("broken")), Format.MARKDOWN)
    assert "| error | `unknown_kind` | `rules/customer.yaml:6` | unknown resource kind" in text


def test_json_output_is_the_report_dict() -> None:
    """`--format json` is exactly `to_dict`, so the contract lives in one place."""
    report = lint_source(source("risky"))
    assert json.loads(render_lint(report, Format.JSON)) == report.to_dict()


def test_lint_text_ends_with_counts_per_severity() -> None:
    """The summary counts errors, warnings and info findings."""
    text = render_lint(lint_source(source("risky")), Format.TEXT)
    assert text.splitlines()[-1].endswith("23 findings (5 errors, 17 warnings, 1 info)")


def test_test_text_shows_failures_and_uncovered_rules() -> None:
    """Each failure has its location and expected-vs-actual line; coverage follows."""
    lines = render_test(run_bundle_tests(source("failing-tests")), Format.TEXT).splitlines()
    assert lines[:2] == [
        "FAIL tests/failing_test.yaml:12: viewer configures a device",
        "     expected allow, got deny (no rule allows `configure` on `device` here)",
    ]
    assert "rule coverage: 1/6 rules (17%)" in lines
    assert "  uncovered: rules/internal.yaml:11: noc-change" in lines


def test_diff_markdown_leads_with_warnings_and_groups_grants(tmp_path: Path) -> None:
    """The PR comment warns first, then one row per role with kinds and rules."""
    new = edited(tmp_path / "new", replace={"rules/customer.yaml": NO_MFA})
    text = render_diff(diff_bundles(load(fixture("good")), load(new)), Format.MARKDOWN)
    lines = text.splitlines()
    assert lines[0] == "## Policy access diff: `mini` 1.0.0"
    assert "> **This change widens access.**" in lines
    assert (
        "> - **customer_access_widened**: customer-side access widens: 1 grant change(s) "
        "for `customer-admin`"
    ) in lines
    assert (
        "| 🔺 widens | widened | `customer-admin` (customer) | allow | `configure` on `device` "
        "| subtree | `principal.attributes.mfa == true` → none | `cust-admin-configure` |"
    ) in lines


def test_diff_without_change_says_so() -> None:
    """Identical versions render a plain 'no change' line and no table."""
    bundle = load(fixture("good"))
    text = render_diff(diff_bundles(bundle, bundle), Format.MARKDOWN)
    assert "**Effective access:** No effective access change." in text
    assert "| Impact |" not in text


def test_diff_text_lists_rows_with_their_rules(tmp_path: Path) -> None:
    """Text output names impact, change, roles, access, reach and rules."""
    new = edited(tmp_path / "new", replace={"rules/customer.yaml": NO_MFA})
    lines = render_diff(diff_bundles(load(fixture("good")), load(new)), Format.TEXT).splitlines()
    assert lines[5:8] == [
        "access WIDENS: 1 grant change: 1 widening.",
        "  widens  widened  customer-admin (customer) allow: configure on device",
        "          scope subtree; condition `principal.attributes.mfa == true` → none; "
        "rules cust-admin-configure",
    ]
