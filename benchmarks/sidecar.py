"""Over-the-wire benchmarks: the sidecar against a bare gRPC echo server on the same machine.

Both servers run as separate processes with the same thread pool size; one client process
(this one, grpc.aio) keeps 1, 16 or 64 calls in flight for a fixed time. The echo server
answers every method with the request bytes through a generic handler - no protobuf, no
policy: the transport floor. The client sends pre-serialized requests and does not parse the
responses, so it costs the same for both servers and the difference is the sidecar's work.

One such cell on a shared two-core machine moves by tens of percent from one run to the next
(a neighbour's burst, the client's own scheduling), so a single echo cell against a single
sidecar cell says little. Every (rpc, calls in flight) pair is therefore measured in several
rounds; in each round the echo and the sidecar cell run back to back, in alternating order,
and their throughput ratio is that round's "share of echo". The report gives the median of
those ratios and their spread.

Reported per cell: calls/s, median and p99 latency, the sidecar's share of the echo floor,
and the *server's* CPU time per call (or per batch item), read from ``/proc/<pid>/stat``,
which does not depend on how fast the client is. Finally the sidecar's resident memory with
the policy loaded and the decision cache filled to its size.

``python -m benchmarks.sidecar echo --port N [--pool executor|sidecar]`` runs the echo server
(used internally). Its default pool is the standard ThreadPoolExecutor, as in any bare grpc
server; ``--echo-pool sidecar`` on ``python -m benchmarks`` gives it the sidecar's own worker
pool instead, a like-for-like floor (see `cnm_policy.server.workers`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
from google.protobuf.struct_pb2 import Struct

from benchmarks.generate import GeneratedPolicy, Request, request_mix
from benchmarks.timing import percentile
from cnm_policy.model import AccessRequest
from cnm_policy.server import convert
from cnm_policy.server.app import DEFAULT_WORKERS
from cnm_policy.server.workers import WorkerPool
from cnm_policy.v1 import policy_pb2 as pb

__all__ = [
    "ECHO_POOLS",
    "CellResult",
    "RoundResult",
    "Sample",
    "Server",
    "SidecarReport",
    "SidecarSettings",
    "Workload",
    "echo_main",
    "echo_server",
    "measure_cells",
    "round_order",
    "run_sidecar_benchmarks",
    "summarize_pair",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECK = "/cnm_policy.v1.PolicyService/Check"
CHECK_BATCH = "/cnm_policy.v1.PolicyService/CheckBatch"
POLICY_INFO = "/cnm_policy.v1.PolicyService/GetPolicyInfo"
WORKERS = DEFAULT_WORKERS  # the sidecar's default --workers; the echo server gets the same pool
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
ECHO_POOLS = ("executor", "sidecar")
CACHE_TTL_S = 3600  # the rounds outlast the default 60 s TTL; the cells measure cache hits


@dataclass(frozen=True, slots=True)
class SidecarSettings:
    """How long and how often each cell runs, and the sizes of batches and of the cache.

    Seven rounds of 1.5 s rather than one cell of 3 s: the median of seven back-to-back ratios
    survives disturbed rounds, one long cell does not. One cell's ratios spread by 20-30 points
    on a shared VM, and with five rounds a median near the 90% target landed on either side of
    it between runs. Cells no shorter than 1.5 s because a CheckBatch with 64 in flight took
    ~0.6 s per call at 100,000 rules: a shorter cell would time one call per worker. The price
    is wall time: 84 cells of ~1.8 s (about 2.5 minutes) instead of 12 of 3.5 s.
    """

    seconds: float = 1.5
    warmup_s: float = 0.3
    rounds: int = 7
    in_flight: tuple[int, ...] = (1, 16, 64)
    batch_items: int = 100
    cache_size: int = 100_000
    check_pool: int = 500
    # The echo server's thread pool: "executor" (the standard ThreadPoolExecutor, what a bare
    # grpc server uses: the floor) or "sidecar" (the sidecar's own `WorkerPool`, for a
    # like-for-like floor that isolates the sidecar's own work per call).
    echo_pool: str = "executor"

    @classmethod
    def quick(cls) -> SidecarSettings:
        """Three rounds of short cells and a smaller cache: about half a minute of load."""
        return cls(seconds=0.7, warmup_s=0.2, rounds=3, cache_size=10_000)


@dataclass(frozen=True, slots=True)
class Server:
    """A running server: the name it is reported under, its process and its address."""

    name: str
    pid: int
    target: str


@dataclass(frozen=True, slots=True)
class Workload:
    """One rpc with the pre-serialized requests to cycle through."""

    rpc: str
    payloads: tuple[bytes, ...]
    items_per_call: int = 1

    @property
    def method(self) -> str:
        return CHECK if self.rpc == "Check" else CHECK_BATCH


@dataclass(frozen=True, slots=True)
class Sample:
    """One server's cell in one round, every latency included (pooled across rounds)."""

    calls: int
    elapsed_s: float
    server_cpu_s: float
    latencies_us: tuple[float, ...]  # sorted, as percentile() expects
    measured_first: bool  # ran before the other server's cell in its round

    @property
    def per_second(self) -> float:
        return self.calls / self.elapsed_s


