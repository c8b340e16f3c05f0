"""``python -m benchmarks.http``: server CPU per decision over HTTP/JSON, beside gRPC Check.

The sidecar runs in this process (gRPC and HTTP listeners, decision log to a null logger); a
client in a child process sends the same kind of request sequentially over one connection.
The server's CPU per decision is this process's CPU time over the calls (the client's is not
in it). Rows: cache hits (one request repeated) and misses (the cache off), for gRPC Check,
HTTP ``/v1/check`` and AuthZEN evaluation on uvicorn with httptools and with h11.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from benchmarks.timing import machine_description, render_table
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.http.api import HttpApi
from cnm_policy.server.runtime import RuntimeOptions, open_runtime

BUNDLE = Path(__file__).resolve().parents[1] / "policies" / "cnm"
PRINCIPAL = {
    "id": "u-17",
    "tenant": "acme/emea",
    "roles": ["customer-viewer"],
    "attributes": {"mfa": True},
}
RESOURCE = {"kind": "device", "id": "dev-9", "tenant": "acme/emea/paris"}
NATIVE = {"principal": PRINCIPAL, "action": "read", "resource": RESOURCE}
AUTHZEN = {
    "subject": {
        "type": "user",
        "id": "u-17",
        "properties": {"tenant": "acme/emea", "roles": ["customer-viewer"], "mfa": True},
    },
    "action": {"name": "read"},
    "resource": {"type": "device", "id": "dev-9", "properties": {"tenant": "acme/emea/paris"}},
}

_HTTP_CLIENT = """
import http.client, socket, sys
host, port, path, body, n = sys.argv[1:6]
c = http.client.HTTPConnection(host, int(port))
c.connect(); c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms ACK stalls
h = {"content-type": "application/json"}
print("ready", flush=True); sys.stdin.readline()
for _ in range(int(n)):
    c.request("POST", path, body, h); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
print("done", flush=True)
"""

_GRPC_CLIENT = """
import sys, grpc
from cnm_policy.v1 import policy_pb2 as pb
address, n = sys.argv[1], int(sys.argv[2])
p = pb.Principal(id="u-17", tenant="acme/emea", roles=["customer-viewer"])
p.attributes.update({"mfa": True})
r = pb.Resource(kind="device", id="dev-9", tenant="acme/emea/paris")
req = pb.CheckRequest(principal=p, action="read", resource=r)
check = grpc.insecure_channel(address).unary_unary(
    "/cnm_policy.v1.PolicyService/Check",
    request_serializer=pb.CheckRequest.SerializeToString,
    response_deserializer=pb.CheckResponse.FromString,
)
check(req)
print("ready", flush=True); sys.stdin.readline()
for _ in range(n):
    check(req)
print("done", flush=True)
"""


class _NullLogger:
    """Drops every event (the log's cost is the same on every door and measured elsewhere)."""

    def info(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return self.info


def _cpu_per_call_us(argv: list[str], calls: int) -> float:
    """Run a client; the server (this process) CPU per call while it runs, in microseconds."""
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    before = time.process_time()
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "done"
    spent = time.process_time() - before
    child.wait(30)
    return spent / calls * 1e6


@contextmanager
def _uvicorn(app: Any, http: str) -> Iterator[str]:
    """`app` on 127.0.0.1:<free port> with uvicorn's `http` parser, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http=http, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@contextmanager
def _granian(app: Any) -> Iterator[str]:
    """`app` on granian's embedded server (experimental upstream), in a thread."""
    from granian.constants import Interfaces  # noqa: PLC0415 - optional: only this row
    from granian.server.embed import Server  # noqa: PLC0415

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = Server(
        app,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGINL,
        websockets=False,
        log_enabled=False,
        runtime_threads=1,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(server.stop)
        thread.join(5)


def _rows(calls: int, rounds: int) -> list[list[object]]:
    rows: list[list[object]] = []
    for cached in (True, False):
        runtime = open_runtime(
            RuntimeOptions(
                policies=BUNDLE, cache_size=10_000 if cached else None, watch_interval=None
            ),
            ServerConfig(listen="127.0.0.1:0"),
        )
        address = runtime.start()
        assert runtime.doors is not None
        app = HttpApi(runtime.doors.decider, metrics=runtime.metrics)
        label = "hit" if cached else "miss"
        runs = {"gRPC Check": [sys.executable, "-c", _GRPC_CLIENT, address, str(calls)]}
        with contextlib.ExitStack() as servers:
            stacks = [("uvicorn+h11", servers.enter_context(_uvicorn(app, "h11")))]
            if importlib.util.find_spec("httptools") is not None:
                stacks.append(
                    ("uvicorn+httptools", servers.enter_context(_uvicorn(app, "httptools")))
                )
            if importlib.util.find_spec("granian") is not None:  # measured when installed
                stacks.append(("granian", servers.enter_context(_granian(app))))
            for stack, where in stacks:
                host, port = where.split(":")
                for name, path, body in (
                    ("/v1/check", "/v1/check", NATIVE),
                    ("AuthZEN", "/access/v1/evaluation", AUTHZEN),
                ):
                    runs[f"{name} ({stack})"] = [
                        sys.executable,
                        "-c",
                        _HTTP_CLIENT,
                        host,
                        port,
                        path,
                        json.dumps(body),
                        str(calls),
                    ]
            for name, argv in runs.items():
                samples = [_cpu_per_call_us(argv, calls) for _ in range(rounds)]
                rows.append(
                    [f"{name}, {label}", f"{statistics.median(samples):.1f}", f"{min(samples):.1f}"]
                )
        runtime.stop(grace=1.0)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--calls", type=int, default=500, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per row (median kept)")
    args = parser.parse_args(argv)
    structlog.configure(logger_factory=lambda *a: _NullLogger(), cache_logger_on_first_use=True)
    print(machine_description())
    print(
        render_table(
            ["server CPU per decision", "median us", "best us"], _rows(args.calls, args.rounds)
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
