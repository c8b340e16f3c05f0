"""`cnm-policy healthcheck`: one probe for exec probes and a container's HEALTHCHECK.

Asks the ops listener's ``/readyz`` (or ``/healthz``), or gRPC health when there is no ops
listener; exits 0 when ready, 1 otherwise (a misuse too: 2 is reserved by Docker), with one
line saying why. Where to ask defaults to the same ``CNM_POLICY_*`` variables `serve` reads, so
the image needs no arguments; TLS takes `check --server`'s flags.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cnm_policy.cli._client_tls import (
    add_client_tls_arguments,
    client_ssl_context,
    client_tls_problem,
    grpc_channel,
)
from cnm_policy.ops.unix_http import get

__all__ = ["register", "run"]

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
_MAX_BODY = 4096


def register(subparsers: Any) -> None:
    """Add the `healthcheck` sub-command."""
    parser = subparsers.add_parser(
        "healthcheck",
        help="probe a running sidecar (exit 0 ready, 1 not)",
        description="Probe the ops listener's /readyz (--ops, default $CNM_POLICY_OPS_LISTEN), "
        "else gRPC health (--grpc, default $CNM_POLICY_LISTEN or 127.0.0.1:50051). "
        "Exit 0 when ready (or alive with --live), 1 otherwise. With --tls-ca (or a client "
        "certificate) either one is asked over TLS.",
    )
    parser.add_argument("--ops", metavar="ADDR", help="ops listener: HOST:PORT or unix:PATH")
    parser.add_argument("--grpc", metavar="ADDR", help="decision listener (gRPC health)")
    parser.add_argument(
        "--live", action="store_true", help="ask /healthz (alive) instead of /readyz (ready)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, metavar="SECONDS", help="default: %(default)s"
    )
    add_client_tls_arguments(parser.add_argument_group("TLS (the ops listener or gRPC)"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Probe once; returns the exit code."""
    problem = client_tls_problem(args)
    if problem:
        print(f"cnm-policy healthcheck: {problem}", file=sys.stderr)
        return EXIT_UNHEALTHY
    ops = args.ops or (None if args.grpc else os.environ.get("CNM_POLICY_OPS_LISTEN"))
    try:
        if ops:
            path = "/healthz" if args.live else "/readyz"
            healthy, detail = _http(ops, path, args)
        else:
            target = args.grpc or os.environ.get("CNM_POLICY_LISTEN") or "127.0.0.1:50051"
            healthy, detail = _grpc(target, args)
    except (OSError, http.client.HTTPException, grpc.RpcError, ValueError) as exc:
        healthy, detail = False, f"unreachable: {_reason(exc)}"
    print(f"cnm-policy healthcheck: {'ok' if healthy else 'unhealthy'}: {detail}", file=sys.stderr)
    return EXIT_HEALTHY if healthy else EXIT_UNHEALTHY


def _http(address: str, path: str, args: argparse.Namespace) -> tuple[bool, str]:
    tls = client_ssl_context(args)
    status, body = get(address, path, args.timeout, _MAX_BODY, tls, args.server_name)
    text = body.decode("utf-8", "replace").strip()
    return status == 200, f"{path} {status} {text}"


def _grpc(target: str, args: argparse.Namespace) -> tuple[bool, str]:
    with grpc_channel(target, args) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, f"grpc health {name}"


def _reason(error: BaseException) -> str:
    if isinstance(error, grpc.RpcError):
        code = error.code() if isinstance(error, grpc.Call) else None
        return code.name.lower() if code is not None else "rpc failed"
    return str(error) or type(error).__name__
