"""Over-the-wire benchmarks: the sidecar against a bare gRPC echo server on the same machine.

Both servers run as separate processes with the same thread pool size; one client process
(this one, grpc.aio) keeps 1, 16 or 64 calls in flight for a fixed time. The echo server
answers every method with the request bytes through a generic handler - no protobuf, no
policy: the transport floor. The client sends pre-serialized requests and does not parse the
responses, so it costs the same for both servers and the difference is the sidecar's work.

Reported per cell: calls/s, median and p99 latency, the sidecar's share of the echo floor,
and the *server's* CPU time per call (or per batch item), read from ``/proc/<pid>/stat``,
which does not depend on how fast the client is. Finally the sidecar's resident memory with
the policy loaded and the decision cache filled to its size.

``python -m benchmarks.sidecar echo --port N`` runs the echo server (used internally).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct

from benchmarks.generate import GeneratedPolicy, Request, request_mix
from benchmarks.timing import percentile
from cnm_policy.model import AccessRequest
from cnm_policy.server import convert
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "CellResult",
    "SidecarReport",
    "SidecarSettings",
    "echo_main",
    "run_sidecar_benchmarks",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECK = "/cnm_policy.v1.PolicyService/Check"
CHECK_BATCH = "/cnm_policy.v1.PolicyService/CheckBatch"
POLICY_INFO = "/cnm_policy.v1.PolicyService/GetPolicyInfo"
WORKERS = 8  # the sidecar's default --workers; the echo server gets the same pool
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class SidecarSettings:
    """How long each cell runs, and the sizes of batches and of the cache to fill."""

    seconds: float = 3.0
    in_flight: tuple[int, ...] = (1, 16, 64)
    batch_items: int = 100
    cache_size: int = 100_000
    check_pool: int = 500


@dataclass(frozen=True, slots=True)
class CellResult:
    """One (server, rpc, calls in flight) cell."""

    server: str
    rpc: str
    in_flight: int
    calls: int
    per_second: float
    median_us: float
    p99_us: float
    server_cpu_us: float  # per call, or per item for CheckBatch


@dataclass(frozen=True, slots=True)
class SidecarReport:
    """Every cell, plus the sidecar's startup time, memory and cache statistics."""

    rules: int
    batch_items: int
    cells: tuple[CellResult, ...]
    startup_s: float
    rss_loaded_mb: float
    rss_full_mb: float
    cache_size: int
    cache_hits: int
    cache_misses: int
    cold_batch_item_cpu_us: float


# --- servers ------------------------------------------------------------------------------


