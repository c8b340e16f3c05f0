"""Build, start and stop the sidecar: PolicyService, health, reflection, listening, TLS.

Operating concerns live here so the servicer stays about decisions: which address to listen on
(loopback unless the operator explicitly allows more), transport security, the standard health
service (``SERVING`` only while a valid policy serves, ``NOT_SERVING`` from the moment shutdown
starts), server reflection for stock tools, and a graceful stop that drains in-flight calls.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cnm_policy.audit import DecisionLog
from cnm_policy.errors import ServerConfigError
from cnm_policy.ops.health import Freshness
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.ops.tracing import Tracing
from cnm_policy.reload import ReloadStatus
from cnm_policy.server import _channelz
from cnm_policy.server.binding import can_bind, is_ip, refuse_live_unix_socket, resolve
from cnm_policy.server.limits import DEFAULT_LIMITS, Limits
from cnm_policy.server.ports import CacheStatsView, DecisionEngine
from cnm_policy.server.servicer import SERVICE_NAME, PolicyServicer, rpc_handlers
from cnm_policy.server.tls import TlsConfig
from cnm_policy.server.workers import WorkerPool

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_WORKERS",
    "SERVICE_NAME",
    "ServerConfig",
    "ServerConfigError",
    "Sidecar",
    "TlsConfig",
    "build_sidecar",
    "is_local_address",
]

DEFAULT_LISTEN = "127.0.0.1:50051"
# Decisions are CPU work under the GIL (no handler waits on anything but a short log write), so
# threads beyond a couple only contend for the interpreter: measured on 2 cores, 8 workers
# served ~25% fewer cached Checks per second than 2. A second worker keeps one long batch from
# holding up every other call.
DEFAULT_WORKERS = 2


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to serve. Only loopback and unix-socket addresses unless `allow_remote` is set."""

    listen: str = DEFAULT_LISTEN
    allow_remote: bool = False
    tls: TlsConfig | None = None
    limits: Limits = DEFAULT_LIMITS
    max_workers: int = DEFAULT_WORKERS
    grace_seconds: float = 10.0
    # Only for `serve --processes N`: the supervisor holds the port, its children share it.
    reuse_port: bool = False

    def __post_init__(self) -> None:
        if not self.allow_remote and not is_local_address(self.listen):
            raise ServerConfigError(
                f"`{self.listen}` is reachable from other hosts: pass --allow-remote "
                "(and preferably --tls-cert/--tls-key) to listen there"
            )
        if self.max_workers < 1:
            raise ServerConfigError("max_workers must be at least 1")


