"""`cnm-policy serve`: run the gRPC sidecar until SIGTERM/SIGINT; SIGHUP reloads the policy.

The process entry point is the one place that decides where logs go (JSON lines on stdout or a
file; a readable console when stdout is a terminal), assembles engine, cache, reloader and
server, and owns the signals. Exit codes: 0 after a graceful stop, 2 for a configuration error,
4 when the policy bundle cannot be loaded or fails its own tests (nothing is served).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import structlog

from cnm_policy.audit import AttributeAllowList, format_timestamp
from cnm_policy.cli.check import default_policy_dir
from cnm_policy.errors import CnmPolicyError
from cnm_policy.reload import PolicyReloader
from cnm_policy.server.app import DEFAULT_LISTEN, ServerConfig, TlsConfig
from cnm_policy.server.limits import DEFAULT_LIMITS, Limits
from cnm_policy.server.runtime import RuntimeOptions, open_runtime

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_POLICY", "register", "run"]

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_POLICY = 4
_LEADING_KEYS = ("timestamp", "level", "event")


def register(subparsers: Any) -> None:
    """Add the `serve` sub-command."""
    parser = subparsers.add_parser(
        "serve",
        help="run the gRPC policy sidecar",
        description="Serve cnm_policy.v1.PolicyService, grpc.health.v1 and reflection. "
        "SIGHUP reloads the policy now; SIGTERM/SIGINT drain and exit 0.",
    )
    add = parser.add_argument
    add(
        "--policies",
        type=Path,
        default=None,
        metavar="DIR",
        help="policy bundle directory (default: the bundled policies/cnm)",
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
    add("--cache-size", type=int, default=10_000, metavar="N", help="decision cache entries")
    add("--cache-ttl", type=float, default=60.0, metavar="SECONDS", help="decision cache TTL")
    add("--no-cache", action="store_true", help="evaluate every request")
    add(
        "--watch-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="poll the policy directory this often; 0 disables (SIGHUP still reloads)",
    )
    add(
        "--no-bundle-tests",
        action="store_true",
        help="serve versions without running their own tests first (not recommended)",
    )
    add("--max-batch-items", type=int, default=DEFAULT_LIMITS.max_batch_items, metavar="N")
    add("--max-attribute-depth", type=int, default=DEFAULT_LIMITS.max_attribute_depth, metavar="N")
    add("--max-attribute-bytes", type=int, default=DEFAULT_LIMITS.max_attribute_bytes, metavar="N")
    add("--max-message-bytes", type=int, default=DEFAULT_LIMITS.max_message_bytes, metavar="N")
    add("--workers", type=int, default=8, metavar="N", help="RPC worker threads")
    add(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long shutdown waits for in-flight calls",
    )
    add("--log-file", type=Path, metavar="PATH", help="append logs here instead of stdout")
    add(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="auto: console on a terminal, JSON lines otherwise",
    )
    add("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    add(
        "--log-attribute",
        action="append",
        default=[],
        metavar="SECTION.KEY",
        help="log this attribute's value in decision events (e.g. context.channel); repeatable",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until a stop signal; returns the exit code."""
    try:
        stream = configure_logging(args.log_file, args.log_format, args.log_level)
        config = _server_config(args)
        options = RuntimeOptions(
            policies=args.policies if args.policies is not None else default_policy_dir(),
            cache_size=None if args.no_cache else args.cache_size,
            cache_ttl=args.cache_ttl,
            run_bundle_tests=not args.no_bundle_tests,
            watch_interval=args.watch_interval or None,
            log_allow=AttributeAllowList.parse(args.log_attribute),
        )
    except (CnmPolicyError, ValueError, OSError) as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = structlog.get_logger("cnm_policy.serve")
    try:
        runtime = open_runtime(options, config)
    except CnmPolicyError as exc:
        log.error("sidecar_start_failed", error_code=exc.code, error=str(exc))
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_POLICY
    stop = threading.Event()
    _install_signal_handlers(stop, runtime.reloader)
    try:
        address = runtime.start()
    except CnmPolicyError as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    snapshot = runtime.engine.snapshot
    log.info(
        "sidecar_started",
        address=address,
        tls=config.tls is not None,
        policy_name=snapshot.name,
        policy_version=snapshot.version,
        policy_digest=snapshot.digest,
        source=str(options.policies),
    )
    while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
        pass
    log.info("sidecar_stopping", grace_seconds=config.grace_seconds)
    runtime.stop()
    log.info("sidecar_stopped")
    stream.flush()
    return EXIT_OK


def _server_config(args: argparse.Namespace) -> ServerConfig:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = None
    if args.tls_cert is not None:
        tls = TlsConfig.from_files(args.tls_cert, args.tls_key, args.tls_client_ca)
    limits = Limits(
        max_batch_items=args.max_batch_items,
        max_attribute_depth=args.max_attribute_depth,
        max_attribute_bytes=args.max_attribute_bytes,
        max_message_bytes=args.max_message_bytes,
    )
    config = ServerConfig(
        listen=args.listen,
        allow_remote=args.allow_remote,
        tls=tls,
        limits=limits,
        max_workers=args.workers,
        grace_seconds=args.grace,
    )
    return config


def _install_signal_handlers(stop: threading.Event, reloader: PolicyReloader[Any]) -> None:
    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_reload(signum: int, frame: FrameType | None) -> None:
        reloader.request_reload()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)


def configure_logging(log_file: Path | None, log_format: str, level: str) -> TextIO:
    """Route every structlog event to `log_file` or stdout; returns the stream written to."""
    stream: TextIO = log_file.open("a", encoding="utf-8") if log_file else sys.stdout
    console = log_format == "console" or (log_format == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _timestamp_if_missing,
            structlog.processors.format_exc_info,
            _lead_with_when_and_what,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    return stream


def _lead_with_when_and_what(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Start each JSON line with timestamp, level and event, so a person can scan the log."""
    head = {key: event_dict.pop(key) for key in _LEADING_KEYS if key in event_dict}
    return {**head, **event_dict}


def _timestamp_if_missing(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Every event gets a timestamp; decision events bring their own (from their clock)."""
    if "timestamp" not in event_dict:
        event_dict["timestamp"] = format_timestamp(time.time())
    return event_dict
