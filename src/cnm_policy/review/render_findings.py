"""Rendering of `validate` and `lint` reports: lists of located findings.

Both print one line per finding in the ``file:line: severity [code] message`` shape compilers
use, so editors and CI annotations can jump to the line; Markdown puts the same in a table.
Paths are bundle-relative; ``relocate_*`` prefix them (``--paths repo``) to read from elsewhere.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from cnm_policy.errors import PolicyProblem
from cnm_policy.review.lint import Finding, LintReport, Severity
from cnm_policy.review.report import (
    Format,
    counted,
    location,
    md_cell,
    md_code,
    md_table,
    problem_lines,
    problem_rows,
    to_json,
)
from cnm_policy.review.validate import ValidationReport

__all__ = ["relocate_lint", "relocate_validation", "render_lint", "render_validation"]

_Located = TypeVar("_Located", PolicyProblem, Finding)
_PLURALS = {Severity.ERROR: "errors", Severity.WARNING: "warnings", Severity.INFO: "info"}


def relocate_validation(report: ValidationReport, prefix: str) -> ValidationReport:
    """The same report with `prefix` before every problem's file (``policies/cnm/``)."""
    return replace(report, problems=_relocated(report.problems, prefix)) if prefix else report


def relocate_lint(report: LintReport, prefix: str) -> LintReport:
    """The same report with `prefix` before every finding's and problem's file."""
    if not prefix:
        return report
    findings = tuple(_prefixed(f, prefix) for f in report.findings)
    return replace(report, problems=_relocated(report.problems, prefix), findings=findings)


def _relocated(problems: tuple[PolicyProblem, ...], prefix: str) -> tuple[PolicyProblem, ...]:
    return tuple(_prefixed(p, prefix) for p in problems)


def _prefixed(item: _Located, prefix: str) -> _Located:
    return replace(item, file=f"{prefix}{item.file}")


def render_validation(report: ValidationReport, fmt: Format) -> str:
    """The validation report in `fmt`."""
    if fmt is Format.JSON:
        return to_json(report.to_dict())
    bundle = report.bundle
    status = "valid" if bundle is not None and not report.errors else "invalid"
    counts = f"{counted(len(report.errors), 'error')}, {counted(len(report.warnings), 'warning')}"
    detail = ""
    if bundle is not None:
        detail = (
            f"bundle `{bundle.manifest.name}` {bundle.manifest.version}: "
            f"{counted(len(bundle.roles), 'role')}, {counted(len(bundle.kinds), 'kind')}, "
            f"{counted(len(bundle.rules), 'rule')}, {counted(report.case_count, 'test case')}"
        )
    if fmt is Format.MARKDOWN:
        mark = "✅" if status == "valid" else "❌"
        lines = [f"### {mark} Policy validation: {md_code(report.origin)} is {status}", ""]
        lines.extend([f"{detail}; {counts}" if detail else counts, ""])
        if report.problems:
            headers = ("Severity", "Code", "Location", "Message")
            lines.extend([*md_table(headers, problem_rows(report.problems)), ""])
        return "\n".join(lines)
    lines = problem_lines(report.problems)
    summary = f"{report.origin}: {status} ({counts})"
    lines.append(f"{summary}; {detail}" if detail else summary)
    return "\n".join(lines) + "\n"


def render_lint(report: LintReport, fmt: Format) -> str:
    """The lint report in `fmt`; an invalid bundle shows its validation errors instead."""
    if fmt is Format.JSON:
        return to_json(report.to_dict())
    counts = ", ".join(
        counted(sum(1 for f in report.findings if f.severity is s), s.value, _PLURALS[s])
        for s in Severity
    )
    if fmt is Format.MARKDOWN:
        return _lint_markdown(report, counts)
    if report.bundle is None:
        lines = problem_lines(report.problems)
        lines.append(f"{report.origin}: invalid bundle, not linted")
        return "\n".join(lines) + "\n"
    lines = [
        f"{location(f.file, f.line)}: {f.severity.value} [{f.code}] {f.message}"
        for f in report.findings
    ]
    lines.append(f"{report.origin}: {counted(len(report.findings), 'finding')} ({counts})")
    return "\n".join(lines) + "\n"


def _lint_markdown(report: LintReport, counts: str) -> str:
    if report.bundle is None:
        lines = [f"### ❌ Policy lint: {md_code(report.origin)} is invalid, not linted", ""]
        headers = ("Severity", "Code", "Location", "Message")
        return "\n".join([*lines, *md_table(headers, problem_rows(report.problems)), ""])
    mark = "⚠️" if report.at_or_above(Severity.WARNING) else "✅"
    lines = [f"### {mark} Policy lint: {md_code(report.origin)}", "", counts, ""]
    if report.findings:
        rows = [
            [
                f.severity.value,
                md_code(f.code),
                md_code(location(f.file, f.line)),
                md_cell(f.message),
            ]
            for f in report.findings
        ]
        lines.extend([*md_table(("Severity", "Code", "Location", "Message"), rows), ""])
    return "\n".join(lines)
