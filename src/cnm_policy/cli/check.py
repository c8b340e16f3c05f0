"""`cnm-policy check`: one decision from the command line, for scripts and for people.

The request is the JSON form of the sidecar's ``CheckRequest`` and the answer is the JSON form
of its ``CheckResponse``, so a request that works here works over gRPC (``grpcurl -d``) and the
other way round: both go through the same conversion and the same validation.

Exit codes (stable, for scripts)::

    0  allowed
    3  denied (a normal answer, not a failure)
    2  usage error or invalid request (bad JSON, unknown field, malformed value)
    4  the policy bundle cannot be loaded (unreadable or invalid)

Anything else (1) is a bug. Scripts must treat every non-zero code as "not allowed".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from google.protobuf import json_format

import cnm_policy
from cnm_policy.cli._args import instant
from cnm_policy.engine import Engine
from cnm_policy.errors import BundleInvalidError, InvalidRequestError, PolicySourceError
from cnm_policy.server import convert
from cnm_policy.server.limits import DEFAULT_LIMITS
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "EXIT_ALLOWED",
    "EXIT_DENIED",
    "EXIT_POLICY_ERROR",
    "EXIT_USAGE",
    "default_policy_dir",
    "parse_request",
    "register",
    "run",
]

EXIT_ALLOWED = 0
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_POLICY_ERROR = 4
BUNDLED_POLICIES = Path("policies") / "cnm"


def default_policy_dir() -> Path:
    """The bundled `policies/cnm`: under the working directory, else beside the source tree.

    The second candidate makes the default work from any directory in a source checkout or an
    editable install (``src/cnm_policy`` -> repository root).
    """
    candidates = (
        Path.cwd() / BUNDLED_POLICIES,
        Path(cnm_policy.__file__).resolve().parents[2] / BUNDLED_POLICIES,
    )
    return next((path for path in candidates if path.is_dir()), candidates[0])


def register(subparsers: Any) -> None:
    """Add the `check` sub-command."""
    parser = subparsers.add_parser(
        "check",
        help="decide one request against a bundle (JSON in, JSON out)",
        description=(
            "Decide one access request against a policy bundle. REQUEST is a JSON file (or - for "
            'standard input) like {"principal": {"id": ..., "tenant": ..., "roles": [...]}, '
            '"action": ..., "resource": {"kind": ..., "id": ..., "tenant": ...}, "context": {}}. '
            "Exit status: 0 allowed, 3 denied, 2 invalid input, 4 bundle cannot be loaded."
        ),
    )
    parser.add_argument(
        "request", nargs="?", default="-", metavar="REQUEST", help="JSON request file, or -"
    )
    parser.add_argument(
        "--policies",
        type=Path,
        default=None,
        metavar="DIR",
        help="policy bundle directory (default: the bundled policies/cnm)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="include how every rule fared (`trace`)"
    )
    parser.add_argument(
        "--at",
        type=instant,
        default=None,
        metavar="TIME",
        help="evaluate as of TIME (ISO 8601 with offset, or epoch seconds) instead of now",
    )
    parser.set_defaults(func=run)


def run(
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `check` with parsed `args`; returns the exit code."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    try:
        text = stdin.read() if args.request == "-" else Path(args.request).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cnm-policy check: cannot read `{args.request}`: {exc}", file=stderr)
        return EXIT_USAGE
    try:
        request = parse_request(text)
    except InvalidRequestError as exc:
        print(f"cnm-policy check: invalid request: {exc}", file=stderr)
        return EXIT_USAGE
    path = args.policies if args.policies is not None else default_policy_dir()
    at: float | None = args.at
    try:
        engine = Engine.from_path(path) if at is None else Engine.from_path(path, clock=lambda: at)
    except (BundleInvalidError, PolicySourceError) as exc:
        print(f"cnm-policy check: {exc}", file=stderr)
        return EXIT_POLICY_ERROR
    try:
        query = convert.access_request_from_proto(request, DEFAULT_LIMITS)
        decision = engine.check_request(query, explain=request.explain or args.explain)
    except InvalidRequestError as exc:
        print(f"cnm-policy check: invalid request: {exc}", file=stderr)
        return EXIT_USAGE
    output = json_format.MessageToDict(
        convert.decision_to_proto(decision),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    output.pop("decision_id", None)  # only the sidecar logs decisions
    json.dump(output, stdout, indent=2)
    stdout.write("\n")
    return EXIT_ALLOWED if decision.allowed else EXIT_DENIED


def parse_request(text: str) -> pb.CheckRequest:
    """Parse the JSON form of a `CheckRequest`; raises InvalidRequestError naming the problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError("request", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("request", "must be a JSON object")
    try:
        return json_format.ParseDict(data, pb.CheckRequest())
    except json_format.ParseError as exc:
        first_line = str(exc).splitlines()[0]
        raise InvalidRequestError("request", first_line) from None
