"""`validate_source`: every bundle and test-file problem at once, plus case cross-checks."""

from __future__ import annotations

from pathlib import Path

from cnm_policy.errors import PolicyProblem
from cnm_policy.policy import read_bundle_dir
from cnm_policy.review.validate import validate_source
from tests.conftest import DEFAULT_BUNDLE
from tests.unit.review.bundles import edited, source

# `principals: {}` works around cnm_policy.testing rejecting a test file without fixtures.
HEADER = "principals: {}\nresources: {}\ncases:\n"
CASE = """\
  - name: {name}
    principal: {{id: u-1, tenant: acme, roles: [{role}]}}
    action: {action}
    resource: {{kind: {kind}, id: d-1, tenant: acme}}
    expect: {expect}
    rules: [{rules}]
"""


def locations(problems: tuple[PolicyProblem, ...]) -> list[tuple[str, str, str, int | None]]:
    """(severity, code, file, line) for each problem, in report order."""
    return [(p.severity, p.code, p.file, p.line) for p in problems]


def test_a_clean_bundle_is_valid() -> None:
    """The `good` fixture has no problem and reports its size."""
    report = validate_source(source("good"))
    assert (report.problems, report.ok(), report.case_count) == ((), True, 7)
    assert report.bundle is not None and report.bundle.manifest.name == "mini"


def test_every_mistake_is_reported_with_file_and_line() -> None:
    """The `broken` fixture's mistakes, in bundle and tests, all come out sorted by place."""
    report = validate_source(source("broken"))
    assert locations(report.problems) == [
        ("error", "invalid_value", "bundle.yaml", 2),
        ("warning", "unexpected_file", "notes.yaml", None),
        ("error", "unknown_role", "roles.yaml", 4),
        ("error", "unknown_side", "roles.yaml", 8),
        ("error", "unknown_kind", "rules/customer.yaml", 6),
        ("error", "customer_scope_any", "rules/customer.yaml", 16),
        ("error", "condition_syntax", "rules/customer.yaml", 25),
        ("error", "duplicate_key", "rules/customer.yaml", 34),
        ("error", "unknown_fixture", "tests/broken_test.yaml", 7),
        ("error", "missing_field", "tests/broken_test.yaml", 11),
    ]
    assert (
        report.bundle,
        report.ok(),
        len(report.errors),
        len(report.warnings),
    ) == (None, False, 9, 1)


def test_a_case_expecting_an_unknown_rule_is_an_error(tmp_path: Path) -> None:
    """Such a case can never pass, so validation fails on it."""
    case = HEADER + CASE.format(
        name="typo",
        role="customer-viewer",
        action="read",
        kind="device",
        expect="allow",
        rules="cust-reed",
    )
    bundle = edited(tmp_path / "b", files={"tests/extra_test.yaml": case})
    report = validate_source(read_bundle_dir(bundle))
    expected = PolicyProblem(
        "test_unknown_rule",
        "case `typo`: expects unknown rule `cust-reed`",
        "tests/extra_test.yaml",
        4,
    )
    assert ((expected,), False) == (report.problems, report.ok())


def test_unknown_names_in_a_deny_case_warn_that_the_deny_may_be_vacuous(tmp_path: Path) -> None:
    """Unknown role, kind and action are warnings; a deny expectation adds the hint."""
    cases = HEADER + "".join(
        CASE.format(name=name, role=role, action=action, kind=kind, expect=expect, rules="")
        for name, role, action, kind, expect in (
            ("a", "customer-viewr", "read", "device", "deny"),
            ("b", "customer-viewer", "delete", "device", "allow"),
            ("c", "customer-viewer", "read", "satellite", "deny"),
        )
    )
    bundle = edited(tmp_path / "b", files={"tests/extra_test.yaml": cases})
    report = validate_source(read_bundle_dir(bundle))
    hint = " (the expected deny may come from this mistake)"
    assert [
        ("test_unknown_role", "case `a`: principal has unknown role `customer-viewr`" + hint),
        ("test_unknown_action", "case `b`: action `delete` is not defined for `device`"),
        ("test_unknown_kind", "case `c`: unknown resource kind `satellite`" + hint),
    ] == [(p.code, p.message) for p in report.problems]
    assert (report.ok(), report.ok(strict=True)) == (True, False)


def test_a_bundle_without_tests_is_invalid(tmp_path: Path) -> None:
    """Every bundle carries its own cases; none at all is an error."""
    bundle = edited(tmp_path / "b", remove=("tests/mini_test.yaml",))
    report = validate_source(read_bundle_dir(bundle))
    assert locations(report.problems) == [("error", "no_tests", "tests", None)]


def test_the_default_bundle_has_no_errors() -> None:
    """The shipped policy validates (its deliberate unknown-name cases only warn)."""
    report = validate_source(read_bundle_dir(DEFAULT_BUNDLE))
    assert report.errors == ()
    assert {"test_unknown_role", "test_unknown_kind", "test_unknown_action"} >= {
        p.code for p in report.warnings
    }


def test_json_form_counts_and_lists_problems() -> None:
    """to_dict carries validity, counts and each located problem."""
    data = validate_source(source("broken")).to_dict()
    assert (data["valid"], data["bundle"], data["errors"], data["warnings"]) == (False, None, 9, 1)
    assert data["problems"][0] == {
        "code": "invalid_value",
        "severity": "error",
        "message": "version `1 0` is not a version string",
        "file": "bundle.yaml",
        "line": 2,
    }


def test_case_warnings_are_capped_per_file(tmp_path: Path) -> None:
    """Thousands of cases with an unknown role list 100 warnings, then say they stopped."""
    one = CASE.format(
        name="x", role="nobody", action="read", kind="device", expect="deny", rules=""
    )
    bundle = edited(tmp_path / "b", files={"tests/extra_test.yaml": HEADER + one * 500})
    report = validate_source(read_bundle_dir(bundle))
    extra = [p.code for p in report.problems if p.file == "tests/extra_test.yaml"]
    assert (len(extra), extra.count("too_many_problems"), report.case_count) == (101, 1, 507)


def test_reading_problems_are_reported_by_validate(tmp_path: Path) -> None:
    """A link out of the bundle is a located error in the validation report."""
    bundle = edited(tmp_path / "b")
    (tmp_path / "outside.yaml").write_text("rules: []\n", encoding="utf-8")
    (bundle / "rules" / "extra.yaml").symlink_to(tmp_path / "outside.yaml")
    report = validate_source(read_bundle_dir(bundle))
    assert locations(report.problems) == [
        ("error", "link_outside_bundle", "rules/extra.yaml", None)
    ]
