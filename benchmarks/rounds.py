"""Alternating rounds against two gRPC servers, and the arithmetic that summarizes them.

One cell on a shared two-core machine moves by tens of percent between runs, so every (stream,
rpc, calls in flight) pair is measured in several rounds; in each round the echo and the
sidecar cell run back to back, in alternating order, and their ratios (throughput, server CPU
per call) are that round's. The report gives the median of those ratios and their spread.

Each server takes its payloads from its own `Cursor`, which goes round its workload's payloads
in order across cells and rounds: a miss stream whose pool is larger than any cache or memo of
the server's (FIFO or LRU) then never repeats a request the server still remembers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from benchmarks.servers import cpu_seconds
from benchmarks.summary import CellResult, Sample, summarize_pair
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["Cursor", "Server", "Timing", "Workload", "keep_busy", "measure_cells", "round_order"]

SERVICE = "/cnm_policy.v1.PolicyService/"
POLICY_INFO = SERVICE + "GetPolicyInfo"


@dataclass(frozen=True, slots=True)
class Server:
    """A running server: its report name, process, address, and whether it reports its cache."""

    name: str
    pid: int
    target: str
    has_cache: bool = False


@dataclass(frozen=True, slots=True)
class Timing:
    """Each cell's warm-up and timed seconds, the rounds, and the calls in flight to try."""

    warmup_s: float
    seconds: float
    rounds: int
    in_flight: tuple[int, ...] = (1, 16, 64)


@dataclass(frozen=True, slots=True)
class Workload:
    """One rpc, the pre-serialized requests to go round, and the stream's name."""

    rpc: str
    payloads: tuple[bytes, ...]
    items_per_call: int = 1
    stream: str = "hits"

    @property
    def method(self) -> str:
        return SERVICE + self.rpc


@dataclass(slots=True)
class Cursor:
    """The next payload to send: one per (workload, server), kept across cells and rounds."""

    payloads: Sequence[bytes]
    position: int = 0

    def take(self) -> bytes:
        """The next payload, going round in order."""
        payload = self.payloads[self.position % len(self.payloads)]
        self.position += 1
        return payload


def round_order(round_index: int, echo: Server, sidecar: Server) -> tuple[Server, Server]:
    """Echo first in even rounds, sidecar first in odd ones (after-effects hit both sides)."""
    return (echo, sidecar) if round_index % 2 == 0 else (sidecar, echo)


def measure_cells(
    echo: Server,
    sidecar: Server,
    workloads: Sequence[Workload],
    timing: Timing,
    before_round: Callable[[], None] | None = None,
) -> tuple[CellResult, ...]:
    """Every (workload, in flight) pair once per round, then each pair's summary.

    Rounds are the outer loop, so a disturbance of a few seconds falls into one round of a
    few pairs, where the median discards it. `before_round` runs first in every round (the
    sidecar benchmark re-warms its hits there).
    """
    pairs = [(w, n) for w in range(len(workloads)) for n in timing.in_flight]
    cursors = {
        (w, s.name): Cursor(workloads[w].payloads)
        for w in range(len(workloads))
        for s in (echo, sidecar)
    }
    samples: dict[tuple[int, str], list[Sample]] = {
        (index, server.name): [] for index in range(len(pairs)) for server in (echo, sidecar)
    }
    for round_index in range(timing.rounds):
        if before_round is not None:
            before_round()
        for index, (w, n) in enumerate(pairs):
            first, second = round_order(round_index, echo, sidecar)
            for server in (first, second):
                cell = _cell(
                    server, workloads[w].method, cursors[w, server.name], n, timing, server is first
                )
                samples[index, server.name].append(asyncio.run(cell))
    cells: list[CellResult] = []
    for index, (w, n) in enumerate(pairs):
        workload = workloads[w]
        cells.extend(
            summarize_pair(
                workload.rpc,
                n,
                workload.items_per_call,
                samples[index, echo.name],
                samples[index, sidecar.name],
                workload.stream,
            )
        )
    return tuple(cells)


async def _cell(
    server: Server,
    method: str,
    cursor: Cursor,
    in_flight: int,
    timing: Timing,
    measured_first: bool,
) -> Sample:
    """Warm up on the very channel that is then timed; CPU brackets the timed calls only."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        counters = await _cache_counters(channel) if server.has_cache else None
        await keep_busy(call, cursor, in_flight, timing.warmup_s, [])
        latencies: list[float] = []
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        await keep_busy(call, cursor, in_flight, timing.seconds, latencies)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu_before
        after = await _cache_counters(channel) if counters is not None else None
    latencies.sort()
    return Sample(
        calls=len(latencies),
        elapsed_s=elapsed,
        server_cpu_s=cpu,
        latencies_us=tuple(latencies),
        measured_first=measured_first,
        cache_hits=None if counters is None or after is None else after[0] - counters[0],
        cache_misses=None if counters is None or after is None else after[1] - counters[1],
    )


async def _cache_counters(channel: grpc.aio.Channel) -> tuple[int, int]:
    """The sidecar's decision-cache hits and misses so far (outside the CPU bracket)."""
    info = channel.unary_unary(
        POLICY_INFO,
        request_serializer=pb.GetPolicyInfoRequest.SerializeToString,
        response_deserializer=pb.GetPolicyInfoResponse.FromString,
    )
    response: pb.GetPolicyInfoResponse = await info(pb.GetPolicyInfoRequest(), timeout=30)
    return response.cache.hits, response.cache.misses


async def keep_busy(
    call: Callable[..., Awaitable[Any]],
    cursor: Cursor,
    in_flight: int,
    seconds: float,
    latencies: list[float],
) -> None:
    """Keep `in_flight` calls going for `seconds`; latencies (us) go to the caller's list."""
    stop_at = time.perf_counter() + seconds
    clock = time.perf_counter_ns

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            payload = cursor.take()
            started = clock()
            await call(payload, timeout=60)
            latencies.append((clock() - started) / 1000)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