def echo_main(port: int, workers: int = WORKERS) -> None:
    """Serve every method by returning the request bytes, until SIGTERM."""

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.unary_unary_rpc_method_handler(echo)  # no (de)serializers: raw bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers), options=[("grpc.so_reuseport", 0)]
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "cnm_policy.v1.PolicyService", {"Check": handler, "CheckBatch": handler}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(arguments: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *arguments],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_ready(process: subprocess.Popen[bytes], target: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"server exited with {process.returncode}: {error[-2000:]}")
            try:
                grpc.channel_ready_future(channel).result(timeout=1.0)
                return
            except grpc.FutureTimeoutError:
                continue
    raise RuntimeError(f"server at {target} not ready after {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (all its threads) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- payloads -----------------------------------------------------------------------------


def _struct(values: dict[str, Any]) -> Struct:
    message = Struct()
    message.update(values)
    return message


def check_payload(request: Request) -> bytes:
    """A serialized CheckRequest."""
    principal, action, resource, context = request
    message = convert.access_request_to_proto(AccessRequest(principal, action, resource, context))
    return message.SerializeToString()


def batch_payload(request: Request, count: int, salt: str = "") -> bytes:
    """A serialized CheckBatchRequest: a page of `count` devices of the principal's tenant."""
    principal, action, resource, context = request
    items = [
        pb.CheckBatchItem(
            action=action,
            resource=convert.resource_to_proto(
                type(resource)(
                    resource.kind,
                    f"{resource.id}-{salt}{index}",
                    resource.tenant,
                    resource.attributes,
                )
            ),
        )
        for index in range(count)
    ]
    message = pb.CheckBatchRequest(
        principal=convert.principal_to_proto(principal), items=items, context=_struct(context)
    )
    return message.SerializeToString()


# --- load ---------------------------------------------------------------------------------


async def _drive(
    target: str, method: str, payloads: Sequence[bytes], in_flight: int, seconds: float
) -> tuple[int, list[float], float]:
    """Keep `in_flight` calls going for `seconds`; (calls, latencies in us, elapsed s)."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            index = offset
            clock = time.perf_counter_ns
            while time.perf_counter() < stop_at:
                payload = payloads[index % len(payloads)]
                index += in_flight
                started = clock()
                await call(payload, timeout=30)
                latencies.append((clock() - started) / 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(in_flight)))
        return len(latencies), latencies, time.perf_counter() - started


def _cell(
    server: str,
    pid: int,
    target: str,
    rpc: str,
    payloads: Sequence[bytes],
    in_flight: int,
    seconds: float,
    items_per_call: int = 1,
) -> CellResult:
    method = CHECK if rpc == "Check" else CHECK_BATCH
    asyncio.run(_drive(target, method, payloads, in_flight, min(0.5, seconds)))  # warm up
    cpu_before = _cpu_seconds(pid)
    calls, latencies, elapsed = asyncio.run(_drive(target, method, payloads, in_flight, seconds))
    cpu = _cpu_seconds(pid) - cpu_before
    latencies.sort()
    return CellResult(
        server=server,
        rpc=rpc,
        in_flight=in_flight,
        calls=calls,
        per_second=calls / elapsed,
        median_us=percentile(latencies, 0.5),
        p99_us=percentile(latencies, 0.99),
        server_cpu_us=cpu / (calls * items_per_call) * 1e6,
    )


def _call_once(target: str, method: str, payload: bytes) -> bytes:
    with grpc.insecure_channel(target) as channel:
        response: bytes = channel.unary_unary(
            method, request_serializer=None, response_deserializer=None
        )(payload, timeout=120)
        return response


# --- the benchmark ------------------------------------------------------------------------


def run_sidecar_benchmarks(policy: GeneratedPolicy, settings: SidecarSettings) -> SidecarReport:
    """Start the echo server and the sidecar on `policy`; measure every cell; stop both."""
    requests = request_mix(policy, max(settings.check_pool, 50), seed=23)
    checks = [check_payload(r) for r in requests[: settings.check_pool]]
    batches = [batch_payload(r, settings.batch_items) for r in requests[:20]]
    echo_port, sidecar_port = _free_port(), _free_port()
    echo = _start(["-m", "benchmarks.sidecar", "echo", "--port", str(echo_port)])
    started = time.perf_counter()
    sidecar = _start(
        [
            "-m",
            "cnm_policy",
            "serve",
            "--policies",
            str(policy.path),
            "--listen",
            f"127.0.0.1:{sidecar_port}",
            "--no-bundle-tests",
            "--watch-interval",
            "0",
            "--cache-size",
            str(settings.cache_size),
            "--workers",
            str(WORKERS),
            "--log-file",
            os.devnull,
            "--log-format",
            "json",
        ]
    )
    try:
        echo_target, sidecar_target = f"127.0.0.1:{echo_port}", f"127.0.0.1:{sidecar_port}"
        _wait_ready(echo, echo_target, 60)
        _wait_ready(sidecar, sidecar_target, 900)
        startup_s = time.perf_counter() - started
        rss_loaded = _rss_mb(sidecar.pid)
        for payload in checks:  # warm the cache: the Check cells measure hits
            _call_once(sidecar_target, CHECK, payload)
        for payload in batches:
            _call_once(sidecar_target, CHECK_BATCH, payload)
        cells = []
        for rpc, payloads, items in (
            ("Check", checks, 1),
            ("CheckBatch", batches, settings.batch_items),
        ):
            for in_flight in settings.in_flight:
                for name, process, target in (
                    ("echo", echo, echo_target),
                    ("sidecar", sidecar, sidecar_target),
                ):
                    cells.append(
                        _cell(
                            name,
                            process.pid,
                            target,
                            rpc,
                            payloads,
                            in_flight,
                            settings.seconds,
                            items,
                        )
                    )
        cold = _cold_batches(sidecar, sidecar_target, requests, settings)
        _fill_cache(sidecar_target, requests, settings)
        rss_full = _rss_mb(sidecar.pid)
        info = pb.GetPolicyInfoResponse.FromString(
            _call_once(sidecar_target, POLICY_INFO, pb.GetPolicyInfoRequest().SerializeToString())
        )
    finally:
        _stop(sidecar)
        _stop(echo)
    return SidecarReport(
        rules=policy.rule_count,
        batch_items=settings.batch_items,
        cells=tuple(cells),
        startup_s=startup_s,
        rss_loaded_mb=rss_loaded,
        rss_full_mb=rss_full,
        cache_size=info.cache.size,
        cache_hits=info.cache.hits,
        cache_misses=info.cache.misses,
        cold_batch_item_cpu_us=cold,
    )


def _cold_batches(
    process: subprocess.Popen[bytes],
    target: str,
    requests: Sequence[Request],
    settings: SidecarSettings,
) -> float:
    """Server CPU per item for batches whose items were never seen (every item a miss)."""
    payloads = [
        batch_payload(requests[i % len(requests)], settings.batch_items, salt=f"cold{i}-")
        for i in range(100)  # 10,000 misses: enough CPU ticks (10 ms each) for 1% resolution
    ]
    cpu_before = _cpu_seconds(process.pid)
    asyncio.run(_drive_once(target, CHECK_BATCH, payloads, 4))
    cpu = _cpu_seconds(process.pid) - cpu_before
    return cpu / (len(payloads) * settings.batch_items) * 1e6


async def _drive_once(target: str, method: str, payloads: Sequence[bytes], in_flight: int) -> None:
    """Send each payload exactly once, `in_flight` at a time."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        queue = list(payloads)

        async def worker() -> None:
            while queue:
                await call(queue.pop(), timeout=120)

        await asyncio.gather(*(worker() for _ in range(in_flight)))


def _fill_cache(target: str, requests: Sequence[Request], settings: SidecarSettings) -> None:
    """Unique batches of 1,000 items until the cache holds `cache_size` entries."""
    per_batch = 1000
    payloads = [
        batch_payload(requests[i % len(requests)], per_batch, salt=f"fill{i}-")
        for i in range(-(-settings.cache_size // per_batch))
    ]
    asyncio.run(_drive_once(target, CHECK_BATCH, payloads, 4))


def main(argv: Sequence[str] | None = None) -> int:
    """``echo --port N``: run the echo server (the benchmark starts it as a subprocess)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sidecar")
    commands = parser.add_subparsers(dest="command", required=True)
    echo = commands.add_parser("echo", help="run the bare gRPC echo server")
    echo.add_argument("--port", type=int, required=True)
    echo.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args(argv)
    echo_main(args.port, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