@dataclass(frozen=True, slots=True)
class RoundResult:
    """One server's cell in one round, as the JSON output keeps it (latencies summarized)."""

    calls: int
    elapsed_s: float
    per_second: float
    median_us: float
    p99_us: float
    server_cpu_s: float
    measured_first: bool


@dataclass(frozen=True, slots=True)
class CellResult:
    """One (server, rpc, calls in flight) cell, summarized over its rounds.

    `per_second` is the median round's; latencies are pooled over all rounds; server CPU is
    the total over all rounds divided by all calls (items for CheckBatch). `of_echo` is the
    median of the per-round sidecar/echo ratios in `of_echo_rounds` (None and empty for the
    echo server itself), so it need not equal the ratio of the two `per_second` values.
    """

    server: str
    rpc: str
    in_flight: int
    calls: int
    per_second: float
    median_us: float
    p99_us: float
    server_cpu_us: float  # per call, or per item for CheckBatch
    of_echo: float | None
    of_echo_rounds: tuple[float, ...]
    rounds: tuple[RoundResult, ...]


@dataclass(frozen=True, slots=True)
class SidecarReport:
    """Every cell, plus the sidecar's startup time, memory and cache statistics."""

    rules: int
    settings: SidecarSettings
    cells: tuple[CellResult, ...]
    startup_s: float
    rss_loaded_mb: float
    rss_full_mb: float
    cache_size: int
    cache_hits: int
    cache_misses: int
    cold_batch_item_cpu_us: float


# --- servers ------------------------------------------------------------------------------


