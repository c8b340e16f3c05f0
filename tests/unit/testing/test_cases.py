"""The bundle test runner: expectations, failure reports, coverage and file problems."""

from __future__ import annotations

import time

import pytest

from cnm_policy import load_snapshot
from cnm_policy.errors import PolicyProblem
from cnm_policy.policy import BundleSource, _yaml_bounds, parse_bundle, read_bundle_dir
from cnm_policy.review.validate import validate_source
from cnm_policy.testing import load_cases, run_suite
from tests.conftest import DEFAULT_BUNDLE, BundleFactory

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


CASE = """\
{fixtures}cases:
  - name: {name}
    principal: {principal}
    action: {action}
    resource: {resource}
    expect: deny
"""
VIEWER = "{id: u, tenant: acme, roles: [customer-viewer]}"
DEVICE = "{kind: device, id: d, tenant: acme}"


def case_problems(make_bundle: BundleFactory, **parts: str) -> list[tuple[str, int | None]]:
    """(code, line) of every problem a one-case test file has."""
    fields = {"fixtures": "", "name": "n", "principal": VIEWER, "action": "read"}
    fields["resource"] = DEVICE
    path = make_bundle({"tests/zz_test.yaml": CASE.format(**{**fields, **parts})})
    _, problems = load_cases(read_bundle_dir(path))
    return [(p.code, p.line) for p in problems if p.file == "tests/zz_test.yaml"]


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"principal": "{id: u, tenant: acme, roles: [], attributes: [1, 2]}"}, 3),
        ({"principal": "{id: u, tenant: acme, roles: [], attributes: xy}"}, 3),
        ({"principal": "{id: u, tenant: acme, roles: 5}"}, 3),
        ({"principal": "{id: u, tenant: acme, roles: customer-viewer}"}, 3),
        ({"principal": "{id: u, tenant: {a: 1}, roles: []}"}, 3),
        ({"principal": "{use: [1], id: u}"}, 3),
        ({"resource": "{kind: device, id: [d], tenant: acme}"}, 5),
        ({"resource": "{use: r, attributes: [1]}", "fixtures": f"resources:\n  r: {DEVICE}\n"}, 7),
        ({"name": "[a, b]"}, 2),
        ({"action": "[read]"}, 4),
    ],
)
def test_mistyped_case_fields_are_located_problems(
    make_bundle: BundleFactory, parts: dict[str, str], expected: int
) -> None:
    """Wrong types in a case or fixture are `invalid_type` at their line, never a crash."""
    assert case_problems(make_bundle, **parts) == [("invalid_type", expected)]


def test_an_alias_bomb_in_fixture_attributes_is_refused(make_bundle: BundleFactory) -> None:
    """The bomb that used to pass the gate at 1.2 GB is a located error, quickly."""
    levels = [f"&b0 [{', '.join(['lol'] * 9)}]"]
    levels += [f"&b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, 9)]
    principal = "{id: u, tenant: acme, roles: [], attributes: {big: [" + ", ".join(levels) + "]}}"
    started = time.monotonic()
    assert case_problems(make_bundle, principal=principal) == [("alias_expansion_too_large", 3)]
    assert time.monotonic() - started < 2.0


def test_a_long_case_name_is_cut_in_messages(make_bundle: BundleFactory) -> None:
    """A case name is echoed at most EXCERPT_CHARS long in a problem message."""
    path = make_bundle(
        {
            "tests/zz_test.yaml": CASE.format(
                fixtures="", name="x" * 5000, principal=VIEWER, action="read", resource=DEVICE
            ).replace("expect: deny", "expect: maybe")
        }
    )
    _, problems = load_cases(read_bundle_dir(path))
    assert [len(p.message) < 200 for p in problems] == [True]


def test_a_partly_read_tree_does_not_claim_it_has_no_tests() -> None:
    """After `too_many_files` only part of the tree was read: `no_tests` would mislead."""
    truncated = BundleSource("x", {}, (PolicyProblem("too_many_files", "m", "junk"),))
    assert load_cases(truncated) == ((), ())


def test_a_failing_case_with_a_huge_name_prints_short(make_bundle: BundleFactory) -> None:
    """The gate's error lists failing cases: a 100,000-character name is cut to an excerpt."""
    text = CASE.format(
        fixtures="", name="n" * 100_000, principal=VIEWER, action="configure", resource=DEVICE
    )
    path = make_bundle({"tests/zz_test.yaml": text.replace("expect: deny", "expect: allow")})
    failures = run_suite(load_snapshot(path)).failures
    assert [len(str(failure)) < 300 for failure in failures] == [True]


def test_rules_and_tests_share_one_weight_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test files may add only what the rule files left: each budget alone no longer fits all."""
    snapshot = load_snapshot(DEFAULT_BUNDLE)
    monkeypatch.setattr(_yaml_bounds, "MAX_BUNDLE_WEIGHT", snapshot.bundle.weight + 10)
    codes = {(p.code, p.file.startswith("tests/")) for p in run_suite(snapshot).problems}
    assert {("bundle_too_large", True)} == codes


def test_validate_refuses_a_bundle_whose_rules_and_tests_together_are_too_heavy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`validate` charges both to one budget, so rules plus tests over it is one error."""
    source = read_bundle_dir(DEFAULT_BUNDLE)
    rules_weight = parse_bundle(source)[0].weight  # type: ignore[union-attr]
    monkeypatch.setattr(_yaml_bounds, "MAX_BUNDLE_WEIGHT", rules_weight + 10)
    report = validate_source(source)
    assert sorted({p.code for p in report.errors}) == ["bundle_too_large"]


def test_fixture_values_a_request_cannot_carry_are_located_errors(
    make_bundle: BundleFactory,
) -> None:
    """A `!!set` or `!!binary` fixture attribute is refused at its line (it was "valid")."""
    path = make_bundle(
        {
            "tests/typed_test.yaml": "principals:\n"
            "  p: {id: u-1, tenant: acme, attributes: {mfa: !!set {a, b}}}\n"
            "  q: {id: u-1, tenant: acme, attributes: {b: !!binary aGVsbG8=}}\n"
            "cases: []\n"
        }
    )
    _, problems = load_cases(read_bundle_dir(path))
    assert [(p.code, p.file, p.line) for p in problems] == [
        ("unsupported_yaml_type", "tests/typed_test.yaml", 2)
    ]
