"""Rendering of evaluation reports: `test` runs and `explain` traces.

A failing case is shown the way a reviewer debugs it: where the case is, what it expected,
what the engine decided and by which rules. An explanation is a table with one row per rule
that targets the request's kind or action, one column per part of the rule.
"""

from __future__ import annotations

from cnm_policy.review.explain import Explanation, RuleExplanation
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
from cnm_policy.review.testrun import TestReport

__all__ = ["render_explain", "render_test"]


def render_test(report: TestReport, fmt: Format, *, verbose: bool = False) -> str:
    """The test report in `fmt`; `verbose` also lists passing cases (text only)."""
    if fmt is Format.JSON:
        return to_json(report.to_dict())
    if fmt is Format.MARKDOWN:
        return _test_markdown(report)
    lines = problem_lines(report.problems)
    suite = report.suite
    if suite is None:
        lines.append(f"{report.origin}: invalid bundle, no tests run")
        return "\n".join(lines) + "\n"
    for result in suite.results:
        where = location(result.case.file, result.case.line)
        if not result.passed:
            lines.extend([f"FAIL {where}: {result.case.name}", f"     {result.explain_failure()}"])
        elif verbose:
            lines.append(f"ok   {where}: {result.case.name}")
    lines.append(
        f"{report.origin}: {counted(suite.total, 'case')}, "
        f"{suite.total - len(suite.failures)} passed, {len(suite.failures)} failed"
    )
    lines.append(_coverage_line(report))
    lines.extend(f"  uncovered: {location(r.file, r.line)}: {r.id}" for r in report.uncovered)
    return "\n".join(lines) + "\n"


def _coverage_line(report: TestReport) -> str:
    total = len(report.bundle.rules) if report.bundle else 0
    covered = total - len(report.uncovered)
    return f"rule coverage: {covered}/{total} rules ({report.coverage:.0%})"


def _test_markdown(report: TestReport) -> str:
    suite = report.suite
    mark = "✅" if report.ok else "❌"
    lines = [f"### {mark} Policy tests: {md_code(report.origin)}", ""]
    if report.problems:
        headers = ("Severity", "Code", "Location", "Message")
        lines.extend([*md_table(headers, problem_rows(report.problems)), ""])
    if suite is None:
        return "\n".join([*lines, "Invalid bundle: no tests run.", ""])
    passed = suite.total - len(suite.failures)
    coverage = _coverage_line(report).capitalize()
    lines.extend([f"{passed}/{suite.total} cases passed. {coverage}.", ""])
    if suite.failures:
        rows = [
            [
                md_cell(r.case.name),
                md_code(location(r.case.file, r.case.line)),
                md_cell(r.explain_failure()),
            ]
            for r in suite.failures
        ]
        lines.extend([*md_table(("Failing case", "Location", "Expected vs actual"), rows), ""])
    if report.uncovered:
        listed = ", ".join(md_code(rule.id) for rule in report.uncovered)
        lines.extend([f"Uncovered rules: {listed}", ""])
    return "\n".join(lines)


def render_explain(explanation: Explanation, fmt: Format) -> str:
    """The explanation in `fmt`."""
    if fmt is Format.JSON:
        return to_json(explanation.to_dict())
    decision, request = explanation.decision, explanation.request
    verdict = "ALLOW" if decision.allowed else "DENY"
    roles = ", ".join(explanation.effective_roles) or "none"
    header = [
        f"decision: {verdict} - {decision.reason}",
        f"policy: {decision.policy_name} {decision.policy_version} ({decision.policy_digest})",
        f"principal: `{request.principal.id}` in `{request.principal.tenant}`, "
        f"roles with inherited: {roles}",
        f"request: `{request.action}` on {request.resource.kind} `{request.resource.id}` "
        f"in `{request.resource.tenant}`",
    ]
    if explanation.unknown_roles:
        header.append("unknown roles (grant nothing): " + ", ".join(explanation.unknown_roles))
    header.extend(f"error: {error}" for error in decision.errors)
    header.extend(
        f"obligation: {o.type} ({', '.join(f'{k}={v}' for k, v in o.params)}) from `{o.rule_id}`"
        for o in decision.obligations
    )
    headers = ("rule", "effect", "role", "kind", "action", "scope", "condition", "outcome")
    rows = [_row(r) for r in explanation.rules]
    if fmt is Format.MARKDOWN:
        body = md_table(headers, [[md_cell(cell) for cell in row] for row in rows])
        return "\n".join([f"- {line}" for line in header] + ["", *body, ""])
    if not rows:
        return "\n".join([*header, "no rule targets this kind or action"]) + "\n"
    return "\n".join([*header, "", *_text_table(headers, rows)]) + "\n"


def _mark(matched: bool) -> str:
    return "yes" if matched else "no"


def _row(item: RuleExplanation) -> list[str]:
    trace, rule = item.trace, item.rule
    scope = rule.scope.value + (f" within {', '.join(rule.tenants)}" if rule.tenants else "")
    condition = item.condition_state
    if rule.condition is not None:
        condition = f"{condition}: {rule.condition.source}"
    if trace.error:
        condition = f"error: {trace.error}"
    return [
        rule.id,
        rule.effect.value,
        _mark(trace.role_matched),
        _mark(trace.kind_matched),
        _mark(trace.action_matched),
        f"{_mark(trace.scope_matched)} ({scope})",
        condition,
        _OUTCOMES[item.outcome] if item.trace.error is None else _error_outcome(item),
    ]


_OUTCOMES = {
    "decided": "APPLIED",
    "overridden": "overridden",
    "matched": "matched, no allow to override",
    "not applied": "-",
}


def _error_outcome(item: RuleExplanation) -> str:
    # An error decides only when an allow was in play; otherwise the default deny did.
    if item.trace.rule_id in item.decision.rule_ids:
        return "ERROR: forces deny"
    return "error, no allow to override"


def _text_table(headers: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *rows]
    ]