def echo_server(port: int, workers: int = WORKERS, pool: str = "executor") -> grpc.Server:
    """A started server answering every method with the request bytes: the transport floor.

    `pool` is "executor" (a standard ThreadPoolExecutor) or "sidecar" (the sidecar's pool).
    """

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.unary_unary_rpc_method_handler(echo)  # no (de)serializers: raw bytes
    server = grpc.server(_echo_pool(pool, workers), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "cnm_policy.v1.PolicyService", {"Check": handler, "CheckBatch": handler}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def _echo_pool(pool: str, workers: int) -> futures.ThreadPoolExecutor:
    if pool == "executor":
        return futures.ThreadPoolExecutor(max_workers=workers)
    if pool == "sidecar":
        return cast(futures.ThreadPoolExecutor, WorkerPool(workers, name="echo"))
    raise ValueError(f"unknown echo pool `{pool}`: executor or sidecar")


def echo_main(port: int, workers: int = WORKERS, pool: str = "executor") -> None:
    """Serve the echo server until SIGTERM."""
    server = echo_server(port, workers, pool)
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


# --- summary ------------------------------------------------------------------------------


def summarize_pair(
    rpc: str,
    in_flight: int,
    items_per_call: int,
    echo: Sequence[Sample],
    sidecar: Sequence[Sample],
) -> tuple[CellResult, CellResult]:
    """The echo and sidecar cells of one (rpc, in flight) pair; `echo[i]` ran next to `sidecar[i]`.

    Each round's ratio compares two cells measured back to back, so slow drift in the
    machine's load cancels out of it; the median of the ratios then ignores a round that a
    short burst hit on one side only. A ratio of the two medians would not: its numerator and
    denominator may come from different rounds.
    """
    ratios = tuple(
        side.per_second / floor.per_second for floor, side in zip(echo, sidecar, strict=True)
    )
    return (
        _summarize("echo", rpc, in_flight, items_per_call, echo, ()),
        _summarize("sidecar", rpc, in_flight, items_per_call, sidecar, ratios),
    )


def _summarize(
    server: str,
    rpc: str,
    in_flight: int,
    items_per_call: int,
    samples: Sequence[Sample],
    ratios: tuple[float, ...],
) -> CellResult:
    if not samples:
        raise ValueError(f"no rounds measured for {server} {rpc} x{in_flight}")
    calls = sum(sample.calls for sample in samples)
    pooled = sorted(latency for sample in samples for latency in sample.latencies_us)
    cpu_s = sum(sample.server_cpu_s for sample in samples)
    return CellResult(
        server=server,
        rpc=rpc,
        in_flight=in_flight,
        calls=calls,
        per_second=statistics.median(sample.per_second for sample in samples),
        median_us=percentile(pooled, 0.5),
        p99_us=percentile(pooled, 0.99),
        server_cpu_us=cpu_s / (calls * items_per_call) * 1e6,
        of_echo=statistics.median(ratios) if ratios else None,
        of_echo_rounds=ratios,
        rounds=tuple(_round_result(sample) for sample in samples),
    )


def _round_result(sample: Sample) -> RoundResult:
    return RoundResult(
        calls=sample.calls,
        elapsed_s=sample.elapsed_s,
        per_second=sample.per_second,
        median_us=percentile(sample.latencies_us, 0.5),
        p99_us=percentile(sample.latencies_us, 0.99),
        server_cpu_s=sample.server_cpu_s,
        measured_first=sample.measured_first,
    )


# --- load ---------------------------------------------------------------------------------


def round_order(round_index: int, echo: Server, sidecar: Server) -> tuple[Server, Server]:
    """Echo first in even rounds, sidecar first in odd ones.

    Whichever cell runs second inherits the first one's after-effects (a busier page cache,
    a CPU frequency step, a neighbour waking up); alternating spreads that over both sides.
    """
    return (echo, sidecar) if round_index % 2 == 0 else (sidecar, echo)


def measure_cells(
    echo: Server,
    sidecar: Server,
    workloads: Sequence[Workload],
    settings: SidecarSettings,
) -> tuple[CellResult, ...]:
    """Every (rpc, in flight) pair once per round, then the summary of each pair's rounds.

    Rounds are the outer loop: a disturbance lasting a few seconds then falls into one round
    of a few pairs, where the median discards it, instead of into every round of one pair.
    """
    pairs = [(workload, in_flight) for workload in workloads for in_flight in settings.in_flight]
    samples: dict[tuple[int, str], list[Sample]] = {
        (index, server.name): [] for index in range(len(pairs)) for server in (echo, sidecar)
    }
    for round_index in range(settings.rounds):
        for index, (workload, in_flight) in enumerate(pairs):
            first, second = round_order(round_index, echo, sidecar)
            for server in (first, second):
                sample = _measure(server, workload, in_flight, settings, server is first)
                samples[index, server.name].append(sample)
    cells: list[CellResult] = []
    for index, (workload, in_flight) in enumerate(pairs):
        cells.extend(
            summarize_pair(
                workload.rpc,
                in_flight,
                workload.items_per_call,
                samples[index, echo.name],
                samples[index, sidecar.name],
            )
        )
    return tuple(cells)


def _measure(
    server: Server,
    workload: Workload,
    in_flight: int,
    settings: SidecarSettings,
    measured_first: bool,
) -> Sample:
    return asyncio.run(_warm_then_measure(server, workload, in_flight, settings, measured_first))


async def _warm_then_measure(
    server: Server,
    workload: Workload,
    in_flight: int,
    settings: SidecarSettings,
    measured_first: bool,
) -> Sample:
    """Warm up on the very channel that is then timed.

    The connection is open and the server's threads busy before the clock starts, and the
    CPU reading brackets the timed calls only.
    """
    async with grpc.aio.insecure_channel(server.target) as channel:
        call = channel.unary_unary(
            workload.method, request_serializer=None, response_deserializer=None
        )
        await _keep_busy(call, workload.payloads, in_flight, settings.warmup_s, [])
        latencies: list[float] = []
        cpu_before = _cpu_seconds(server.pid)
        started = time.perf_counter()
        await _keep_busy(call, workload.payloads, in_flight, settings.seconds, latencies)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(server.pid) - cpu_before
    latencies.sort()
    return Sample(
        calls=len(latencies),
        elapsed_s=elapsed,
        server_cpu_s=cpu,
        latencies_us=tuple(latencies),
        measured_first=measured_first,
    )


async def _keep_busy(
    call: Callable[..., Awaitable[Any]],
    payloads: Sequence[bytes],
    in_flight: int,
    seconds: float,
    latencies: list[float],
) -> None:
    """Keep `in_flight` calls going for `seconds`; latencies (us) go to the caller's list.

    The caller owns the list so that the warm-up can pass one it then drops.
    """
    stop_at = time.perf_counter() + seconds
    clock = time.perf_counter_ns

    async def worker(offset: int) -> None:
        index = offset
        while time.perf_counter() < stop_at:
            payload = payloads[index % len(payloads)]
            index += in_flight
            started = clock()
            await call(payload, timeout=30)
            latencies.append((clock() - started) / 1000)

    await asyncio.gather(*(worker(i) for i in range(in_flight)))


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
    checks = tuple(check_payload(r) for r in requests[: settings.check_pool])
    batches = tuple(batch_payload(r, settings.batch_items) for r in requests[:20])
    echo_port, sidecar_port = _free_port(), _free_port()
    echo = _start(
        ["-m", "benchmarks.sidecar", "echo", "--port", str(echo_port), "--pool", settings.echo_pool]
    )
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
            "--cache-ttl",
            str(CACHE_TTL_S),
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
        cells = measure_cells(
            Server("echo", echo.pid, echo_target),
            Server("sidecar", sidecar.pid, sidecar_target),
            (
                Workload("Check", checks),
                Workload("CheckBatch", batches, settings.batch_items),
            ),
            settings,
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
        settings=settings,
        cells=cells,
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
    echo.add_argument("--pool", choices=ECHO_POOLS, default="executor")
    args = parser.parse_args(argv)
    echo_main(args.port, args.workers, args.pool)
    return 0


if __name__ == "__main__":
    sys.exit(main())
