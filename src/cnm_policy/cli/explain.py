"""`cnm-policy explain`: how every rule fared for one request, for a reviewer or an on-call.

The request is the JSON form `check` reads; the answer is decided against a bundle at a given
instant and rendered as a table of rules, or with ``--plan`` as the query plan for the
principal, action and resource kind. Exit 0 whatever the decision, 1 for an invalid bundle, 2
for an unreadable bundle, a bad request or a condition no plan can express.
"""

from __future__ import annotations

import argparse
import json
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
from cnm_policy.engine.plan import Plan, plan
from cnm_policy.errors import InvalidRequestError, PlanUnsupportedError
from cnm_policy.model import AccessRequest
from cnm_policy.review import explain_request, parse_access_request, render_explain
from cnm_policy.review.report import Format, to_json
from cnm_policy.review.requests import json_request_from_object, load_json

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
    parser.add_argument(
        "--plan",
        action="store_true",
        help="show the query plan for the request's principal, action and resource kind "
        "(the resource's id and tenant are not needed)",
    )
    parser.set_defaults(func=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    """`explain`: exit 0 whatever the decision; 1 invalid bundle; 2 bad request."""
    try:
        text = sys.stdin.read() if args.request == "-" else Path(args.request).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return fail("explain", f"cannot read `{args.request}`: {exc}")
    try:
        request = _plan_request(text) if args.plan else parse_access_request(text)
    except InvalidRequestError as exc:
        return fail("explain", f"invalid request: {exc}")
    source = read_bundle_source(bundle_spec(args.policies), "explain")
    if source is None:
        return EXIT_USAGE
    bundle = valid_bundle(source, "explain")
    if bundle is None:
        return EXIT_FINDINGS
    now = args.at if args.at is not None else time.time()
    if args.plan:
        return _run_plan(compile_bundle(bundle), request, now, args.format)
    try:
        explanation = explain_request(compile_bundle(bundle), request, now=now)
    except InvalidRequestError as exc:
        return fail("explain", f"invalid request: {exc}")
    sys.stdout.write(render_explain(explanation, args.format))
    return EXIT_OK


def _plan_request(text: str) -> AccessRequest:
    """The request JSON, where the resource needs only its kind."""
    data = load_json(text)
    resource = data.get("resource") if isinstance(data, dict) else None
    if isinstance(resource, dict):
        resource.setdefault("tenant", "-")  # unused: a plan covers every tenant
    return json_request_from_object(data).request


def _run_plan(snapshot: Any, request: AccessRequest, now: float, output: Format) -> int:
    try:
        found = plan(
            snapshot, request.principal, request.action, request.resource.kind, request.context, now
        )
    except (InvalidRequestError, PlanUnsupportedError) as exc:
        return fail("explain", f"no plan: {exc}")
    if output is Format.JSON:
        sys.stdout.write(to_json(found.to_dict()))
    else:
        text = render_plan(found)
        sys.stdout.write(f"```\n{text}```\n" if output is Format.MARKDOWN else text)
    return EXIT_OK


def render_plan(found: Plan) -> str:
    """A plan for a reviewer: its kind, rules and version, then its filter as an indented tree."""
    lines = [
        f"plan: {found.kind} ({found.action} on {found.resource_kind})",
        f"policy: {found.policy_name} {found.policy_version} ({found.policy_digest})",
        f"rules: {', '.join(found.rule_ids) or '-'}",
        f"reason: {found.reason}",
    ]
    if found.valid_until is not None:
        lines.append(f"valid until: {found.valid_until:g}")
    if found.filter is not None:
        lines.append("filter:")
        lines.extend(_node_lines(found.filter, 1))
    return "\n".join(lines) + "\n"


_SYMBOLS = {"eq": "==", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _node_lines(node: dict[str, Any], depth: int) -> list[str]:
    pad = "  " * depth
    op = node["op"]
    if op in ("and", "or"):
        head = [f"{pad}{'all' if op == 'and' else 'any'} of:"]
        return head + [line for arg in node["args"] for line in _node_lines(arg, depth + 1)]
    if op == "not":
        return [f"{pad}not:", *_node_lines(node["arg"], depth + 1)]
    field = node["field"]
    if op in _SYMBOLS:
        return [f"{pad}{field} {_SYMBOLS[op]} {json.dumps(node['value'], ensure_ascii=False)}"]
    described = {
        "in": f"in {json.dumps(node.get('values'), ensure_ascii=False)}",
        "is_null": "is null or absent",
        "present": "is present",
        "is_type": f"is a {node.get('type')}",
        "within": f"is `{node.get('root')}` or below it",
    }
    return [f"{pad}{field} {described[op]}"]
