"""The sidecar as one running unit: engine, decision cache, reloader and server, wired once.

`cnm-policy serve` and the end-to-end tests build the sidecar through `open_runtime`, so the
tests exercise exactly the wiring production runs (which engine the reloader swaps, where cache
statistics come from, which gate the first version passes). Signals and logging setup stay in
the CLI: they belong to a process, not to a library object.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from cnm_policy.audit import AttributeAllowList, DecisionLog, Observer
from cnm_policy.cache import DEFAULT_MAXSIZE, DEFAULT_TTL, CachedEngine
from cnm_policy.engine import Clock, Engine, PolicySnapshot, load_snapshot
from cnm_policy.insights.capture import InputCapture
from cnm_policy.ops.app import OpsApp
from cnm_policy.ops.collector import OpsSources, build_registry
from cnm_policy.ops.health import Freshness, Readiness, StalenessWatch
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.ops.tracing import Tracing
from cnm_policy.policy.commit import load_tree
from cnm_policy.reload import DEFAULT_SETTLE_SECONDS, PolicyReloader
from cnm_policy.server.app import ServerConfig, Sidecar, build_sidecar
from cnm_policy.server.doors import FrontDoorOptions, FrontDoors, open_front_doors
from cnm_policy.server.ext_authz import EXT_AUTHZ_SERVICE, ext_authz_handlers
from cnm_policy.server.http import HttpListener, HttpListenerConfig
from cnm_policy.server.resolving import ResolvingServicer
from cnm_policy.server.servicer import PolicyServicer
from cnm_policy.server.shadow import Shadow, ShadowOptions, capture_observer
from cnm_policy.testing import run_suite

__all__ = ["Runtime", "RuntimeOptions", "open_runtime"]


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """What to serve and how: the bundle, the cache, the reload gate and the log redaction.

    `run_bundle_tests` ``False`` still runs them but serves a version whose tests fail (with a
    ``bundle_tests_failed`` warning); `cache_size` ``None`` disables the decision cache;
    `watch_interval` ``None`` disables directory polling (reloads then happen only on request,
    e.g. SIGHUP); a changed bundle without a `bundle.lock.json` goes live once unchanged for
    `settle_seconds`; `clock` is the time conditions read. `max_policy_age` (seconds) stops
    decisions and readiness while no load has confirmed the policy for that long; `ops` is the
    ops listener (metrics, health; ``None``: none); `tracing` carries trace ids (and exports
    spans when built from ``OTEL_*``).
    """

    policies: Path
    cache_size: int | None = DEFAULT_MAXSIZE
    cache_ttl: float = DEFAULT_TTL
    run_bundle_tests: bool = True
    watch_interval: float | None = 2.0
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    log_allow: AttributeAllowList = field(default_factory=AttributeAllowList)
    clock: Clock = time.time
    max_policy_age: float | None = None
    ops: HttpListenerConfig | None = None
    tracing: Tracing = field(default_factory=Tracing)
    doors: FrontDoorOptions = field(default_factory=FrontDoorOptions)  # HTTP, ext_authz, PIP
    shadow: ShadowOptions | None = None  # a candidate bundle deciding beside the live one
    log_inputs: Path | None = None  # every decision's whole request (sensitive), for replay

    def __post_init__(self) -> None:
        # Checked here, before anything starts: `Runtime.start` must not fail half-way with
        # the server already listening and the watcher not running.
        if self.watch_interval is not None and not self.watch_interval > 0:
            raise ValueError(f"watch_interval must be positive or None, not {self.watch_interval}")


@dataclass(frozen=True, eq=False)
class Runtime:
    """A built, not yet started sidecar and the parts an operator (or a test) may poke."""

    engine: Engine | CachedEngine
    reloader: PolicyReloader[PolicySnapshot]
    sidecar: Sidecar
    options: RuntimeOptions
    metrics: DecisionMetrics = field(default_factory=DecisionMetrics)
    readiness: Readiness = field(default_factory=lambda: Readiness(Freshness(None, lambda: None)))
    ops: HttpListener | None = None
    watch: StalenessWatch | None = None
    doors: FrontDoors | None = None
    shadow: Shadow | None = None
    capture: InputCapture | None = None

    def start(self) -> str:
        """Start serving, then start watching the bundle; returns the bound address.

        The loaded policy is handed to the garbage collector's permanent generation first: a
        large policy is millions of long-lived objects (snapshots hold no reference cycles),
        and every full collection would otherwise walk all of them again while holding the
        GIL, stalling every call in flight. Versions loaded later are collected as usual.
        """
        gc.collect()
        gc.freeze()
        if self.ops is not None:  # first: /readyz answers "starting" while the rest starts
            self.ops.start()
        try:
            address = self.sidecar.start()
        except BaseException:
            if self.ops is not None:
                self.ops.stop(0)
            raise
        if self.doors is not None:
            try:
                self.doors.start(self.options.watch_interval)
            except BaseException:
                self.sidecar.stop(0)
                if self.ops is not None:
                    self.ops.stop(0)
                raise
        self.readiness.started()
        if self.watch is not None:
            self.watch.start()
        self.reloader.start(self.options.watch_interval)
        if self.shadow is not None:
            self.shadow.start(self.options.watch_interval)
        return address

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, drain in-flight calls (within `grace`), then stop reloading.

        Health and readiness flip first: waiting for a reload in progress must not delay them.
        The ops listener stops last, so probes see "stopping" during the drain.
        """
        self.readiness.stopping()
        if self.doors is not None:
            self.doors.stop(grace)
        self.sidecar.stop(grace)
        if self.watch is not None:
            self.watch.stop()
        self.reloader.stop()
        if self.shadow is not None:  # after the drain: the last live decisions are compared
            self.shadow.stop()
        if self.capture is not None:
            self.capture.close()
        if self.ops is not None:
            self.ops.stop()
        self.options.tracing.shutdown()