def is_local_address(address: str) -> bool:
    """True for unix sockets and loopback hosts (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ServerConfigError(f"`{address}` is not `HOST:PORT` or `unix:PATH`")
    host = host.removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other host name may resolve to a routable address


class Sidecar:
    """A configured, not yet started server. `start()` binds and returns the bound address."""

    def __init__(self, servicer: PolicyServicer, config: ServerConfig) -> None:
        self._config = config
        # grpc only submits calls to the pool and counts them done (see `workers`); the stubs
        # type the pool as the standard executor, which costs far more per call.
        self._workers = WorkerPool(config.max_workers, name="cnm-policy-rpc")
        earlier_servers = _channelz.server_ids()
        self._server = grpc.server(
            cast(futures.ThreadPoolExecutor, self._workers),
            options=[
                ("grpc.max_receive_message_length", config.limits.max_message_bytes),
                # Without this, Linux lets a second sidecar bind the same port and silently
                # take half the traffic, possibly with another policy version.
                ("grpc.so_reuseport", 1 if config.reuse_port else 0),
            ],
        )
        self.health = health.HealthServicer()
        handlers = rpc_handlers(servicer)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),)
        )
        # Registered methods skip the generic per-call lookup by name (as generated code does);
        # grpc-stubs does not know this grpcio >= 1.62 API yet.
        self._server.add_registered_method_handlers(SERVICE_NAME, handlers)  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        # Last: the calls no handler takes (unknown methods) are counted as handed over too.
        self._unknown_methods = _UnknownMethods()
        self._server.add_generic_rpc_handlers((self._unknown_methods,))
        new_servers = _channelz.server_ids() - earlier_servers
        # Ours, unless another server was created at the same moment (then the drain is off).
        self._channelz_id = new_servers.pop() if len(new_servers) == 1 else None
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.address: str | None = None

    def add_service(self, name: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
        """Serve another service on this listener (Envoy's ext_authz); before `start` only."""
        self._server.add_registered_method_handlers(name, handlers)  # type: ignore[attr-defined]

    def start(self) -> str:
        """Bind, start serving and report SERVING; returns the address actually bound."""
        self.address = self._bind(self._config.listen)
        self._server.start()
        # INVARIANT: a Sidecar is only built around an engine holding a valid snapshot, so
        # SERVING here is "a valid policy is loaded".
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        return self.address

    def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, refuse new calls, let in-flight ones finish within `grace` seconds.

        Every call the transport received before the stop is answered (within `grace`): grpc's
        own stop would drop those it has not yet handed to a worker, with CANCELLED.
        """
        self.health.enter_graceful_shutdown()
        grace = self._config.grace_seconds if grace is None else grace
        deadline = time.monotonic() + grace
        self._await_handover(deadline)
        remaining = max(0.0, deadline - time.monotonic())
        self._server.stop(remaining).wait(remaining + 5.0)
        # grpc reports a stop once it has cancelled what was still running, even while a
        # handler still runs (a log write stuck on a full pipe): the workers get one more
        # grace period, then are left behind (daemon threads never hold up the exit).
        self._workers.shutdown(timeout=grace)

    def _await_handover(self, deadline: float) -> None:
        """Wait (until `deadline`) for grpc to hand every call it has received to a worker.

        Calls still arriving meanwhile are served too; one arriving in the instant between the
        last count and grpc's stop can still be dropped (grpc offers no way to refuse new calls
        without dropping the queued ones). Without channelz counts this returns at once.
        """
        if self._channelz_id is None:
            return
        pause = threading.Event()
        while time.monotonic() < deadline:
            received = _channelz.calls_started(self._channelz_id)
            handed_over = self._workers.submitted + self._unknown_methods.count
            if received is None or received <= handed_over:
                return
            pause.wait(0.002)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped (True) or `timeout` passed (False)."""
        return self._server.wait_for_termination(timeout)

    def _bind(self, address: str) -> str:
        """Bind `address`: a unix socket, or every address its host resolves to, or fail."""
        if address.startswith(("unix:", "unix-abstract:")):
            refuse_live_unix_socket(address)
            self._add_port(address, address)
            return address
        host, _, port_text = address.rpartition(":")
        port = int(port_text)
        # grpc binds what it can of a name's addresses and only warns about the rest (another
        # process may hold them): each address is bound here, and all of them must be, except
        # those this host does not have (a name's IPv6 address with IPv6 off): nobody can
        # reach or hold the port there.
        bound, bare = 0, host.removeprefix("[").removesuffix("]")
        for ip in resolve(address, bare, port):
            target = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            # Under --processes the supervisor holds the port: grpc joins it with SO_REUSEPORT.
            if not self._config.reuse_port and not can_bind(address, ip, port, target):
                if is_ip(bare):
                    raise ServerConfigError(
                        f"cannot listen on `{address}`: `{ip}` is not an address of this host"
                    )
                continue
            port = self._add_port(address, target)
            bound += 1
        if not bound:
            raise ServerConfigError(
                f"cannot listen on `{address}`: the host has none of its addresses"
            )
        return f"{host}:{port}"

    def _add_port(self, address: str, target: str) -> int:
        tls = self._config.tls
        try:
            if tls is None:
                port = self._server.add_insecure_port(target)
            else:
                port = self._server.add_secure_port(target, tls.credentials())
        except RuntimeError as exc:
            raise ServerConfigError(
                f"cannot listen on `{address}`: `{target}` cannot be bound"
            ) from exc
        if port == 0 and not target.startswith(("unix:", "unix-abstract:")):
            raise ServerConfigError(f"cannot listen on `{address}`: `{target}` cannot be bound")
        return port

    def set_serving(self, serving: bool) -> None:
        """gRPC health SERVING or NOT_SERVING (ignored once the stop began: it stays down)."""
        status = health_pb2.HealthCheckResponse
        self._set_health(status.SERVING if serving else status.NOT_SERVING)

    def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in ("", SERVICE_NAME):
            self.health.set(service, status)


class _UnknownMethods(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """Serves no method: counts the calls that grpc answers UNIMPLEMENTED itself."""

    def __init__(self) -> None:
        self.count = 0

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        self.count += 1
        return None


def build_sidecar(
    engine: DecisionEngine,
    *,
    config: ServerConfig,
    decision_log: DecisionLog | None = None,
    reload_status: Callable[[], ReloadStatus] | None = None,
    cache_stats: Callable[[], CacheStatsView] | None = None,
    metrics: DecisionMetrics | None = None,
    freshness: Freshness | None = None,
    tracing: Tracing | None = None,
    servicer_type: Callable[..., PolicyServicer] = PolicyServicer,
) -> Sidecar:
    """Wire a servicer around `engine` and wrap it in a `Sidecar` (not started).

    `servicer_type` is `server.resolving.ResolvingServicer` when principals are resolved.
    """
    servicer = servicer_type(
        engine,
        limits=config.limits,
        decision_log=decision_log or DecisionLog(),
        reload_status=reload_status,
        cache_stats=cache_stats,
        identify_peers=config.tls is not None and config.tls.client_ca is not None,
        metrics=metrics,
        freshness=freshness,
        tracing=tracing,
    )
    return Sidecar(servicer, config)
