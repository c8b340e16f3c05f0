"""A sidecar with its front doors open (HTTP/JSON, AuthZEN, ext_authz) and a JSON client for it.

Built with `open_runtime`, as `serve` builds it; the HTTP client is the standard library's, so
every request crosses a real socket and uvicorn's parser.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from cnm_policy.engine import Clock
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.doors import FrontDoorOptions
from cnm_policy.server.http import HttpListenerConfig
from cnm_policy.server.runtime import Runtime, RuntimeOptions, open_runtime

REPO = Path(__file__).resolve().parents[2]
TODO = REPO / "examples" / "authzen-todo"


@dataclass
class Doors:
    """The running sidecar, its gRPC channel and its HTTP address."""

    runtime: Runtime
    grpc_address: str
    http_address: str
    channel: grpc.Channel

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One HTTP request: status, headers (lowercase names) and the JSON body."""
        host, port = self.http_address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            sent = {"content-type": "application/json", **(headers or {})}
            data = None if body is None else json.dumps(body)
            connection.request(method, path, data, sent)
            response = connection.getresponse()
            payload = response.read()
            names = {k.lower(): v for k, v in response.getheaders()}
            return response.status, names, json.loads(payload) if payload else None
        finally:
            connection.close()

    def post(self, path: str, body: Any, **headers: str) -> tuple[int, Any]:
        """POST JSON; the status and the JSON answer."""
        status, _, payload = self.request("POST", path, body, headers)
        return status, payload


@contextmanager
def serve_doors(
    bundle: Path,
    doors: FrontDoorOptions | None = None,
    *,
    clock: Clock = time.time,
    cache_size: int | None = 1000,
) -> Iterator[Doors]:
    """Serve `bundle` on gRPC and HTTP (both on ephemeral loopback ports)."""
    options = doors or FrontDoorOptions()
    if options.http is None:
        options = replace(options, http=HttpListenerConfig("127.0.0.1:0", grace_seconds=1.0))
    runtime = open_runtime(
        RuntimeOptions(
            policies=bundle, cache_size=cache_size, watch_interval=None, clock=clock, doors=options
        ),
        ServerConfig(listen="127.0.0.1:0", grace_seconds=2.0),
    )
    address = runtime.start()
    assert runtime.doors is not None and runtime.doors.http_address is not None
    channel = grpc.insecure_channel(address)
    try:
        yield Doors(runtime, address, runtime.doors.http_address, channel)
    finally:
        channel.close()
        runtime.stop(grace=2.0)
