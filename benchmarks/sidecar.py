"""Over-the-wire benchmarks: the sidecar against a bare gRPC echo server on the same machine.

Both servers run as separate processes with 2 workers; one client process (this one,
grpc.aio) keeps 1, 16 or 64 calls in flight for a fixed time (see `rounds`). Two streams:

- **hits**: a few hundred `Check` requests and 20 `CheckBatch` pages, gone round again and
  again, re-sent once at the start of every round so that each is in the decision cache and
  the decode memo (the miss cells in between push them out);
- **misses**: pools of distinct requests (`payloads`) larger than the sidecar's cache and
  memos, gone round in order, so every call is decoded, evaluated, logged and stored.

The sidecar's cache counters, read before and after each of its cells, show the hit share of
every cell: 100% for the hit stream, 0% for the miss stream, or the cell is wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from benchmarks.generate import GeneratedPolicy
from benchmarks.mix import request_mix
from benchmarks.payloads import batch_payload, check_payload, miss_batches, miss_checks, pool_size
from benchmarks.rounds import Server, Timing, Workload, measure_cells
from benchmarks.servers import free_port, rss_mb, start_echo, start_sidecar, stop, wait_ready
from benchmarks.summary import CellResult
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["SidecarReport", "SidecarSettings", "run_sidecar_benchmarks"]

POLICY_INFO = "/cnm_policy.v1.PolicyService/GetPolicyInfo"
# The largest request memo the sidecar keeps today (its decode memo: 20,000 entries); the miss
# pools exceed it and the decision cache alike.
MEMO_BOUND = 20_000


@dataclass(frozen=True, slots=True)
class SidecarSettings:
    """How long and how often each cell runs, and the sizes of batches, pools and the cache.

    Seven rounds of 1.5 s: the median of seven back-to-back ratios survives disturbed rounds,
    one long cell does not. Cells no shorter than 1.5 s because a CheckBatch with 64 in flight
    takes ~0.6 s per call at 100,000 rules: a shorter cell would time one call per worker.
    """

    seconds: float = 1.5
    warmup_s: float = 0.3
    rounds: int = 7
    in_flight: tuple[int, ...] = (1, 16, 64)
    batch_items: int = 100
    cache_size: int = 100_000
    check_pool: int = 500
    memo_bound: int = MEMO_BOUND

    @classmethod
    def quick(cls) -> SidecarSettings:
        """Three rounds of short cells and a smaller cache: about a minute of load."""
        return cls(seconds=0.5, warmup_s=0.15, rounds=3, cache_size=10_000)

    @property
    def timing(self) -> Timing:
        """The cells' timing, for `measure_cells`."""
        return Timing(self.warmup_s, self.seconds, self.rounds, self.in_flight)

    @property
    def miss_pool(self) -> int:
        """Distinct requests (batch items) in each miss pool."""
        return pool_size(self.cache_size, self.memo_bound)


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
    payloads_s: float  # building the miss pools (not timed in any cell)


def run_sidecar_benchmarks(policy: GeneratedPolicy, settings: SidecarSettings) -> SidecarReport:
    """Start the echo server and the sidecar on `policy`; measure every cell; stop both."""
    requests = request_mix(policy, max(settings.check_pool, 50), seed=23)
    checks = tuple(check_payload(r) for r in requests[: settings.check_pool])
    batches = tuple(batch_payload(r, settings.batch_items) for r in requests[:20])
    started = time.perf_counter()
    workloads = (
        Workload("Check", checks),
        Workload("CheckBatch", batches, settings.batch_items),
        Workload("Check", miss_checks(policy, settings.miss_pool), stream="misses"),
        Workload(
            "CheckBatch",
            miss_batches(policy, settings.miss_pool, settings.batch_items),
            settings.batch_items,
            stream="misses",
        ),
    )
    payloads_s = time.perf_counter() - started
    echo_port, sidecar_port = free_port(), free_port()
    echo = start_echo(echo_port)
    started = time.perf_counter()
    sidecar = start_sidecar(policy.path, sidecar_port, settings.cache_size)
    try:
        echo_target, sidecar_target = f"127.0.0.1:{echo_port}", f"127.0.0.1:{sidecar_port}"
        wait_ready(echo, echo_target, 60)
        wait_ready(sidecar, sidecar_target, 900)
        startup_s = time.perf_counter() - started
        rss_loaded = rss_mb(sidecar.pid)

        def rewarm() -> None:  # every hit payload in the cache and memo again
            _send_each(sidecar_target, "Check", checks)
            _send_each(sidecar_target, "CheckBatch", batches)

        cells = measure_cells(
            Server("echo", echo.pid, echo_target),
            Server("sidecar", sidecar.pid, sidecar_target, has_cache=True),
            workloads,
            settings.timing,
            before_round=rewarm,
        )
        info = _policy_info(sidecar_target)
        if info.cache.size < info.cache.maxsize:  # the miss streams normally fill it
            _send_each(sidecar_target, "CheckBatch", workloads[3].payloads)
            info = _policy_info(sidecar_target)
        rss_full = rss_mb(sidecar.pid)
    finally:
        stop(sidecar)
        stop(echo)
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
        payloads_s=payloads_s,
    )


def _policy_info(target: str) -> pb.GetPolicyInfoResponse:
    with grpc.insecure_channel(target) as channel:
        info = channel.unary_unary(
            POLICY_INFO,
            request_serializer=pb.GetPolicyInfoRequest.SerializeToString,
            response_deserializer=pb.GetPolicyInfoResponse.FromString,
        )
        response: pb.GetPolicyInfoResponse = info(pb.GetPolicyInfoRequest(), timeout=60)
        return response


def _send_each(target: str, rpc: str, payloads: Sequence[bytes], in_flight: int = 8) -> None:
    """Send each payload once, `in_flight` at a time (untimed)."""

    async def drive() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.unary_unary(
                f"/cnm_policy.v1.PolicyService/{rpc}",
                request_serializer=None,
                response_deserializer=None,
            )
            queue = list(payloads)

            async def worker() -> None:
                while queue:
                    await call(queue.pop(), timeout=120)

            await asyncio.gather(*(worker() for _ in range(in_flight)))

    asyncio.run(drive())
