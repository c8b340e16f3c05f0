"""`cnm-policy serve`: run the gRPC sidecar until SIGTERM/SIGINT; SIGHUP reloads the policy.

The process entry point: it configures logging, loads the first version, serves and owns the
signals (its flags: cli/_serve_flags.py). Exit codes: 0 after a graceful stop, 2 for a
configuration error, 4 when the bundle cannot be loaded or fails its own tests.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

import structlog

from cnm_policy._early_signals import take_remembered
from cnm_policy.cli._bundle_flags import bundle_source
from cnm_policy.cli._processes import is_child, join_supervisor, supervise
from cnm_policy.cli._serve_flags import add_serve_arguments, runtime_options, server_config
from cnm_policy.distribution.http_source import HttpBundleSource
from cnm_policy.errors import CnmPolicyError
from cnm_policy.log_pipeline import configure_logging
from cnm_policy.ops import config as config_layers
from cnm_policy.reload import PolicyReloader
from cnm_policy.server.app import ServerConfig, is_local_address
from cnm_policy.server.runtime import Runtime, RuntimeOptions, open_runtime

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_POLICY", "register", "run"]

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_POLICY = 4


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
    add_serve_arguments(parser)
    config_layers.install(parser)  # last: every flag above is also a file key and env variable
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until a stop signal; returns the exit code."""
    try:
        sources = config_layers.resolve(args, os.environ)
    except ValueError as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if getattr(args, "print_config", False):
        print(config_layers.render(args, sources), end="")
        return EXIT_OK
    try:
        configure_logging(args.log_file, args.log_format, args.log_level)
        config = server_config(args)
        options = runtime_options(args)
        source, options = bundle_source(args, options)  # checked once, before any child starts
        if getattr(args, "processes", 1) > 1 and not is_child():
            return supervise(args, sources, structlog.get_logger("cnm_policy.serve"))
        if is_child():  # the supervisor holds the ports: join them
            config, options = join_supervisor(config, options)
    except (CnmPolicyError, ValueError, OSError) as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = structlog.get_logger("cnm_policy.serve")
    if config.allow_remote and config.tls is None and not is_local_address(config.listen):
        log.warning("insecure_listen", address=config.listen, hint="use --tls-cert/--tls-key")
    if args.policies is None and source is None:  # a missing mount must not pass silently
        log.warning(
            "default_bundle_in_use",
            source=str(options.policies),
            hint="pass --policies DIR to serve your own bundle",
        )
    age, every = options.max_policy_age, options.watch_interval
    if age is not None and source is None and (every is None or every >= age):
        # Only polls and reloads confirm a directory's policy: it would go stale between them.
        log.warning("max_policy_age_unconfirmable", max_policy_age=age, watch_interval=every)
    # Handlers go in before the (possibly slow) first load: a SIGHUP or SIGTERM arriving then
    # must not kill the process with the default action.
    with _Signals() as signals:
        try:
            if source is not None:  # the last good archive, else one fetched now
                source.prepare()
            runtime = _first_load(options, config, signals.stop, log)
        except CnmPolicyError as exc:
            log.error("sidecar_start_failed", error_code=exc.code, error=str(exc))
            print(f"cnm-policy serve: {exc}", file=sys.stderr)
            return EXIT_POLICY
        if runtime is None:  # asked to stop while loading: nothing was ever served
            log.info("sidecar_stopped", during="first_load")
            return EXIT_OK
        return _serve(runtime, config, signals, log, source)


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


def _serve(
    runtime: Runtime,
    config: ServerConfig,
    signals: _Signals,
    log: Any,
    source: HttpBundleSource | None = None,
) -> int:
    """Start, serve until a stop signal, then drain; returns the exit code."""
    if signals.stop.is_set():  # asked to stop while loading: nothing was ever served
        log.info("sidecar_stopped")
        return EXIT_OK
    if source is not None:  # before start: a restored version is as fresh as its record
        source.attach(runtime.reloader, lambda: runtime.engine.snapshot.digest)
    try:
        address = runtime.start()
    except CnmPolicyError as exc:
        print(f"cnm-policy serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    shadow = runtime.shadow.reloader if runtime.shadow is not None else None
    signals.attach(runtime.reloader if source is None else source, shadow)  # SIGHUP: fetch now
    if source is not None:  # from now on the source drives reloads
        source.start()
    snapshot = runtime.engine.snapshot
    log.info(
        "sidecar_started",
        address=address,
        ops_address=runtime.ops.address if runtime.ops is not None else None,
        http_address=runtime.doors.http_address if runtime.doors is not None else None,
        tls=config.tls is not None,
        policy_name=snapshot.name,
        policy_version=snapshot.version,
        policy_digest=snapshot.digest,
        source=str(runtime.options.policies),
    )
    while not signals.stop.wait(0.5):  # a timed wait keeps the main thread responsive
        pass
    log.info("sidecar_stopping", grace_seconds=config.grace_seconds)
    if source is not None:
        source.stop(timeout=config.grace_seconds)
    runtime.stop()
    log.info("sidecar_stopped")
    return EXIT_OK


class _Signals:
    """SIGTERM/SIGINT set `stop`; SIGHUP reloads (remembered until a reloader is attached).

    A context manager so the previous handlers come back when `run` returns (which matters
    when `run` is called in-process, as the tests do).
    """

    _HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._reloader: PolicyReloader[Any] | HttpBundleSource | None = None
        self._shadow: PolicyReloader[Any] | None = None
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

    def attach(
        self,
        reloader: PolicyReloader[Any] | HttpBundleSource,
        shadow: PolicyReloader[Any] | None = None,
    ) -> None:
        """Route SIGHUP to `reloader` (and the shadow's) from now on, and reload now if one
        came in before."""
        self._reloader, self._shadow = reloader, shadow
        if self._reload_pending:
            self._request()

    def _request(self) -> None:
        if self._reloader is not None:
            self._reloader.request_reload()
        if self._shadow is not None:
            self._shadow.request_reload()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            self.stop.set()
        elif self._reloader is None:
            self._reload_pending = True
        else:
            self._request()
