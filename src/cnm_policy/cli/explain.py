"""`cnm-policy explain`: how every rule fared for one request, for a reviewer or an on-call.

The request is the JSON form `check` reads; the answer is decided against a bundle at a given
instant and rendered as a table of rules. Exit 0 whatever the decision, 1 for an invalid
bundle, 2 for an unreadable bundle or a bad request.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from cnm_policy.cli._args import add_bundle_option, bundle_spec, instant
from cnm_policy.cli._review_common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    add_review_parser,
    fail,
    read_bundle_source,
    valid_bundle,
)
from cnm_policy.engine import compile_bundle
from cnm_policy.errors import InvalidRequestError
from cnm_policy.review import explain_request, parse_access_request, render_explain

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `explain` sub-command."""
    parser = add_review_parser(
        subparsers,
        "explain",
        "show how every rule fared for one request",
        "Decide one request and show every rule that targets its kind or action: whether its "
        "role, kind, action, scope and condition matched, and the final effect.",
    )
    add_bundle_option(parser)
    parser.add_argument(
        "request", nargs="?", default="-", metavar="REQUEST", help="JSON request file, or -"
    )
    parser.add_argument(
        "--at",
        type=instant,
        default=None,
        metavar="TIME",
        help="evaluate as of TIME (ISO 8601 with offset, or epoch seconds); default: now",
    )
    parser.set_defaults(func=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    """`explain`: exit 0 whatever the decision; 1 invalid bundle; 2 bad request."""
    try:
        text = sys.stdin.read() if args.request == "-" else Path(args.request).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return fail("explain", f"cannot read `{args.request}`: {exc}")
    try:
        request = parse_access_request(text)
    except InvalidRequestError as exc:
        return fail("explain", f"invalid request: {exc}")
    source = read_bundle_source(bundle_spec(args.policies), "explain")
    if source is None:
        return EXIT_USAGE
    bundle = valid_bundle(source, "explain")
    if bundle is None:
        return EXIT_FINDINGS
    now = args.at if args.at is not None else time.time()
    try:
        explanation = explain_request(compile_bundle(bundle), request, now=now)
    except InvalidRequestError as exc:
        return fail("explain", f"invalid request: {exc}")
    sys.stdout.write(render_explain(explanation, args.format))
    return EXIT_OK
