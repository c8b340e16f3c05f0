"""`lint`: valid bundles that are still risky, each finding with a stable code and severity.

Checks run on the validated bundle (wildcards expanded, inheritance known); :data:`LINT_CODES`
is the documented contract (severities: docs/design/policy-language.md).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cnm_policy.engine import compile_bundle
from cnm_policy.errors import PolicyProblem
from cnm_policy.policy import Bundle, BundleSource, RuleDef, parse_bundle
from cnm_policy.review import _lint_checks as checks
from cnm_policy.review._lint_routes import route_findings
from cnm_policy.review.validate import problem_dict, sorted_problems
from cnm_policy.testing import run_suite

__all__ = [
    "DEFAULT_DESTRUCTIVE_ACTIONS",
    "LINT_CODES",
    "Finding",
    "LintCode",
    "LintReport",
    "Severity",
    "lint_bundle",
    "lint_source",
]

DEFAULT_DESTRUCTIVE_ACTIONS = ("configure", "reboot")


class Severity(StrEnum):
    """How much a finding matters; `--fail-on` gates on a minimum severity."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe."""
        return {"error": 3, "warning": 2, "info": 1}[self.value]


@dataclass(frozen=True, slots=True)
class LintCode:
    """One documented check: its stable code, severity and what it means."""

    code: str
    severity: Severity
    summary: str


LINT_CODES: Mapping[str, LintCode] = {
    c.code: c
    for c in (
        LintCode(
            "customer_wildcard",
            Severity.ERROR,
            "an allow rule reaches customer-side roles through `*` roles, resources or actions, "
            "so a role, kind or action added later is granted to customers silently",
        ),
        LintCode(
            "internal_any_unconditioned",
            Severity.ERROR,
            "an allow rule gives internal-side roles scope `any` (every customer) with no "
            "condition such as MFA",
        ),
        LintCode(
            "unguarded_destructive_action",
            Severity.ERROR,
            "an allow rule grants a destructive action (configure, reboot) with no condition "
            "and no conditional deny guardrail covers it",
        ),
        LintCode(
            "dead_allow_rule",
            Severity.ERROR,
            "every grant of an allow rule is always overridden by a deny rule (the rule can "
            "never allow anything)",
        ),
        LintCode(
            "shadowed_allow_grants",
            Severity.WARNING,
            "some grants of an allow rule are always overridden by a deny rule",
        ),
        LintCode(
            "deny_skipped_when_absent",
            Severity.WARNING,
            "a deny rule's condition is false when the request leaves a field out (or sends "
            "null), compared with a literal or another field, so a caller skips the guardrail "
            "by omission; `has(field)` in the condition states that absence is meant to allow",
        ),
        LintCode(
            "allow_granted_when_absent",
            Severity.WARNING,
            "an allow rule's condition is true when the request leaves a field out (or sends "
            "null), e.g. `x != true`, so a caller gains access by omission; `has(field)` in the "
            "condition states that absence is meant to allow",
        ),
        LintCode(
            "duplicate_rule",
            Severity.WARNING,
            "a rule has the same effect, roles, grants, scope, tenants and condition as another",
        ),
        LintCode(
            "redundant_rule",
            Severity.WARNING,
            "everything a rule grants or denies is already granted or denied by other rules "
            "(counting role inheritance)",
        ),
        LintCode(
            "untested_rule",
            Severity.WARNING,
            "no test case is decided by the rule (rule coverage)",
        ),
        LintCode(
            "overlapping_rules",
            Severity.INFO,
            "part of what a rule grants or denies is already covered by another rule",
        ),
        LintCode(
            "route_unreachable",
            Severity.ERROR,
            "a route in routes.yaml never matches: an earlier route matches all its requests",
        ),
        LintCode(
            "route_overlap",
            Severity.WARNING,
            "two routes in routes.yaml match some of the same requests; the earlier decides",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One risky pattern, located at the rule that shows it."""

    code: str
    severity: Severity
    message: str
    file: str
    line: int | None
    rules: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "rules": list(self.rules),
        }


@dataclass(frozen=True, slots=True)
class LintReport:
    """Lint findings for one bundle, or the validation problems that stopped linting."""

    origin: str
    bundle: Bundle | None
    problems: tuple[PolicyProblem, ...]
    findings: tuple[Finding, ...]

    def at_or_above(self, severity: Severity) -> tuple[Finding, ...]:
        """Findings at least as severe as `severity`."""
        return tuple(f for f in self.findings if f.severity.rank >= severity.rank)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        counts = {s.value: sum(1 for f in self.findings if f.severity is s) for s in Severity}
        return {
            "origin": self.origin,
            "valid": self.bundle is not None,
            "problems": [problem_dict(p) for p in self.problems],
            "counts": counts,
            "findings": [f.to_dict() for f in self.findings],
        }


def lint_source(
    source: BundleSource,
    *,
    destructive_actions: Collection[str] = DEFAULT_DESTRUCTIVE_ACTIONS,
    disabled: Collection[str] = (),
) -> LintReport:
    """Validate, run the bundle's own tests for coverage, then lint."""
    bundle, problems = parse_bundle(source)
    if bundle is None:
        errors = sorted_problems(p for p in problems if p.severity == "error")
        return LintReport(source.origin, None, errors, ())
    covered = run_suite(compile_bundle(bundle)).covered_rules
    findings = lint_bundle(
        bundle, covered=covered, destructive_actions=destructive_actions, disabled=disabled
    )
    return LintReport(source.origin, bundle, (), findings)


def lint_bundle(
    bundle: Bundle,
    *,
    covered: Collection[str] | None = None,
    destructive_actions: Collection[str] = DEFAULT_DESTRUCTIVE_ACTIONS,
    disabled: Collection[str] = (),
) -> tuple[Finding, ...]:
    """Every finding for `bundle`; `covered` (rule ids some test exercises) enables coverage."""
    view = checks.BundleView.of(bundle)
    raw: list[tuple[str, RuleDef, str, tuple[str, ...]]] = [
        *checks.customer_wildcards(view),
        *checks.internal_any_unconditioned(view),
        *checks.unguarded_destructive(view, frozenset(destructive_actions)),
        *checks.shadowed_allows(view),
        *checks.absence_decides(view),
        *checks.duplicates_and_redundancy(view),
    ]
    if covered is not None:
        raw.extend(
            ("untested_rule", rule, f"no test case is decided by rule `{rule.id}`", (rule.id,))
            for rule in bundle.rules
            if rule.id not in covered
        )
    found = [*_findings(raw, disabled), *_route_findings(bundle, disabled)]
    return tuple(sorted(found, key=lambda f: (f.file, f.line or 0, f.code)))


def _route_findings(bundle: Bundle, disabled: Collection[str]) -> Iterable[Finding]:
    for code, message, file, line in route_findings(bundle):
        if code not in disabled:
            yield Finding(code, LINT_CODES[code].severity, message, file, line)


def _findings(
    raw: Iterable[tuple[str, RuleDef, str, tuple[str, ...]]], disabled: Collection[str]
) -> Iterable[Finding]:
    for code, rule, message, rules in raw:
        if code in disabled:
            continue
        yield Finding(code, LINT_CODES[code].severity, message, rule.file, rule.line, rules)
