"""The front doors beside PolicyService, wired once: the HTTP/JSON listener (native and AuthZEN),
Envoy's ext_authz on the gRPC listener, and the principal sources they share.

`open_runtime` calls `open_front_doors` with the engine it built; what is configured here is
exactly what `serve` flags say (`--http-listen`, `--directory`, `--jwt-*`,
`--trust-request-roles`, `--default-tenant`, `--trusted-gateway-*`). Nothing is on by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnm_policy.audit import DecisionLog
from cnm_policy.errors import ServerConfigError
from cnm_policy.ops.health import Freshness
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.policy import tenant_problem
from cnm_policy.principals import (
    Directory,
    JwksSource,
    JwtConfig,
    JwtVerifier,
    PrincipalResolver,
    open_directory,
)
from cnm_policy.reload import DEFAULT_SETTLE_SECONDS, PolicyReloader, ReloadStatus
from cnm_policy.server.ext_authz import ExtAuthzServicer, TrustedGateway
from cnm_policy.server.http import HttpListener, HttpListenerConfig
from cnm_policy.server.http.api import HttpApi
from cnm_policy.server.http.decide import HttpDecider
from cnm_policy.server.limits import Limits
from cnm_policy.server.ports import CacheStatsView, DecisionEngine

__all__ = ["FrontDoorOptions", "FrontDoors", "open_front_doors"]


@dataclass(frozen=True, slots=True)
class FrontDoorOptions:
    """Which doors and principal sources to open (all off by default)."""

    http: HttpListenerConfig | None = None
    directory: Path | None = None
    jwt: JwtConfig | None = None
    trust_request_roles: bool = False
    default_tenant: str | None = None
    trusted_gateway: TrustedGateway | None = None

    def __post_init__(self) -> None:
        if self.default_tenant is not None and (problem := tenant_problem(self.default_tenant)):
            raise ServerConfigError(f"--default-tenant `{self.default_tenant[:64]}`: {problem}")


@dataclass(eq=False)
class FrontDoors:
    """The built doors: start after the gRPC listener, stop before it."""

    resolver: PrincipalResolver
    decider: HttpDecider
    ext_authz: ExtAuthzServicer
    http: HttpListener | None = None
    directory: PolicyReloader[Directory] | None = None
    http_address: str | None = None

    def start(self, watch_interval: float | None) -> None:
        """Start watching the directory, then serve HTTP (its address in `http_address`)."""
        if self.directory is not None:
            self.directory.start(watch_interval)
        if self.http is not None:
            self.http_address = self.http.start()

    def stop(self, grace: float | None = None) -> None:
        """Drain HTTP, then stop watching."""
        if self.http is not None:
            self.http.stop(grace)
        if self.directory is not None:
            self.directory.stop()


def open_front_doors(
    options: FrontDoorOptions,
    *,
    engine: DecisionEngine,
    limits: Limits,
    decision_log: DecisionLog,
    reload_status: Callable[[], ReloadStatus] | None = None,
    cache_stats: Callable[[], CacheStatsView] | None = None,
    metrics: DecisionMetrics | None = None,
    freshness: Freshness | None = None,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
) -> FrontDoors:
    """Prove the directory and the key set (a bad one stops startup), then build the doors."""
    reloader = holder = None
    if options.directory is not None:
        holder, reloader = open_directory(options.directory, settle_seconds=settle_seconds)
    verifier = None
    if options.jwt is not None:
        verifier = JwtVerifier(options.jwt, JwksSource(options.jwt.jwks))
    resolver = PrincipalResolver(
        directory=(lambda: holder.snapshot) if holder is not None else None,
        verifier=verifier,
        claims=lambda: _bundle_part(engine, "claims"),
        trust_request_roles=options.trust_request_roles,
    )
    decider = HttpDecider(
        engine,
        limits=limits,
        decision_log=decision_log,
        resolver=resolver,
        default_tenant=options.default_tenant,
        reload_status=reload_status,
        cache_stats=cache_stats,
        freshness=freshness,
    )
    http = None
    if options.http is not None:
        http = HttpListener(HttpApi(decider, metrics=metrics), options.http, name="http")
    ext_authz = ExtAuthzServicer(
        decider,
        routes=lambda: _bundle_part(engine, "routes"),
        gateway=options.trusted_gateway,
        metrics=metrics,
    )
    return FrontDoors(
        resolver=resolver, decider=decider, ext_authz=ext_authz, http=http, directory=reloader
    )


def _bundle_part(engine: DecisionEngine, name: str) -> Any:
    """`claims` or `routes` of the serving bundle (None when it declares none)."""
    return getattr(getattr(engine.snapshot, "bundle", None), name, None)
