"""The bundle test runner: expectations, failure reports, coverage and file problems."""

from __future__ import annotations

from cnm_policy import load_snapshot
from cnm_policy.testing import load_cases, run_suite
from tests.conftest import BundleFactory

INLINE_ONLY = """\
cases:
  - name: inline viewer reads a device
    principal: {id: u-1, tenant: acme, roles: [customer-viewer]}
    action: read
    resource: {kind: device, id: d-1, tenant: acme/emea}
    expect: allow
    rules: [customer-read-network]
"""

WRONG_EXPECTATION = """\
principals:
  viewer: {id: u-1, tenant: acme, roles: [customer-viewer], attributes: {mfa: true}}
cases:
  - name: viewer configures (wrongly expected to be allowed)
    principal: viewer
    action: configure
    resource: {kind: device, id: d-1, tenant: acme/emea}
    expect: allow
  - name: viewer reads, but the expected rule id is wrong
    principal: viewer
    action: read
    resource: {kind: device, id: d-1, tenant: acme/emea}
    expect: allow
    rules: [some-other-rule]
"""


def test_inline_only_test_file_runs(make_bundle: BundleFactory) -> None:
    """A test file without fixture sections is valid and runs."""
    path = make_bundle({"tests/inline_test.yaml": INLINE_ONLY})
    result = run_suite(load_snapshot(path))
    assert result.problems == ()
    assert result.failures == ()


def test_failures_show_expected_and_actual(make_bundle: BundleFactory) -> None:
    """A failing case reports expected vs actual and where the case is."""
    path = make_bundle({"tests/wrong_test.yaml": WRONG_EXPECTATION})
    failures = run_suite(load_snapshot(path)).failures
    assert [f.case.name for f in failures] == [
        "viewer configures (wrongly expected to be allowed)",
        "viewer reads, but the expected rule id is wrong",
    ]
    assert failures[0].explain_failure() == (
        "expected allow, got deny (no rule allows `configure` on `device` here)"
    )
    assert failures[1].explain_failure() == (
        "expected allow by [some-other-rule], got allow by [customer-read-network] "
        "(allowed by rule `customer-read-network`)"
    )
    assert str(failures[0]).startswith("tests/wrong_test.yaml:4: viewer configures")


def test_uncovered_rules_are_listed(make_bundle: BundleFactory) -> None:
    """Rules no case exercises show up as uncovered."""
    path = make_bundle(
        {"tests/inline_test.yaml": INLINE_ONLY},
        remove=("tests/customer_test.yaml", "tests/internal_test.yaml"),
    )
    result = run_suite(load_snapshot(path))
    assert result.ok
    assert "customer-read-network" not in result.uncovered_rules
    assert "deny-reboot-outside-window" in result.uncovered_rules


def test_bad_test_file_problems(make_bundle: BundleFactory) -> None:
    """Unknown fixtures and bad expectations are problems with lines; the suite is not ok."""
    text = """\
cases:
  - name: refers to a missing fixture
    principal: nobody
    action: read
    resource: {kind: device, id: d, tenant: acme}
    expect: allow
  - name: bad expectation
    principal: {id: u, tenant: acme}
    action: read
    resource: {kind: device, id: d, tenant: acme}
    expect: maybe
"""
    path = make_bundle({"tests/bad_test.yaml": text})
    snapshot = load_snapshot(path)
    _, problems = load_cases(snapshot.bundle.source)
    assert [(p.code, p.line) for p in problems] == [("unknown_fixture", 3), ("invalid_value", 11)]
    assert run_suite(snapshot).ok is False


def test_no_tests_is_a_problem(make_bundle: BundleFactory) -> None:
    """A bundle without test files cannot pass its own test gate."""
    path = make_bundle(remove=("tests/customer_test.yaml", "tests/internal_test.yaml"))
    result = run_suite(load_snapshot(path))
    assert [p.code for p in result.problems] == ["no_tests"]
    assert result.ok is False
