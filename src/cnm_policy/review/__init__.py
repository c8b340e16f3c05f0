"""The policy review toolkit: validate, test, lint, diff and explain, for policy pull requests.

Pure logic over bundles and decisions (nothing here prints, parses arguments or exits), each
report rendered as text, JSON or Markdown: ``render_lint(lint_source(read_source(path)), fmt)``.
"""

from cnm_policy.review.definitions import DefinitionChanges, ItemChanges, definition_changes
from cnm_policy.review.diff import (
    BundleDiff,
    BundleRef,
    ChangeKind,
    DiffWarning,
    GrantChange,
    Impact,
    diff_bundles,
)
from cnm_policy.review.explain import Explanation, RuleExplanation, explain_request
from cnm_policy.review.gitsource import parse_git_spec, read_git_bundle, read_source
from cnm_policy.review.grants import GrantKey, GrantSource, effective_grants
from cnm_policy.review.junit import junit_xml
from cnm_policy.review.lint import (
    DEFAULT_DESTRUCTIVE_ACTIONS,
    LINT_CODES,
    Finding,
    LintCode,
    LintReport,
    Severity,
    lint_bundle,
    lint_source,
)
from cnm_policy.review.reach import Reach
from cnm_policy.review.render_diff import render_diff
from cnm_policy.review.render_findings import render_lint, render_validation
from cnm_policy.review.render_runs import render_explain, render_test
from cnm_policy.review.report import Format
from cnm_policy.review.requests import parse_access_request
from cnm_policy.review.testrun import TestReport, run_bundle_tests
from cnm_policy.review.validate import ValidationReport, validate_source

__all__ = [
    "DEFAULT_DESTRUCTIVE_ACTIONS",
    "LINT_CODES",
    "BundleDiff",
    "BundleRef",
    "ChangeKind",
    "DefinitionChanges",
    "DiffWarning",
    "Explanation",
    "Finding",
    "Format",
    "GrantChange",
    "GrantKey",
    "GrantSource",
    "Impact",
    "ItemChanges",
    "LintCode",
    "LintReport",
    "Reach",
    "RuleExplanation",
    "Severity",
    "TestReport",
    "ValidationReport",
    "definition_changes",
    "diff_bundles",
    "effective_grants",
    "explain_request",
    "junit_xml",
    "lint_bundle",
    "lint_source",
    "parse_access_request",
    "parse_git_spec",
    "read_git_bundle",
    "read_source",
    "render_diff",
    "render_explain",
    "render_lint",
    "render_test",
    "render_validation",
    "run_bundle_tests",
    "validate_source",
]
