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

import cnm_policy
from cnm_policy.audit import AttributeAllowList, DecisionLog, format_timestamp
from cnm_policy.cache import CachedEngine
from cnm_policy.engine import Engine, load_snapshot
from cnm_policy.errors import CnmPolicyError
from cnm_policy.reload import PolicyReloader, bundle_fingerprint, prove_bundle
from cnm_policy.server.app import DEFAULT_LISTEN, ServerConfig, TlsConfig, build_sidecar
from cnm_policy.server.limits import DEFAULT_LIMITS, Limits
from cnm_policy.testing import run_suite

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_POLICY", "default_policy_dir", "register", "run"]

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_POLICY = 4
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
        config, allow = _server_config(args)
    except (CnmPolicyError, ValueError, OSError) as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = structlog.get_logger("cnm_policy.serve")
    path = args.policies if args.policies is not None else default_policy_dir()
    run_tests = None if args.no_bundle_tests else run_suite
    try:
        fingerprint = bundle_fingerprint(path)
        snapshot = prove_bundle(path, load=load_snapshot, run_tests=run_tests)
    except CnmPolicyError as exc:
        log.error("sidecar_start_failed", error_code=exc.code, error=str(exc))
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_POLICY
    engine = Engine(snapshot)
    served: Engine | CachedEngine = engine
    if not args.no_cache:
        served = CachedEngine(engine, maxsize=args.cache_size, ttl=args.cache_ttl)
    reloader = PolicyReloader(
        served, path, load=load_snapshot, run_tests=run_tests, initial_fingerprint=fingerprint
    )
    sidecar = build_sidecar(
        served,
        config=config,
        decision_log=DecisionLog(allow=allow),
        reload_status=lambda: reloader.status,
        cache_stats=served.stats if isinstance(served, CachedEngine) else None,
    )
    try:
        address = sidecar.start()
    except CnmPolicyError as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()
    _install_signal_handlers(stop, reloader)
    reloader.start(args.watch_interval or None)
    log.info(
        "sidecar_started",
        address=address,
        tls=config.tls is not None,
        policy_name=snapshot.name,
        policy_version=snapshot.version,
        policy_digest=snapshot.digest,
        source=str(path),
    )
    while not stop.wait(0.5):
        pass
    log.info("sidecar_stopping", grace_seconds=config.grace_seconds)
    reloader.stop()
    sidecar.stop()
    log.info("sidecar_stopped")
    stream.flush()
    return EXIT_OK


def _server_config(args: argparse.Namespace) -> tuple[ServerConfig, AttributeAllowList]:
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
    return config, AttributeAllowList.parse(args.log_attribute)


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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    return stream


def _timestamp_if_missing(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Every event gets a timestamp; decision events bring their own (from their clock)."""
    if "timestamp" not in event_dict:
        event_dict["timestamp"] = format_timestamp(time.time())
    return event_dict
