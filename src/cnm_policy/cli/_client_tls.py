"""Client TLS flags for commands that reach a running sidecar, with `check --server`'s rules.

--tls-ca verifies the server, --tls-cert with --tls-key presents a client certificate (mTLS),
--server-name expects that name in the server's certificate. TLS is on when a CA or a client
certificate is given. One gRPC channel and one `ssl.SSLContext` (HTTPS) from the same flags.
"""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path
from typing import Any

import grpc

__all__ = [
    "add_client_tls_arguments",
    "client_ssl_context",
    "client_tls_problem",
    "grpc_channel",
    "uses_tls",
]


def add_client_tls_arguments(group: Any) -> None:
    """--tls-ca, --tls-cert, --tls-key and --server-name on a parser or argument group."""
    group.add_argument(
        "--tls-ca",
        type=Path,
        metavar="PEM",
        help="verify the sidecar's TLS certificate with this CA",
    )
    group.add_argument(
        "--tls-cert", type=Path, metavar="PEM", help="client certificate chain, for mTLS"
    )
    group.add_argument("--tls-key", type=Path, metavar="PEM", help="client private key, for mTLS")
    group.add_argument(
        "--server-name",
        metavar="NAME",
        help="expect this name in the sidecar's certificate instead of the host in ADDR",
    )


def uses_tls(args: argparse.Namespace) -> bool:
    """Whether the flags ask for TLS: a CA to verify with, or a client certificate."""
    return args.tls_ca is not None or args.tls_cert is not None


def client_tls_problem(args: argparse.Namespace) -> str:
    """What is wrong with the combination of TLS flags, or ``""``."""
    if (args.tls_cert is None) != (args.tls_key is None):
        return "--tls-cert and --tls-key go together"
    if args.server_name is not None and not uses_tls(args):
        return "--server-name needs TLS (--tls-ca, or --tls-cert with --tls-key)"
    return ""


def grpc_channel(target: str, args: argparse.Namespace) -> grpc.Channel:
    """A channel to `target`: TLS when the flags ask for it; raises OSError for unreadable PEMs."""
    if not uses_tls(args):
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=args.tls_ca.read_bytes() if args.tls_ca else None,
        private_key=args.tls_key.read_bytes() if args.tls_key else None,
        certificate_chain=args.tls_cert.read_bytes() if args.tls_cert else None,
    )
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(target, credentials, options=options)


def client_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """An HTTPS client context from the same flags (``None``: plain HTTP).

    Without --tls-ca the system's CAs verify the server, as for gRPC; raises OSError or
    `ssl.SSLError` for unreadable or malformed PEM files.
    """
    if not uses_tls(args):
        return None
    context = ssl.create_default_context(cafile=str(args.tls_ca) if args.tls_ca else None)
    if args.tls_cert is not None:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    return context
