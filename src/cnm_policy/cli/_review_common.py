"""What the review commands share: exit codes, the report format flag, reading the bundle.

Each reports an unreadable or invalid bundle on stderr the same way, so CI logs read alike
whichever command failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cnm_policy.errors import PolicySourceError
from cnm_policy.policy import Bundle, BundleSource, parse_bundle
from cnm_policy.review import Format, read_source
from cnm_policy.review.report import problem_lines
from cnm_policy.review.validate import sorted_problems

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_review_parser",
    "fail",
    "read_bundle_source",
    "valid_bundle",
]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

_EXIT_HELP = "Exit status: 0 ok, 1 findings, 2 usage error or unreadable input."


def add_review_parser(subparsers: Any, name: str, help_text: str, description: str) -> Any:
    """A review sub-command's parser, with the exit statuses and the --format flag."""
    parser = subparsers.add_parser(name, help=help_text, description=f"{description} {_EXIT_HELP}")
    parser.add_argument(
        "--format",
        type=Format,
        choices=list(Format),
        default=Format.TEXT,
        help="report format (default: text; markdown suits pull-request comments)",
    )
    return parser


def read_bundle_source(spec: str, command: str, *, repo: Path = Path(".")) -> BundleSource | None:
    """Read a bundle; an unreadable one is reported on stderr (exit 2 for the caller)."""
    try:
        return read_source(spec, repo=repo)
    except PolicySourceError as exc:
        fail(command, str(exc))
        return None


def valid_bundle(source: BundleSource, command: str) -> Bundle | None:
    """Validate a bundle; an invalid one has its errors listed on stderr."""
    bundle, problems = parse_bundle(source)
    if bundle is None:
        errors = sorted_problems(p for p in problems if p.severity == "error")
        lines = "\n".join(f"  {line}" for line in problem_lines(errors))
        print(f"cnm-policy {command}: `{source.origin}` is invalid:\n{lines}", file=sys.stderr)
    return bundle


def fail(command: str, message: str) -> int:
    """Report a usage error or unreadable input on stderr; returns its exit status (2)."""
    print(f"cnm-policy {command}: {message}", file=sys.stderr)
    return EXIT_USAGE