@dataclass(frozen=True, slots=True)
class _NotGated:
    """What the reload gate sees under `--no-bundle-tests`: a suite that passed."""

    ok: bool = True
    total: int = 0
    failures: tuple[object, ...] = ()
    problems: tuple[object, ...] = ()


def _advisory_suite(snapshot: PolicySnapshot) -> _NotGated:
    """Run the bundle's own tests without gating on them, and warn loudly when they fail.

    Switching the gate off must not hide what it would have caught: the version still serves,
    and every version loaded says which of its tests fail.
    """
    result = run_suite(snapshot)
    if not result.ok:
        structlog.get_logger("cnm_policy.serve").warning(
            "bundle_tests_failed",
            policy_name=snapshot.name,
            policy_version=snapshot.version,
            policy_digest=snapshot.digest,
            cases=result.total,
            failed_cases=len(result.failures),
            test_file_problems=len(result.problems),
            gate="off (--no-bundle-tests)",
        )
    return _NotGated()


def open_runtime(options: RuntimeOptions, config: ServerConfig) -> Runtime:
    """Load and prove the first version, then wire everything around it.

    Raises a `CnmPolicyError` when the bundle cannot be loaded or fails its own tests: the
    sidecar never serves (nor reports SERVING for) a version that did not pass the gate.
    """
    run_tests = run_suite if options.run_bundle_tests else _advisory_suite
    # The same commit point as every reload: one consistent tree, matching its lock if any.
    snapshot, fingerprint = load_tree(options.policies, load=load_snapshot, run_tests=run_tests)
    base = Engine(snapshot, clock=options.clock)
    engine: Engine | CachedEngine = base
    if options.cache_size is not None:
        engine = CachedEngine(base, maxsize=options.cache_size, ttl=options.cache_ttl)
    reloader = PolicyReloader(
        engine,
        options.policies,
        load=load_snapshot,
        run_tests=run_tests,
        settle_seconds=options.settle_seconds,
        initial_fingerprint=fingerprint,
    )
    freshness = Freshness(options.max_policy_age, lambda: reloader.status.last_confirmed_at)
    metrics = DecisionMetrics()
    cache_stats = engine.stats if isinstance(engine, CachedEngine) else None
    shadow = capture = None
    observers: list[Observer] = []
    if options.shadow is not None:
        shadow = Shadow(
            options.shadow,
            run_tests=run_tests,
            settle_seconds=options.settle_seconds,
            clock=options.clock,
        )
        observers.append(shadow.observe)
    if options.log_inputs is not None:
        capture = InputCapture(options.log_inputs)
        observers.append(capture_observer(capture))
    decision_log = DecisionLog(allow=options.log_allow, observers=observers)
    doors = open_front_doors(
        options.doors,
        engine=engine,
        limits=config.limits,
        decision_log=decision_log,
        reload_status=lambda: reloader.status,
        cache_stats=cache_stats,
        metrics=metrics,
        freshness=freshness if options.max_policy_age is not None else None,
        settle_seconds=options.settle_seconds,
    )
    servicer_type: Callable[..., PolicyServicer] = PolicyServicer
    if doors.resolver.configured:  # gRPC callers' principals are completed too
        servicer_type = functools.partial(ResolvingServicer, decider=doors.decider)
    sidecar = build_sidecar(
        engine,
        config=config,
        decision_log=decision_log,
        reload_status=lambda: reloader.status,
        cache_stats=cache_stats,
        metrics=metrics,
        freshness=freshness if options.max_policy_age is not None else None,
        tracing=options.tracing,
        servicer_type=servicer_type,
    )
    readiness = Readiness(freshness, on_change=sidecar.set_serving)
    sidecar.add_service(EXT_AUTHZ_SERVICE, ext_authz_handlers(doors.ext_authz))
    ops = None
    if options.ops is not None:
        sources = OpsSources(metrics, lambda: engine.snapshot, readiness, lambda: reloader.status)
        divergences = None if shadow is None else shadow.divergences
        registry = build_registry(replace(sources, cache_stats=cache_stats, shadow=divergences))
        ops = HttpListener(OpsApp(registry, readiness), options.ops, name="ops")
    watch = None
    if options.max_policy_age is not None:  # a tenth of the age, within [50 ms, 1 s]
        watch = StalenessWatch(readiness, min(1.0, max(0.05, options.max_policy_age / 10)))
    return Runtime(
        engine=engine,
        reloader=reloader,
        sidecar=sidecar,
        options=options,
        metrics=metrics,
        readiness=readiness,
        ops=ops,
        watch=watch,
        doors=doors,
        shadow=shadow,
        capture=capture,
    )
