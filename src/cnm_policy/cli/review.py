"""`cnm-policy validate | test | lint | diff`: the review toolkit on the command line.

Thin adapters: read the bundle (a directory or ``git:REV:path``), call :mod:`cnm_policy.review`,
print the report, return what CI gates on: 0 ok, 1 findings (errors, failing tests, lint at or
above --fail-on, widening with --fail-on-widen, an invalid bundle), 2 usage or unreadable input.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from cnm_policy.cli._args import add_bundle_option, bundle_spec
from cnm_policy.cli._review_common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    add_review_parser,
    fail,
    read_bundle_source,
    valid_bundle,
)
from cnm_policy.review import (
    DEFAULT_DESTRUCTIVE_ACTIONS,
    LINT_CODES,
    Severity,
    diff_bundles,
    junit_xml,
    lint_source,
    render_diff,
    render_lint,
    render_test,
    render_validation,
    run_bundle_tests,
    validate_source,
)
from cnm_policy.review.gitsource import GIT_PREFIX, parse_git_spec
from cnm_policy.review.render_findings import relocate_lint, relocate_validation

__all__ = ["register"]

_BUNDLE_HELP = "bundle directory, or git:REV:path/to/bundle"


def register(subparsers: Any) -> None:
    """Add the review sub-commands: validate, test, lint, diff."""
    for add in (_add_validate, _add_test, _add_lint, _add_diff):
        add(subparsers)


def _add_validate(subparsers: Any) -> None:
    parser = add_review_parser(
        subparsers,
        "validate",
        "report every problem in a bundle and its test files",
        "Validate a policy bundle and its tests/*_test.yaml, listing every problem with "
        "file:line and a stable code.",
    )
    add_bundle_option(parser, positional=True)
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    _add_paths(parser)
    parser.set_defaults(func=run_validate)


def _add_test(subparsers: Any) -> None:
    parser = add_review_parser(
        subparsers,
        "test",
        "run a bundle's test cases, with rule coverage",
        "Run the bundle's own test cases; show each failure with expected vs actual and the "
        "deciding rules, and the rules no case covers.",
    )
    add_bundle_option(parser, positional=True)
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    parser.add_argument("--verbose", "-v", action="store_true", help="list passing cases too")
    parser.add_argument(
        "--require-coverage", action="store_true", help="fail when any rule is uncovered"
    )
    parser.set_defaults(func=run_test)


def _add_lint(subparsers: Any) -> None:
    codes = ", ".join(LINT_CODES)
    parser = add_review_parser(
        subparsers,
        "lint",
        "report risky but valid patterns in a bundle",
        f"Report risky but valid policy patterns, each with a code and severity ({codes}).",
    )
    add_bundle_option(parser, positional=True)
    _add_paths(parser)
    parser.add_argument(
        "--fail-on",
        choices=[*(s.value for s in Severity), "never"],
        default=Severity.ERROR.value,
        help="exit 1 on findings at or above this severity (default: error)",
    )
    parser.add_argument(
        "--disable",
        action="append",
        default=[],
        choices=sorted(LINT_CODES),
        metavar="CODE",
        help="skip this check (repeatable)",
    )
    parser.add_argument(
        "--destructive-actions",
        type=_names,
        default=DEFAULT_DESTRUCTIVE_ACTIONS,
        metavar="A,B",
        help="actions that need a guardrail (default: configure,reboot)",
    )
    parser.set_defaults(func=run_lint)


def _add_diff(subparsers: Any) -> None:
    parser = add_review_parser(
        subparsers,
        "diff",
        "report the effective access change between two bundle versions",
        "Compare effective grants (role inheritance included) of OLD and NEW: grants added, "
        "removed, widened or narrowed, with the rules responsible.",
    )
    parser.add_argument("old", metavar="OLD", help=_BUNDLE_HELP)
    parser.add_argument("new", metavar="NEW", help=_BUNDLE_HELP)
    parser.add_argument(
        "--fail-on-widen", action="store_true", help="exit 1 when access widens (or may widen)"
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="git repository for git: references (default: the current directory)",
    )
    parser.set_defaults(func=run_diff)


def _add_paths(parser: Any) -> None:
    parser.add_argument(
        "--paths",
        choices=("bundle", "repo"),
        default="bundle",
        help="finding paths relative to the bundle (default) or to the root of the git "
        "repository holding it, as CI annotations need (outside git: the bundle path as given)",
    )


def run_validate(args: argparse.Namespace) -> int:
    """`validate`: exit 1 on any error (any warning too with --strict)."""
    spec = bundle_spec(args.bundle)
    source = read_bundle_source(spec, "validate")
    if source is None:
        return EXIT_USAGE
    report = relocate_validation(validate_source(source), _path_prefix(spec, args.paths))
    sys.stdout.write(render_validation(report, args.format))
    return EXIT_OK if report.ok(strict=args.strict) else EXIT_FINDINGS


def run_test(args: argparse.Namespace) -> int:
    """`test`: exit 1 on failures, test-file problems, no cases, or (opt-in) uncovered rules."""
    source = read_bundle_source(bundle_spec(args.bundle), "test")
    if source is None:
        return EXIT_USAGE
    report = run_bundle_tests(source)
    if args.junit is not None:
        try:
            args.junit.write_text(junit_xml(report), encoding="utf-8")
        except OSError as exc:
            return fail("test", f"cannot write `{args.junit}`: {exc.strerror}")
    sys.stdout.write(render_test(report, args.format, verbose=args.verbose))
    failed = not report.ok or (args.require_coverage and bool(report.uncovered))
    return EXIT_FINDINGS if failed else EXIT_OK


def run_lint(args: argparse.Namespace) -> int:
    """`lint`: exit 1 for an invalid bundle or findings at or above --fail-on."""
    spec = bundle_spec(args.bundle)
    source = read_bundle_source(spec, "lint")
    if source is None:
        return EXIT_USAGE
    report = lint_source(
        source, destructive_actions=args.destructive_actions, disabled=args.disable
    )
    report = relocate_lint(report, _path_prefix(spec, args.paths))
    sys.stdout.write(render_lint(report, args.format))
    if report.bundle is None:
        return EXIT_FINDINGS
    if args.fail_on != "never" and report.at_or_above(Severity(args.fail_on)):
        return EXIT_FINDINGS
    return EXIT_OK


def run_diff(args: argparse.Namespace) -> int:
    """`diff`: exit 1 for an invalid side, or widened access with --fail-on-widen."""
    old_source = read_bundle_source(args.old, "diff", repo=args.repo)
    new_source = read_bundle_source(args.new, "diff", repo=args.repo)
    if old_source is None or new_source is None:
        return EXIT_USAGE
    old, new = valid_bundle(old_source, "diff"), valid_bundle(new_source, "diff")
    if old is None or new is None:
        return EXIT_FINDINGS
    diff = diff_bundles(old, new)
    sys.stdout.write(render_diff(diff, args.format))
    return EXIT_FINDINGS if args.fail_on_widen and diff.widens else EXIT_OK


def _path_prefix(spec: str, paths: str) -> str:
    """What to put before a bundle-relative path so it reads from the repository root."""
    if paths == "bundle":
        return ""
    if spec.startswith(GIT_PREFIX):
        path = parse_git_spec(spec)[1]  # already relative to the repository root
        return f"{path}/" if path else ""
    try:
        done = subprocess.run(
            ["git", "-C", spec, "rev-parse", "--show-prefix"],
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0:
        return done.stdout.decode("utf-8", errors="replace").strip()
    return f"{spec.rstrip('/')}/"  # not in a git work tree: the path as given


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of actions")
    return names
