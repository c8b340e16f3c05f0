"""`run_bundle_tests` and its JUnit XML: failures, rejected requests, coverage."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from cnm_policy.review.junit import junit_xml
from cnm_policy.review.testrun import run_bundle_tests
from tests.unit.review.bundles import source


def test_a_passing_suite_is_ok_with_full_coverage() -> None:
    """The `good` fixture: every case passes and every rule is covered."""
    report = run_bundle_tests(source("good"))
    assert (report.ok, report.coverage, report.uncovered) == (True, 1.0, ())


def test_failures_show_expected_and_actual_with_rules() -> None:
    """Wrong decision, wrong rules and a rejected request each explain themselves."""
    report = run_bundle_tests(source("failing-tests"))
    assert report.suite is not None
    failures = [(r.case.name, r.explain_failure()) for r in report.suite.failures]
    assert failures == [
        (
            "viewer configures a device",
            "expected allow, got deny (no rule allows `configure` on `device` here)",
        ),
        (
            "viewer reads a device by the wrong rule",
            "expected allow by [cust-open-ticket], got allow by [cust-read] "
            "(allowed by rule `cust-read`)",
        ),
        (
            "a malformed tenant is rejected",
            "expected deny, but the request was rejected: principal.tenant: has an empty "
            "segment (`//`)",
        ),
    ]
    assert report.ok is False


def test_uncovered_rules_are_listed_in_bundle_order() -> None:
    """Coverage names the rules no case is decided by, with their location."""
    report = run_bundle_tests(source("failing-tests"))
    uncovered = [(r.id, r.file, r.line) for r in report.uncovered]
    assert uncovered == [
        ("cust-open-ticket", "rules/customer.yaml", 10),
        ("cust-admin-configure", "rules/customer.yaml", 18),
        ("deny-freeze", "rules/guardrails.yaml", 2),
        ("noc-read", "rules/internal.yaml", 2),
        ("noc-change", "rules/internal.yaml", 11),
    ]
    assert round(report.coverage, 3) == 0.167


def test_an_invalid_bundle_runs_no_tests() -> None:
    """The bundle's errors are reported and there is no suite."""
    report = run_bundle_tests(source("broken"))
    assert (report.suite, report.ok, len(report.problems)) == (None, False, 7)


def test_json_form_has_expected_and_actual_per_case() -> None:
    """to_dict records each case's expectation, decision and failure text."""
    data = run_bundle_tests(source("failing-tests")).to_dict()
    assert (data["total"], data["passed"], data["failed"]) == (4, 1, 3)
    assert data["cases"][2] == {
        "name": "viewer reads a device by the wrong rule",
        "file": "tests/failing_test.yaml",
        "line": 17,
        "passed": False,
        "expected": {"decision": "allow", "rules": ["cust-open-ticket"]},
        "actual": {
            "decision": "allow",
            "rules": ["cust-read"],
            "reason": "allowed by rule `cust-read`",
        },
        "error": None,
        "failure": "expected allow by [cust-open-ticket], got allow by [cust-read] "
        "(allowed by rule `cust-read`)",
    }


def test_junit_counts_failures_and_errors() -> None:
    """Mismatches are <failure>s, rejected requests <error>s, per case."""
    root = ET.fromstring(junit_xml(run_bundle_tests(source("failing-tests"))))
    suite = root.find("testsuite")
    assert suite is not None
    counts = {name: suite.get(name) for name in ("name", "tests", "failures", "errors")}
    assert counts == {"name": "failing", "tests": "4", "failures": "2", "errors": "1"}
    outcomes = [
        (case.get("name"), [child.tag for child in case]) for case in suite.iter("testcase")
    ]
    assert outcomes == [
        ("viewer reads a device", []),
        ("viewer configures a device", ["failure"]),
        ("viewer reads a device by the wrong rule", ["failure"]),
        ("a malformed tenant is rejected", ["error"]),
    ]
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["rule_coverage"] == "0.1667"


def test_junit_reports_an_invalid_bundle_as_errors() -> None:
    """A bundle that does not load is never a green run with zero tests."""
    root = ET.fromstring(junit_xml(run_bundle_tests(source("broken"))))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors")) == ("7", "7")
    first = suite.find("testcase")
    assert first is not None
    assert (first.get("name"), first.get("classname")) == ("load bundle.yaml:2", "bundle")
