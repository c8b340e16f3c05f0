"""Bundle validation: every mistake is reported, with its stable code, file and line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cnm_policy import BundleInvalidError, PolicySourceError
from cnm_policy.errors import PolicyProblem
from cnm_policy.policy import load_bundle, parse_bundle, read_bundle_dir
from tests.conftest import BundleFactory

RULE = """\
rules:
  - id: {id}
    description: a rule under test
    effect: {effect}
    roles: {roles}
    resources: {resources}
    actions: {actions}
    scope: {scope}
{extra}"""


def rule_file(
    id: str = "test-rule",
    effect: str = "allow",
    roles: str = "[customer-viewer]",
    resources: str = "[device]",
    actions: str = "[read]",
    scope: str = "subtree",
    extra: str = "",
) -> str:
    """A one-rule file: `id` on line 2, `roles` on 5, `scope` on 8, `extra` from line 9."""
    return RULE.format(
        id=id,
        effect=effect,
        roles=roles,
        resources=resources,
        actions=actions,
        scope=scope,
        extra=extra,
    )


def problems_of(path: Path) -> list[PolicyProblem]:
    """The error-severity problems parsing the bundle at `path` finds."""
    _, problems = parse_bundle(read_bundle_dir(path))
    return [p for p in problems if p.severity == "error"]


def only_problem(path: Path) -> PolicyProblem:
    """The bundle's one error-severity problem (fails if there are more or none)."""
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


def test_default_bundle_is_valid(default_bundle: Path) -> None:
    """The shipped bundle loads without a single problem."""
    bundle, problems = parse_bundle(read_bundle_dir(default_bundle))
    assert bundle is not None
    assert problems == ()


def test_unknown_role_names_file_and_line(make_bundle: BundleFactory) -> None:
    """A rule naming an undefined role is rejected at the `roles` line."""
    path = make_bundle({"rules/x.yaml": rule_file(roles="[noc-admin]")})
    problem = only_problem(path)
    assert (problem.code, problem.file, problem.line) == ("unknown_role", "rules/x.yaml", 5)
    assert "`noc-admin`" in problem.message


def test_unknown_scope(make_bundle: BundleFactory) -> None:
    """Scopes are a closed set; a typo is an error, not a silent deny."""
    problem = only_problem(make_bundle({"rules/x.yaml": rule_file(scope="everywhere")}))
    assert (problem.code, problem.line) == ("unknown_scope", 8)


def test_duplicate_rule_id_points_at_both(make_bundle: BundleFactory) -> None:
    """A rule id reused across files names the second place and where the first one is."""
    path = make_bundle({"rules/x.yaml": rule_file(id="customer-read-network")})
    problem = only_problem(path)
    assert problem.code == "duplicate_rule_id"
    assert problem.file == "rules/x.yaml"
    assert "rules/customer.yaml:" in problem.message


def test_condition_that_does_not_parse(make_bundle: BundleFactory) -> None:
    """A condition with a syntax error is reported at its `when` line."""
    path = make_bundle({"rules/x.yaml": rule_file(extra="    when: principal.attributes.mfa ==\n")})
    problem = only_problem(path)
    assert (problem.code, problem.line) == ("condition_syntax", 9)


def test_condition_calling_unknown_function(make_bundle: BundleFactory) -> None:
    """Only allow-listed functions exist in conditions."""
    path = make_bundle({"rules/x.yaml": rule_file(extra="    when: __import__('os') == 1\n")})
    problem = only_problem(path)
    assert problem.code == "condition_syntax"
    assert "unknown function" in problem.message


@pytest.mark.parametrize("scope", ["any", "assigned"])
def test_customer_role_can_never_be_granted_cross_tenant_scope(
    make_bundle: BundleFactory, scope: str
) -> None:
    """Customer-side allow rules with scope any/assigned are validation errors."""
    problem = only_problem(make_bundle({"rules/x.yaml": rule_file(scope=scope)}))
    assert (problem.code, problem.line) == (f"customer_scope_{scope}", 8)


