"""End-to-end harness: start a real sidecar (ephemeral port or unix socket), talk to it.

The sidecar is built with `open_runtime`, the same wiring `cnm-policy serve` uses, from a copy
of the small fixture bundle in `bundles/` (so tests can rewrite it to drive reloads). Overlays
in `bundles/*-overlay` are copied over the base to make version 2 or a broken version.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cnm_policy.engine import Clock
from cnm_policy.server.app import ServerConfig, TlsConfig
from cnm_policy.server.limits import Limits
from cnm_policy.server.runtime import Runtime, RuntimeOptions, open_runtime
from cnm_policy.v1 import policy_pb2 as pb
from cnm_policy.v1 import policy_pb2_grpc as pb_grpc

BUNDLES = Path(__file__).resolve().parent / "bundles"


def copy_bundle(destination: Path, *overlays: str) -> Path:
    """Copy the v1 fixture bundle to `destination`, then each named overlay over it."""
    shutil.copytree(BUNDLES / "v1", destination, dirs_exist_ok=True)
    for overlay in overlays:
        shutil.copytree(BUNDLES / overlay, destination, dirs_exist_ok=True)
    return destination


def policy_stub(channel: grpc.Channel) -> Any:
    """The generated PolicyService stub (grpc_tools emits no type stubs for it)."""
    return pb_grpc.PolicyServiceStub(channel)  # type: ignore[no-untyped-call]


def health_status(channel: grpc.Channel, service: str = "") -> int:
    """One grpc.health.v1 Check, as a stock probe would do it."""
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


@dataclass
class Served:
    """A running sidecar and a client channel to it."""

    runtime: Runtime
    address: str
    channel: grpc.Channel
    stub: Any
    bundle: Path


@contextmanager
def serve(
    bundle: Path,
    *,
    listen: str = "127.0.0.1:0",
    limits: Limits | None = None,
    cache_size: int | None = 1000,
    tls: TlsConfig | None = None,
    channel: grpc.Channel | None = None,
    clock: Clock = time.time,
) -> Iterator[Served]:
    """Start a sidecar on `bundle` (no polling thread: tests drive reloads), stop it after."""
    runtime = open_runtime(
        RuntimeOptions(policies=bundle, cache_size=cache_size, watch_interval=None, clock=clock),
        ServerConfig(listen=listen, limits=limits or Limits(), tls=tls, grace_seconds=2.0),
    )
    address = runtime.start()
    client = channel or grpc.insecure_channel(address)
    try:
        yield Served(runtime, address, client, policy_stub(client), bundle)
    finally:
        client.close()
        runtime.stop(grace=2.0)


def principal(
    roles: tuple[str, ...] = ("customer-viewer",), tenant: str = "acme", **attributes: Any
) -> pb.Principal:
    """A wire principal (id derived from the first role)."""
    message = pb.Principal(id=f"user-{roles[0]}", tenant=tenant, roles=list(roles))
    message.attributes.update(attributes)
    return message


def device(tenant: str = "acme/emea", device_id: str = "dev-1") -> pb.Resource:
    """A wire device resource."""
    return pb.Resource(kind="device", id=device_id, tenant=tenant)
