"""`cnm-policy serve`'s flags, and the configuration they make: argv in, options out.

Every refusal names its flag (``--workers: must be at least 1``), and each default is the
library's own (cache size and TTL, limits, workers, settle time), stated in ``--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from cnm_policy.audit import AttributeAllowList
from cnm_policy.cache import DEFAULT_MAXSIZE, DEFAULT_TTL
from cnm_policy.cli._args import default_policy_dir
from cnm_policy.cli._bundle_flags import add_bundle_arguments
from cnm_policy.cli._door_flags import add_door_arguments, door_options
from cnm_policy.cli._insight_flags import add_insight_arguments, insight_options
from cnm_policy.cli._ops_flags import OpsOptions, add_ops_arguments, ops_options
from cnm_policy.reload import DEFAULT_SETTLE_SECONDS
from cnm_policy.server.app import (
    DEFAULT_LISTEN,
    DEFAULT_WORKERS,
    ServerConfig,
    ServerConfigError,
    TlsConfig,
    is_local_address,
)
from cnm_policy.server.limits import DEFAULT_LIMITS, LIMIT_MINIMUMS, Limits
from cnm_policy.server.runtime import RuntimeOptions

__all__ = ["add_serve_arguments", "runtime_options", "server_config"]

_MIN_WATCH_INTERVAL = 0.1


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Every `serve` flag, with its default and what it bounds."""
    add = parser.add_argument
    add(
        "--policies",
        type=Path,
        default=None,
        metavar="DIR",
        help="policy bundle directory (default: ./policies/cnm when it exists, else the default "
        "bundle shipped with cnm-policy)",
    )
    add(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="ADDR",
        help=f"HOST:PORT or unix:PATH (default: {DEFAULT_LISTEN})",
    )
    add(
        "--allow-remote",
        action="store_true",
        help="allow listening on a non-loopback address (use TLS there)",
    )
    add("--tls-cert", type=Path, metavar="PEM", help="server certificate chain (enables TLS)")
    add("--tls-key", type=Path, metavar="PEM", help="server private key")
    add(
        "--tls-client-ca",
        type=Path,
        metavar="PEM",
        help="require client certificates signed by this CA (mTLS)",
    )
    add(
        "--ops-tls",
        action="store_true",
        help="serve the ops listener over TLS with --tls-cert/--tls-key, asking no client "
        "certificate (kubelet's HTTPS probes and Prometheus connect; not with --processes)",
    )
    add(
        "--cache-size",
        type=int,
        default=DEFAULT_MAXSIZE,
        metavar="N",
        help="decision cache entries (0: no cache; default: %(default)s)",
    )
    add(
        "--cache-ttl",
        type=float,
        default=DEFAULT_TTL,
        metavar="SECONDS",
        help="decision cache TTL (default: %(default)s)",
    )
    add("--no-cache", action="store_true", help="evaluate every request")
    add(
        "--watch-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="poll the policy directory this often (at least 0.1); 0 disables (SIGHUP still "
        "reloads; default: %(default)s)",
    )
    add(
        "--settle",
        type=float,
        default=DEFAULT_SETTLE_SECONDS,
        metavar="SECONDS",
        help="a changed bundle without bundle.lock.json (see `cnm-policy build`) goes live only "
        "after this long unchanged; one with a lock, as soon as it matches (default: %(default)s)",
    )
    add(
        "--no-bundle-tests",
        action="store_true",
        help="serve versions even when their own tests fail (the tests still run, and each "
        "failure is a bundle_tests_failed warning; not recommended)",
    )
    limits = (
        ("--max-batch-items", DEFAULT_LIMITS.max_batch_items, "items in one CheckBatch"),
        (
            "--max-attribute-depth",
            DEFAULT_LIMITS.max_attribute_depth,
            "nesting levels of an attribute or context value",
        ),
        (
            "--max-attribute-bytes",
            DEFAULT_LIMITS.max_attribute_bytes,
            "bytes of one encoded attributes or context map",
        ),
        ("--max-message-bytes", DEFAULT_LIMITS.max_message_bytes, "bytes of one request message"),
    )
    for flag, default, what in limits:
        add(
            flag,
            type=int,
            default=default,
            metavar="N",
            help=f"at most this many {what} (default: %(default)s)",
        )
    add(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"RPC worker threads (default {DEFAULT_WORKERS}: decisions are CPU-bound, so more "
        "threads add contention, not throughput)",
    )
    add(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long shutdown waits for in-flight calls (default: %(default)s)",
    )
    add("--log-file", type=Path, metavar="PATH", help="append logs here instead of stdout")
    add(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="auto: console on a terminal, JSON lines otherwise",
    )
    add(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="default: %(default)s",
    )
    add(
        "--log-attribute",
        action="append",
        default=[],
        metavar="SECTION.KEY",
        help="log this attribute's value in decision events (e.g. context.channel); repeatable",
    )
    add_ops_arguments(parser)
    add_bundle_arguments(parser)
    add_door_arguments(parser)
    add_insight_arguments(parser)


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """What to serve; raises ValueError naming a flag whose value cannot work."""
    if args.watch_interval != 0 and not args.watch_interval >= _MIN_WATCH_INTERVAL:
        # A tiny or negative interval would poll the directory in a busy loop.
        raise ValueError(
            f"--watch-interval must be 0 (off) or at least {_MIN_WATCH_INTERVAL} seconds"
        )
    if args.cache_size < 0:
        raise ValueError("--cache-size must be 0 (off) or a positive number of entries")
    if not 0 <= args.settle < math.inf:
        raise ValueError("--settle must be a number of seconds, 0 or more")
    if not 0 < args.cache_ttl < math.inf:
        raise ValueError("--cache-ttl must be a positive number of seconds")
    return RuntimeOptions(
        policies=args.policies if args.policies is not None else default_policy_dir(),
        cache_size=None if args.no_cache or args.cache_size == 0 else args.cache_size,
        cache_ttl=args.cache_ttl,
        run_bundle_tests=not args.no_bundle_tests,
        watch_interval=args.watch_interval or None,
        settle_seconds=args.settle,
        log_allow=_allow_list(args.log_attribute),
        doors=door_options(args),
        **insight_options(args),
        **_with_ops_tls(args, ops_options(args)),
    )


def _with_ops_tls(args: argparse.Namespace, ops: OpsOptions) -> OpsOptions:
    """The ops listener in TLS under --ops-tls, with the decision listener's certificate."""
    if not args.ops_tls:
        return ops
    if ops["ops"] is None:
        raise ValueError("--ops-tls needs --ops-listen")
    if args.tls_cert is None or args.tls_key is None:
        raise ValueError("--ops-tls needs --tls-cert and --tls-key")
    if args.processes > 1:  # the supervisor's own ops listener is plain HTTP
        raise ValueError("--ops-tls does not go with --processes")
    tls = TlsConfig.from_files(args.tls_cert, args.tls_key)  # no client CA: probes have none
    return {**ops, "ops": dataclasses.replace(ops["ops"], tls=tls)}


def _allow_list(names: list[str]) -> AttributeAllowList:
    """The --log-attribute allow-list; a bad name is refused naming the flag."""
    try:
        return AttributeAllowList.parse(names)
    except ValueError as exc:
        raise ValueError(f"--log-attribute: {exc}") from exc


def server_config(args: argparse.Namespace) -> ServerConfig:
    """How to serve; raises ValueError naming a flag whose value cannot work."""
    try:
        is_local_address(args.listen)  # a malformed address, named with its flag
    except ServerConfigError as exc:
        raise ValueError(f"--listen: {exc}") from exc
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
    if not 0 <= args.grace < math.inf:
        raise ValueError("--grace must be a number of seconds, 0 or more")
    for name, minimum in {**LIMIT_MINIMUMS, "workers": 1}.items():
        if getattr(args, name) < minimum:
            raise ValueError(f"--{name.replace('_', '-')}: must be at least {minimum}")
    tls = None
    if args.tls_cert is not None:
        tls = TlsConfig.from_files(args.tls_cert, args.tls_key, args.tls_client_ca)
    limits = Limits(
        max_batch_items=args.max_batch_items,
        max_attribute_depth=args.max_attribute_depth,
        max_attribute_bytes=args.max_attribute_bytes,
        max_message_bytes=args.max_message_bytes,
    )
    return ServerConfig(
        listen=args.listen,
        allow_remote=args.allow_remote,
        tls=tls,
        limits=limits,
        max_workers=args.workers,
        grace_seconds=args.grace,
    )
