"""`test`: run a bundle's own test cases and report failures and rule coverage.

The runner is :mod:`cnm_policy.testing` (shared with the hot-reload gate, so "passes in CI"
means "would go live"); this module only adds what a report needs: the bundle that failed to
load, each failure's expected vs actual, and the uncovered rules located at file:line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnm_policy.engine import compile_bundle
from cnm_policy.errors import PolicyProblem
from cnm_policy.policy import Bundle, BundleSource, RuleDef, parse_bundle
from cnm_policy.review.validate import problem_dict, sorted_problems
from cnm_policy.testing import CaseResult, SuiteResult, run_suite

__all__ = ["TestReport", "case_dict", "run_bundle_tests"]


@dataclass(frozen=True, slots=True)
class TestReport:
    """A bundle's test run; `suite` is ``None`` when the bundle itself is invalid."""

    __test__ = False  # not a pytest test class

    origin: str
    bundle: Bundle | None
    problems: tuple[PolicyProblem, ...]
    suite: SuiteResult | None

    @property
    def ok(self) -> bool:
        """The bundle loads, its test files are valid, there are cases, and all pass."""
        return self.suite is not None and self.suite.ok

    @property
    def uncovered(self) -> tuple[RuleDef, ...]:
        """Rules no case is decided by, in bundle order."""
        if self.bundle is None or self.suite is None:
            return ()
        ids = set(self.suite.uncovered_rules)
        return tuple(rule for rule in self.bundle.rules if rule.id in ids)

    @property
    def coverage(self) -> float:
        """Share of rules some case is decided by (1.0 for a bundle without rules)."""
        if self.bundle is None or not self.bundle.rules:
            return 1.0
        return 1.0 - len(self.uncovered) / len(self.bundle.rules)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        suite = self.suite
        return {
            "origin": self.origin,
            "ok": self.ok,
            "problems": [problem_dict(p) for p in self.problems],
            "total": suite.total if suite else 0,
            "passed": suite.total - len(suite.failures) if suite else 0,
            "failed": len(suite.failures) if suite else 0,
            "cases": [case_dict(r) for r in suite.results] if suite else [],
            "coverage": {
                "ratio": round(self.coverage, 4),
                "uncovered": [
                    {"rule": rule.id, "file": rule.file, "line": rule.line}
                    for rule in self.uncovered
                ],
            },
        }


def case_dict(result: CaseResult) -> dict[str, Any]:
    """The JSON form of one case result."""
    case, decision = result.case, result.decision
    return {
        "name": case.name,
        "file": case.file,
        "line": case.line,
        "passed": result.passed,
        "expected": {
            "decision": "allow" if case.expect_allowed else "deny",
            "rules": list(case.expect_rules) if case.expect_rules is not None else None,
        },
        "actual": None
        if decision is None
        else {
            "decision": "allow" if decision.allowed else "deny",
            "rules": list(decision.rule_ids),
            "reason": decision.reason,
        },
        "error": result.error,
        "failure": result.explain_failure() or None,
    }


def run_bundle_tests(source: BundleSource) -> TestReport:
    """Validate and compile the bundle, then run its `tests/*_test.yaml` cases."""
    bundle, problems = parse_bundle(source)
    if bundle is None:
        errors = sorted_problems(p for p in problems if p.severity == "error")
        return TestReport(source.origin, None, errors, None)
    suite = run_suite(compile_bundle(bundle))
    return TestReport(source.origin, bundle, sorted_problems(suite.problems), suite)