def test_wildcard_roles_including_customers_with_scope_any(make_bundle: BundleFactory) -> None:
    """`roles: "*"` includes customer roles, so an allow with scope any is refused."""
    path = make_bundle({"rules/x.yaml": rule_file(roles='"*"', scope="any")})
    assert only_problem(path).code == "customer_scope_any"


def test_customer_deny_rules_may_use_scope_any(make_bundle: BundleFactory) -> None:
    """Deny rules only take access away, so scope any is fine for customer roles."""
    path = make_bundle({"rules/x.yaml": rule_file(effect="deny", scope="any")})
    assert problems_of(path) == []


def test_unknown_kind_and_action(make_bundle: BundleFactory) -> None:
    """Kinds and actions must be declared in resources.yaml."""
    path = make_bundle(
        {
            "rules/x.yaml": rule_file(resources="[satellite]"),
            "rules/y.yaml": rule_file(id="other", actions="[delete]"),
        }
    )
    assert sorted(p.code for p in problems_of(path)) == ["unknown_action", "unknown_kind"]


def test_action_not_defined_for_the_kinds(make_bundle: BundleFactory) -> None:
    """Granting `reboot` on invoices is a mistake worth naming."""
    path = make_bundle({"rules/x.yaml": rule_file(resources="[invoice]", actions="[reboot]")})
    assert only_problem(path).code == "action_not_applicable"


def test_every_problem_is_reported_at_once(make_bundle: BundleFactory) -> None:
    """Validation keeps going: three broken rules give three problems."""
    text = (
        rule_file(id="a", roles="[ghost]")
        + rule_file(id="b", scope="nowhere").replace("rules:\n", "")
        + rule_file(id="c", effect="maybe").replace("rules:\n", "")
    )
    codes = sorted(p.code for p in problems_of(make_bundle({"rules/x.yaml": text})))
    assert codes == ["unknown_effect", "unknown_role", "unknown_scope"]


def test_missing_and_unknown_fields(make_bundle: BundleFactory) -> None:
    """A rule without a description and with a misspelt field gets both problems."""
    text = rule_file(extra="    condition: true\n").replace(
        "    description: a rule under test\n", ""
    )
    codes = sorted(p.code for p in problems_of(make_bundle({"rules/x.yaml": text})))
    assert codes == ["missing_field", "unknown_field"]


def test_invalid_yaml_has_a_line(make_bundle: BundleFactory) -> None:
    """Broken YAML is reported with the line the parser stopped at."""
    problem = only_problem(make_bundle({"rules/x.yaml": "rules:\n  - id: [unclosed\n"}))
    assert problem.code == "yaml_invalid"
    assert problem.line is not None


def test_duplicate_yaml_key(make_bundle: BundleFactory) -> None:
    """YAML would silently keep the last value; we report the duplicate instead."""
    text = rule_file(extra="    scope: own\n")
    problem = only_problem(make_bundle({"rules/x.yaml": text}))
    assert (problem.code, problem.line) == ("duplicate_key", 9)


def test_inheritance_cycle_and_cross_side(make_bundle: BundleFactory) -> None:
    """Roles cannot inherit themselves or a role of the other side."""
    roles = """\
roles:
  - {id: a, side: customer, inherits: [b]}
  - {id: b, side: customer, inherits: [a]}
  - {id: c, side: customer, inherits: [staff]}
  - {id: staff, side: internal}
"""
    path = make_bundle(
        {"roles.yaml": roles},
        remove=(
            "rules/customer.yaml",
            "rules/internal.yaml",
            "tests/customer_test.yaml",
            "tests/internal_test.yaml",
        ),
    )
    codes = sorted({p.code for p in problems_of(path)})
    assert codes == ["cross_side_inheritance", "inheritance_cycle"]


