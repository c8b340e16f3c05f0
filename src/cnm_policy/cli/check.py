"""`cnm-policy check`: one decision from the command line, for scripts and for people.

JSON in (a ``CheckRequest``, read by `cnm_policy.review.requests`), JSON out (a
``CheckResponse``), decided against a bundle or by a sidecar (``--server``). Exit codes, stable:
0 allowed, 3 denied, 2 usage or invalid request, 4 bundle unloadable, 5 sidecar unavailable.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.protobuf import json_format

from cnm_policy.cli._args import add_bundle_option, bundle_spec, instant
from cnm_policy.cli._client_tls import (
    add_client_tls_arguments,
    client_tls_problem,
    grpc_channel,
)
from cnm_policy.engine import Engine, compile_bundle
from cnm_policy.errors import BundleInvalidError, InvalidRequestError, PolicySourceError
from cnm_policy.policy import parse_bundle
from cnm_policy.review.gitsource import read_source
from cnm_policy.review.requests import JsonRequest, parse_json_request
from cnm_policy.server.wire import convert
from cnm_policy.v1 import policy_pb2 as pb
from cnm_policy.v1 import policy_pb2_grpc as pb_grpc

__all__ = [
    "EXIT_ALLOWED",
    "EXIT_DENIED",
    "EXIT_POLICY_ERROR",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "register",
    "run",
]

EXIT_ALLOWED = 0
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_POLICY_ERROR = 4
EXIT_UNAVAILABLE = 5
# Statuses that mean "this request is wrong", not "the sidecar failed" (see docs/sidecar.md).
_REQUEST_STATUSES = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
_MAX_DETAIL_CHARS = 300


def register(subparsers: Any) -> None:
    """Add the `check` sub-command."""
    parser = subparsers.add_parser(
        "check",
        help="decide one request, locally or by a running sidecar (JSON in, JSON out)",
        description=(
            "Decide one access request against a policy bundle, or ask a running sidecar "
            "(--server). REQUEST is a JSON file (or - for standard input) like "
            '{"principal": {"id": ..., "tenant": ..., "roles": [...]}, "action": ..., '
            '"resource": {"kind": ..., "id": ..., "tenant": ...}, "context": {}}. '
            "Exit status: 0 allowed, 3 denied, 2 invalid input, 4 bundle cannot be loaded, "
            "5 sidecar unreachable or failed."
        ),
    )
    add = parser.add_argument
    add("request", nargs="?", default="-", metavar="REQUEST", help="JSON request file, or -")
    add_bundle_option(parser)
    add("--explain", action="store_true", help="include how every rule fared (`trace`)")
    add(
        "--at",
        type=instant,
        default=None,
        metavar="TIME",
        help="evaluate as of TIME (ISO 8601 with offset, or epoch seconds) instead of now "
        "(not with --server: the sidecar decides with its own clock)",
    )
    server = parser.add_argument_group("asking a running sidecar")
    server.add_argument(
        "--server",
        metavar="ADDR",
        help="ask the sidecar at HOST:PORT or unix:PATH instead of loading a bundle",
    )
    add_client_tls_arguments(server)
    server.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="give up on the sidecar after this long (default: 5)",
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
    problem = _flag_problem(args)
    if problem:
        print(f"cnm-policy check: {problem}", file=stderr)
        return EXIT_USAGE
    try:
        text = stdin.read() if args.request == "-" else Path(args.request).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cnm-policy check: cannot read `{args.request}`: {exc}", file=stderr)
        return EXIT_USAGE
    try:
        query = parse_json_request(text)
    except InvalidRequestError as exc:
        print(f"cnm-policy check: invalid request: {exc}", file=stderr)
        return EXIT_USAGE
    if args.server is not None:
        return _ask_sidecar(args, query, stdout, stderr)
    return _decide_here(args, query, stdout, stderr)


def _flag_problem(args: argparse.Namespace) -> str:
    """What is wrong with the combination of flags, or ``""``."""
    if args.server is None:
        tls = (args.tls_ca, args.tls_cert, args.tls_key, args.server_name)
        return "--tls-* and --server-name need --server" if any(tls) else ""
    if args.policies is not None or args.at is not None:
        return "--server asks the sidecar, which has its own policy and clock: drop " + (
            "--policies" if args.policies is not None else "--at"
        )
    problem = client_tls_problem(args)
    if problem:
        return problem
    if not 0 < args.timeout < math.inf:
        return "--timeout must be a positive number of seconds"
    return ""


def _decide_here(
    args: argparse.Namespace, query: JsonRequest, stdout: TextIO, stderr: TextIO
) -> int:
    at: float | None = args.at
    try:
        engine = _engine(bundle_spec(args.policies), at)
    except (BundleInvalidError, PolicySourceError) as exc:
        print(f"cnm-policy check: {exc}", file=stderr)
        return EXIT_POLICY_ERROR
    try:
        decision = engine.check_request(query.request, explain=query.explain or args.explain)
    except InvalidRequestError as exc:
        print(f"cnm-policy check: invalid request: {exc}", file=stderr)
        return EXIT_USAGE
    response = convert.decision_to_proto(decision)
    response.ClearField("decision_id")  # only the sidecar logs decisions
    _print_response(response, stdout)
    return EXIT_ALLOWED if decision.allowed else EXIT_DENIED


def _engine(spec: str, at: float | None) -> Engine:
    """An engine on the bundle `spec` (a directory or ``git:REV:path``), clock pinned to `at`."""
    bundle, problems = parse_bundle(read_source(spec))
    if bundle is None:
        raise BundleInvalidError(tuple(p for p in problems if p.severity == "error"))
    if at is None:
        return Engine(compile_bundle(bundle))
    return Engine(compile_bundle(bundle, loaded_at=at), clock=lambda: at)


def _ask_sidecar(
    args: argparse.Namespace, query: JsonRequest, stdout: TextIO, stderr: TextIO
) -> int:
    try:
        message = convert.access_request_to_proto(
            query.request, explain=query.explain or args.explain
        )
        channel = grpc_channel(args.server, args)
    except InvalidRequestError as exc:
        print(f"cnm-policy check: invalid request: {exc}", file=stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"cnm-policy check: cannot read `{exc.filename}`: {exc.strerror}", file=stderr)
        return EXIT_USAGE
    try:
        with channel:
            stub = pb_grpc.PolicyServiceStub(channel)  # type: ignore[no-untyped-call]
            response: pb.CheckResponse = stub.Check(message, timeout=args.timeout)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        detail = str(exc.details() or "")[:_MAX_DETAIL_CHARS]
        if code in _REQUEST_STATUSES:
            print(f"cnm-policy check: invalid request: {detail}", file=stderr)
            return EXIT_USAGE
        status = code.name.lower() if code is not None else "unknown"
        where = f"sidecar `{args.server}`"
        print(f"cnm-policy check: {where} did not answer: {status}: {detail}", file=stderr)
        return EXIT_UNAVAILABLE
    _print_response(response, stdout)
    return EXIT_ALLOWED if response.allowed else EXIT_DENIED


def _print_response(response: pb.CheckResponse, stdout: TextIO) -> None:
    output = json_format.MessageToDict(
        response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    if not output.get("decision_id"):
        output.pop("decision_id", None)
    json.dump(output, stdout, indent=2)
    stdout.write("\n")
