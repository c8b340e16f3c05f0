"""`serve`'s operating flags: the ops listener and the policy's maximum age.

Kept apart from `_serve_flags.py` (the decision listener, cache and limits) so that file stays
small; `runtime_options` folds these in.
"""

from __future__ import annotations

import argparse
import os
from typing import TypedDict

from cnm_policy.errors import ServerConfigError
from cnm_policy.ops.durations import parse_duration
from cnm_policy.ops.tracing import Tracing, tracing_from_environment
from cnm_policy.server.http import HttpListenerConfig

__all__ = ["OpsOptions", "add_ops_arguments", "ops_options"]


class OpsOptions(TypedDict):
    """The `RuntimeOptions` fields these flags (and ``OTEL_*``) set."""

    max_policy_age: float | None
    ops: HttpListenerConfig | None
    tracing: Tracing


def add_ops_arguments(parser: argparse.ArgumentParser) -> None:
    """--ops-listen, --max-policy-age and --processes."""
    parser.add_argument(
        "--ops-listen",
        metavar="ADDR",
        help="serve GET /metrics, /healthz and /readyz on HOST:PORT or unix:PATH (default: "
        "off). Any address, the pod's too, without --allow-remote: naming it is the opt-in; "
        "it serves no decisions, but /metrics tells volumes, so keep it off the internet",
    )
    parser.add_argument(
        "--max-policy-age",
        metavar="DURATION",
        help="stop deciding (UNAVAILABLE), and report not ready, when no load has confirmed "
        "the policy for this long (e.g. 10m, 1h; default: no limit)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes behind one TCP address (each its own engine and cache; "
        "a supervisor holds the port and forwards SIGHUP; default: %(default)s)",
    )


def ops_options(args: argparse.Namespace) -> OpsOptions:
    """The `RuntimeOptions` fields these flags set; ValueError naming the flag otherwise."""
    if not 1 <= args.processes <= 64:
        raise ValueError("--processes: must be between 1 and 64")
    max_age = None
    if args.max_policy_age is not None:
        try:
            max_age = parse_duration(str(args.max_policy_age))
        except ValueError as exc:
            raise ValueError(f"--max-policy-age: {exc}") from exc
    ops = None
    if args.ops_listen:
        try:
            ops = HttpListenerConfig(
                listen=args.ops_listen,
                flag="--ops-listen",
                allow_remote=True,
                grace_seconds=1.0,
                max_connections=64,
            )
        except ServerConfigError as exc:
            raise ValueError(str(exc)) from exc
    return {
        "max_policy_age": max_age,
        "ops": ops,
        "tracing": tracing_from_environment(os.environ),
    }