@pytest.mark.parametrize("parents", [(1,), (1, 2)], ids=["chain", "each-inherits-the-next-two"])
def test_long_inheritance_is_refused_quickly(
    make_bundle: BundleFactory, parents: tuple[int, ...]
) -> None:
    """1,500 roles inheriting down a chain are refused as too deep, without a crash or a wait."""
    size = 1500
    lines = ["roles:"]
    for n in range(size):
        inherits = ", ".join(f"r{n + step}" for step in parents if n + step < size)
        lines.append(f"  - {{id: r{n}, side: customer, inherits: [{inherits}]}}")
    path = make_bundle(
        # the guardrails without their internal-side rule: this bundle has no internal roles
        {"roles.yaml": "\n".join(lines) + "\n", "rules/guardrails.yaml": "rules: []\n"},
        remove=(
            "rules/customer.yaml",
            "rules/internal.yaml",
            "tests/customer_test.yaml",
            "tests/internal_test.yaml",
        ),
    )
    started = time.monotonic()
    codes = {p.code for p in problems_of(path)}
    assert time.monotonic() - started < 5.0
    assert codes == {"inheritance_too_deep", "too_many_problems"}  # listed up to the cap


def test_invalid_tenant_pin(make_bundle: BundleFactory) -> None:
    """A pinned tenant must be a valid organisation path."""
    path = make_bundle({"rules/x.yaml": rule_file(extra="    tenants: [acme//emea]\n")})
    assert only_problem(path).code == "invalid_tenant"


def test_unquoted_version_number(make_bundle: BundleFactory) -> None:
    """`version: 1.0` is a float in YAML; we ask for a quoted string."""
    path = make_bundle({"bundle.yaml": "name: cnm\nversion: 1.0\n"})
    problem = only_problem(path)
    assert (problem.code, problem.file, problem.line) == ("invalid_type", "bundle.yaml", 2)


def test_missing_manifest(make_bundle: BundleFactory) -> None:
    """A bundle without bundle.yaml is not a bundle."""
    assert only_problem(make_bundle(remove=("bundle.yaml",))).code == "missing_file"


def test_load_bundle_raises_typed_error_listing_problems(make_bundle: BundleFactory) -> None:
    """load_bundle raises BundleInvalidError whose message names file:line and code."""
    path = make_bundle({"rules/x.yaml": rule_file(roles="[noc-admin]")})
    with pytest.raises(BundleInvalidError) as caught:
        load_bundle(path)
    assert caught.value.code == "bundle_invalid"
    assert "rules/x.yaml:5: error [unknown_role]" in str(caught.value)


def test_not_a_directory(tmp_path: Path) -> None:
    """A missing bundle directory is a PolicySourceError, not a crash."""
    with pytest.raises(PolicySourceError):
        read_bundle_dir(tmp_path / "nope")


def test_unexpected_file_is_a_warning(make_bundle: BundleFactory) -> None:
    """A stray YAML file does not break the bundle but is reported."""
    bundle, problems = parse_bundle(read_bundle_dir(make_bundle({"notes.yaml": "a: 1\n"})))
    assert bundle is not None
    assert [(p.code, p.severity) for p in problems] == [("unexpected_file", "warning")]


def test_digest_changes_with_content(make_bundle: BundleFactory, default_bundle: Path) -> None:
    """Any byte change in a bundle file changes its digest."""
    original = load_bundle(default_bundle).digest
    changed = load_bundle(make_bundle({"rules/x.yaml": rule_file()})).digest
    assert original.startswith("sha256:")
    assert original != changed


def test_problems_per_file_are_capped(make_bundle: BundleFactory) -> None:
    """A file of endless mistakes lists MAX_PROBLEMS_PER_FILE, then says it stopped there."""
    from cnm_policy.policy._fields import MAX_PROBLEMS_PER_FILE  # noqa: PLC0415

    path = make_bundle({"rules/x.yaml": "rules:\n" + "- {}\n" * 10_000})
    problems = problems_of(path)
    assert len(problems) == MAX_PROBLEMS_PER_FILE + 1
    assert (problems[-1].code, problems[-1].file) == ("too_many_problems", "rules/x.yaml")
