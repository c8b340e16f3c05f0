"""Policy test suites: a bundle's own cases, run, with rule coverage (public: users run theirs).

One runner serves our test suite, ``cnm-policy test`` and the reload gate (a version whose own
tests fail never goes live); reading the ``tests/*_test.yaml`` files is `testing.cases`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnm_policy.engine import PolicySnapshot, decide_batch
from cnm_policy.errors import CnmPolicyError, PolicyProblem
from cnm_policy.model import Decision
from cnm_policy.policy._fields import excerpt
from cnm_policy.policy._yaml_bounds import NodeBudget
from cnm_policy.testing.cases import DEFAULT_NOW, TEST_FILE_SUFFIX, TestCase, load_cases

__all__ = [
    "DEFAULT_NOW",
    "TEST_FILE_SUFFIX",
    "CaseResult",
    "SuiteResult",
    "TestCase",
    "load_cases",
    "run_cases",
    "run_suite",
]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What one case produced; `error` is set when the request itself was rejected."""

    case: TestCase
    decision: Decision | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        """True when the decision (and the rule ids, if given) match the expectation."""
        if self.decision is None:
            return False
        if self.decision.allowed != self.case.expect_allowed:
            return False
        expected = self.case.expect_rules
        return expected is None or tuple(sorted(expected)) == self.decision.rule_ids

    def explain_failure(self) -> str:
        """Expected vs actual, with the rules that decided it; empty for a passing case."""
        if self.passed:
            return ""
        expected = "allow" if self.case.expect_allowed else "deny"
        if self.case.expect_rules is not None:
            expected += f" by [{', '.join(sorted(self.case.expect_rules))}]"
        if self.decision is None:
            return f"expected {expected}, but the request was rejected: {self.error}"
        actual = "allow" if self.decision.allowed else "deny"
        actual += f" by [{', '.join(self.decision.rule_ids)}]" if self.decision.rule_ids else ""
        return f"expected {expected}, got {actual} ({self.decision.reason})"

    def __str__(self) -> str:
        where = f"{self.case.file}:{self.case.line}"
        return f"{where}: {excerpt(self.case.name)}: {self.explain_failure() or 'passed'}"


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """The outcome of a bundle's test suite, including rule coverage."""

    results: tuple[CaseResult, ...]
    problems: tuple[PolicyProblem, ...] = ()
    all_rules: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        """Number of cases run."""
        return len(self.results)

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        """The cases whose outcome differed from their expectation."""
        return tuple(r for r in self.results if not r.passed)

    @property
    def ok(self) -> bool:
        """True when the test files are valid, there is at least one case, and all pass."""
        return not self.problems and bool(self.results) and not self.failures

    @property
    def covered_rules(self) -> frozenset[str]:
        """Rules that decided at least one case."""
        return frozenset(
            rule_id for r in self.results if r.decision for rule_id in r.decision.rule_ids
        )

    @property
    def uncovered_rules(self) -> tuple[str, ...]:
        """Rules no case exercises, in bundle order."""
        covered = self.covered_rules
        return tuple(rule_id for rule_id in self.all_rules if rule_id not in covered)


def run_suite(snapshot: PolicySnapshot) -> SuiteResult:
    """Load the snapshot's own test files (the bytes it was compiled from) and run them."""
    # The rule files' weight is spent already: rules and tests share one budget.
    cases, problems = load_cases(snapshot.bundle.source, NodeBudget(spent=snapshot.bundle.weight))
    result = run_cases(snapshot, cases)
    return SuiteResult(result.results, problems, result.all_rules)


def run_cases(snapshot: PolicySnapshot, cases: tuple[TestCase, ...]) -> SuiteResult:
    """Run `cases` against `snapshot`, each at its own instant."""
    results = []
    for case in cases:
        try:
            decision = decide_batch(
                snapshot,
                case.principal,
                ((case.action, case.resource),),
                case.context,
                case.now,
                actor=case.actor,
            )[0]
        except CnmPolicyError as exc:
            results.append(CaseResult(case, None, str(exc)))
            continue
        results.append(CaseResult(case, decision))
    return SuiteResult(tuple(results), (), tuple(rule.id for rule in snapshot.bundle.rules))
