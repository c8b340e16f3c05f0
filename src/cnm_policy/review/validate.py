"""`validate`: every problem in a bundle and its test files, at once, each at file:line.

Joins the loader's and the test loader's problems, and cross-checks cases against the bundle
(a case expecting an unknown rule is an error, naming an unknown role a warning).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cnm_policy.errors import PolicyProblem
from cnm_policy.policy import Bundle, BundleSource, parse_bundle
from cnm_policy.policy._fields import Report, excerpt
from cnm_policy.policy._yaml_bounds import NodeBudget
from cnm_policy.testing import TestCase, load_cases

__all__ = ["ValidationReport", "problem_dict", "sorted_problems", "validate_source"]


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of validating one bundle: the bundle when valid, and every problem."""

    origin: str
    bundle: Bundle | None
    problems: tuple[PolicyProblem, ...]
    case_count: int

    @property
    def errors(self) -> tuple[PolicyProblem, ...]:
        """Problems of error severity: any one makes the bundle unusable."""
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[PolicyProblem, ...]:
        """Problems a reviewer should look at, which do not block loading."""
        return tuple(p for p in self.problems if p.severity != "error")

    def ok(self, *, strict: bool = False) -> bool:
        """No errors (and, when `strict`, no warnings either)."""
        return not (self.problems if strict else self.errors)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        bundle = self.bundle
        return {
            "origin": self.origin,
            "valid": bundle is not None and not self.errors,
            "bundle": None
            if bundle is None
            else {
                "name": bundle.manifest.name,
                "version": bundle.manifest.version,
                "digest": bundle.digest,
                "roles": len(bundle.roles),
                "kinds": len(bundle.kinds),
                "rules": len(bundle.rules),
            },
            "cases": self.case_count,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [problem_dict(p) for p in self.problems],
        }


def problem_dict(problem: PolicyProblem) -> dict[str, Any]:
    """The JSON form of one problem."""
    return {
        "code": problem.code,
        "severity": problem.severity,
        "message": problem.message,
        "file": problem.file,
        "line": problem.line,
    }


def validate_source(source: BundleSource) -> ValidationReport:
    """Validate the bundle and its tests; never raises for content problems."""
    budget = NodeBudget()  # one for the rules and the tests together
    bundle, problems = parse_bundle(source, budget)
    cases, case_problems = load_cases(source, budget)
    found = [*problems, *case_problems]
    if bundle is not None:
        capped = Report()  # the bundle and its test files are capped already: the cases too
        for case in cases:
            for problem in _case_problems(bundle, case):
                capped.add(problem)
        found.extend(capped.problems)
    return ValidationReport(
        origin=source.origin,
        bundle=bundle,
        problems=sorted_problems(found),
        case_count=len(cases),
    )


def sorted_problems(problems: Iterable[PolicyProblem]) -> tuple[PolicyProblem, ...]:
    """Problems in reading order: by file, then line, then code."""
    return tuple(sorted(problems, key=lambda p: (p.file, p.line or 0, p.code)))


def _case_problems(bundle: Bundle, case: TestCase) -> list[PolicyProblem]:
    """References in one case that the bundle does not define."""
    found = []

    hint = " (the expected deny may come from this mistake)" if not case.expect_allowed else ""

    def add(code: str, message: str, severity: str = "warning") -> None:
        found.append(
            PolicyProblem(
                code, f"case `{excerpt(case.name)}`: {message}", case.file, case.line, severity
            )
        )

    for role in case.principal.roles:
        if role not in bundle.roles:
            add("test_unknown_role", f"principal has unknown role `{excerpt(role)}`{hint}")
    kind = bundle.kinds.get(case.resource.kind)
    if kind is None:
        add("test_unknown_kind", f"unknown resource kind `{excerpt(case.resource.kind)}`{hint}")
    elif case.action not in kind.actions:
        add(
            "test_unknown_action",
            f"action `{excerpt(case.action)}` is not defined for `{kind.name}`{hint}",
        )
    rule_ids = {rule.id for rule in bundle.rules}
    for rule_id in case.expect_rules or ():
        if rule_id not in rule_ids:
            add("test_unknown_rule", f"expects unknown rule `{excerpt(rule_id)}`", "error")
    return found
