"""`serve`'s front-door flags: the HTTP listener, the directory, JWTs and a trusted gateway.

Each refusal names its flag. Nothing is on unless a flag says so; a trusted gateway's headers
in particular are never believed by default.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from cnm_policy.errors import ServerConfigError
from cnm_policy.principals import JwtConfig
from cnm_policy.principals.tokens import DEFAULT_ALGORITHMS
from cnm_policy.server.doors import FrontDoorOptions
from cnm_policy.server.ext_authz import TrustedGateway
from cnm_policy.server.http import HttpListenerConfig
from cnm_policy.server.tls import TlsConfig

__all__ = ["add_door_arguments", "door_options"]


def add_door_arguments(parser: argparse.ArgumentParser) -> None:
    """The HTTP/JSON (native, AuthZEN), principal and ext_authz flags."""
    group = parser.add_argument_group("front doors (HTTP/JSON, AuthZEN, Envoy ext_authz)")
    add = group.add_argument
    add(
        "--http-listen",
        metavar="ADDR",
        help="serve the HTTP/JSON API (/v1/check, AuthZEN /access/v1/...) on HOST:PORT or "
        "unix:PATH, with --listen's loopback and TLS rules",
    )
    add(
        "--directory",
        metavar="FILE",
        help="principal directory (YAML or JSON: id -> tenant, roles, attributes), gated and "
        "hot-reloaded like the bundle",
    )
    add(
        "--trust-request-roles",
        action="store_true",
        help="with a directory or tokens, still take the tenant and roles a request sends",
    )
    add("--default-tenant", metavar="TENANT", help="the tenant of requests that name none")
    add("--jwt-jwks", metavar="FILE|URL", help="verify bearer tokens with this JWKS (https URL)")
    add("--jwt-issuer", metavar="ISS", help="the `iss` tokens must carry")
    add("--jwt-audience", metavar="AUD", help="the `aud` tokens must carry")
    add(
        "--jwt-algorithms",
        default=",".join(DEFAULT_ALGORITHMS),
        metavar="ALG,...",
        help="accepted signature algorithms, asymmetric only (default: %(default)s)",
    )
    add(
        "--jwt-leeway",
        type=int,
        default=30,
        metavar="SECONDS",
        help="clock skew tolerated on exp/nbf (default: %(default)s)",
    )
    add(
        "--trusted-gateway-principal-header",
        metavar="NAME",
        help="ext_authz: believe this header's principal id when no token is sent (only "
        "when every request comes through the gateway that sets it)",
    )
    add("--trusted-gateway-tenant-header", metavar="NAME", help="ext_authz: its tenant header")
    add("--trusted-gateway-roles-header", metavar="NAME", help="ext_authz: its roles (a,b,c)")


def door_options(args: argparse.Namespace) -> FrontDoorOptions:
    """The front doors the flags ask for; raises ValueError naming a flag that cannot work."""
    try:
        return FrontDoorOptions(
            http=_http(args),
            directory=Path(args.directory) if args.directory else None,
            jwt=_jwt(args),
            trust_request_roles=args.trust_request_roles,
            default_tenant=args.default_tenant,
            trusted_gateway=_gateway(args),
        )
    except ServerConfigError as exc:
        raise ValueError(str(exc)) from exc


def _http(args: argparse.Namespace) -> HttpListenerConfig | None:
    if args.http_listen is None:
        return None
    tls = None  # the gRPC listener's certificate (and client CA) serve HTTP too
    if args.tls_cert is not None and args.tls_key is not None:
        tls = TlsConfig.from_files(args.tls_cert, args.tls_key, args.tls_client_ca)
    return HttpListenerConfig(
        listen=args.http_listen,
        flag="--http-listen",
        allow_remote=args.allow_remote,
        tls=tls,
        grace_seconds=min(args.grace, 30.0),
    )


def _jwt(args: argparse.Namespace) -> JwtConfig | None:
    given = (args.jwt_jwks, args.jwt_issuer, args.jwt_audience)
    if not any(given):
        return None
    if not all(given):
        raise ValueError("--jwt-jwks, --jwt-issuer and --jwt-audience go together")
    if not 0 <= args.jwt_leeway < math.inf:
        raise ValueError("--jwt-leeway must be a number of seconds, 0 or more")
    algorithms = tuple(a.strip() for a in args.jwt_algorithms.split(",") if a.strip())
    try:
        return JwtConfig(
            jwks=args.jwt_jwks,
            issuer=args.jwt_issuer,
            audience=args.jwt_audience,
            algorithms=algorithms,
            leeway=args.jwt_leeway,
        )
    except ServerConfigError as exc:
        raise ValueError(f"--jwt-algorithms: {exc}") from exc


def _gateway(args: argparse.Namespace) -> TrustedGateway | None:
    principal = args.trusted_gateway_principal_header
    others = (args.trusted_gateway_tenant_header, args.trusted_gateway_roles_header)
    if principal is None:
        if any(others):
            raise ValueError("--trusted-gateway-* headers need --trusted-gateway-principal-header")
        return None
    tenant, roles = (name.lower() if name else None for name in others)
    return TrustedGateway(principal.lower(), tenant, roles)
