"""`cnm-policy serve`: run the gRPC sidecar until SIGTERM/SIGINT; SIGHUP reloads the policy.

The process entry point is the one place that decides where logs go (JSON lines on stdout or a
file; a readable console when stdout is a terminal), assembles engine, cache, reloader and
server, and owns the signals. Exit codes: 0 after a graceful stop, 2 for a configuration error,
4 when the policy bundle cannot be loaded or fails its own tests (nothing is served).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from cnm_policy._early_signals import take_remembered
from cnm_policy.audit import AttributeAllowList, configure_logging
from cnm_policy.cli._args import default_policy_dir
from cnm_policy.errors import CnmPolicyError
from cnm_policy.reload import DEFAULT_SETTLE_SECONDS, PolicyReloader
from cnm_policy.server.app import (
    DEFAULT_LISTEN,
    DEFAULT_WORKERS,
    ServerConfig,
    ServerConfigError,
    TlsConfig,
    is_local_address,
)
from cnm_policy.server.limits import DEFAULT_LIMITS, LIMIT_MINIMUMS, Limits
from cnm_policy.server.runtime import Runtime, RuntimeOptions, open_runtime

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_POLICY", "register", "run"]

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_POLICY = 4
_MIN_WATCH_INTERVAL = 0.1


def register(subparsers: Any) -> None:
    """Add the `serve` sub-command."""
    parser = subparsers.add_parser(
        "serve",
        help="run the gRPC policy sidecar",
        description="Serve cnm_policy.v1.PolicyService, grpc.health.v1 and reflection. "
        "SIGHUP reloads the policy now; SIGTERM/SIGINT drain and exit 0. Exit status: 0 after "
        "a graceful stop, 2 for a configuration error, 4 when the policy bundle cannot be loaded "
        "or fails its own tests.",
    )
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
        "--cache-size",
        type=int,
        default=10_000,
        metavar="N",
        help="decision cache entries (0: no cache; default: %(default)s)",
    )
    add(
        "--cache-ttl",
        type=float,
        default=60.0,
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until a stop signal; returns the exit code."""
    try:
        configure_logging(args.log_file, args.log_format, args.log_level)
        config = _server_config(args)
        options = _runtime_options(args)
    except (CnmPolicyError, ValueError, OSError) as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = structlog.get_logger("cnm_policy.serve")
    if config.allow_remote and config.tls is None and not is_local_address(config.listen):
        log.warning("insecure_listen", address=config.listen, hint="use --tls-cert/--tls-key")
    if args.policies is None:  # a missing mount or wrong folder must not pass silently
        log.warning(
            "default_bundle_in_use",
            source=str(options.policies),
            hint="pass --policies DIR to serve your own bundle",
        )
    # Handlers go in before the (possibly slow) first load: a SIGHUP or SIGTERM arriving then
    # must not kill the process with the default action.
    with _Signals() as signals:
        try:
            runtime = _first_load(options, config, signals.stop, log)
        except CnmPolicyError as exc:
            log.error("sidecar_start_failed", error_code=exc.code, error=str(exc))
            print(f"cnm-policy serve: {exc}", file=sys.stderr)
            return EXIT_POLICY
        if runtime is None:  # asked to stop while loading: nothing was ever served
            log.info("sidecar_stopped", during="first_load")
            return EXIT_OK
        return _serve(runtime, config, signals, log)


def _first_load(
    options: RuntimeOptions, config: ServerConfig, stop: threading.Event, log: Any
) -> Runtime | None:
    """`open_runtime` in a worker thread; ``None`` as soon as `stop` is set meanwhile.

    A large bundle takes seconds to load: a stop signal must not wait for it (Kubernetes
    kills after its grace period). The abandoned load is a daemon thread; the process exits.
    """
    log.debug("policy_loading", source=str(options.policies))
    done = threading.Event()
    outcome: list[Runtime | BaseException] = []

    def load() -> None:
        try:
            outcome.append(open_runtime(options, config))
        except BaseException as exc:  # handed to the main thread, which decides
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=load, name="cnm-policy-first-load", daemon=True).start()
    while not done.wait(0.05):  # a timed wait: signal handlers run in this thread
        if stop.is_set():
            return None
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _serve(runtime: Runtime, config: ServerConfig, signals: _Signals, log: Any) -> int:
    """Start, serve until a stop signal, then drain; returns the exit code."""
    if signals.stop.is_set():  # asked to stop while loading: nothing was ever served
        log.info("sidecar_stopped")
        return EXIT_OK
    try:
        address = runtime.start()
    except CnmPolicyError as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    signals.attach(runtime.reloader)
    snapshot = runtime.engine.snapshot
    log.info(
        "sidecar_started",
        address=address,
        tls=config.tls is not None,
        policy_name=snapshot.name,
        policy_version=snapshot.version,
        policy_digest=snapshot.digest,
        source=str(runtime.options.policies),
    )
    while not signals.stop.wait(0.5):  # a timed wait keeps the main thread responsive
        pass
    log.info("sidecar_stopping", grace_seconds=config.grace_seconds)
    runtime.stop()
    log.info("sidecar_stopped")
    return EXIT_OK


def _runtime_options(args: argparse.Namespace) -> RuntimeOptions:
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
    )


def _allow_list(names: list[str]) -> AttributeAllowList:
    try:
        return AttributeAllowList.parse(names)
    except ValueError as exc:
        raise ValueError(f"--log-attribute: {exc}") from exc


def _server_config(args: argparse.Namespace) -> ServerConfig:
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


class _Signals:
    """SIGTERM/SIGINT set `stop`; SIGHUP reloads (remembered until a reloader is attached).

    A context manager so the previous handlers come back when `run` returns (which matters
    when `run` is called in-process, as the tests do).
    """

    _HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._reloader: PolicyReloader[Any] | None = None
        self._reload_pending = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for signum in self._HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)
        for early in take_remembered():  # received while the process was still importing
            self._handle(early, None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def attach(self, reloader: PolicyReloader[Any]) -> None:
        """Route SIGHUP to `reloader` from now on, and reload now if one came in before."""
        self._reloader = reloader
        if self._reload_pending:
            reloader.request_reload()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            self.stop.set()
        elif self._reloader is None:
            self._reload_pending = True
        else:
            self._reloader.request_reload()
