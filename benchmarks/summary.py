"""How a benchmark cell's rounds become the reported numbers.

A `Sample` is one server's cell in one round; `summarize_pair` turns the paired rounds of the
echo server and the sidecar into two `CellResult`s: the median round's throughput, latencies
pooled over all rounds, server CPU per call (per item for CheckBatch) over all rounds, and the
medians of the per-round sidecar/echo ratios of throughput and of CPU per call.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.timing import percentile

__all__ = ["CellResult", "RoundResult", "Sample", "summarize_pair"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One server's cell in one round, every latency included (pooled across rounds)."""

    calls: int
    elapsed_s: float
    server_cpu_s: float
    latencies_us: tuple[float, ...]  # sorted, as percentile() expects
    measured_first: bool  # ran before the other server's cell in its round
    cache_hits: int | None = None  # the sidecar's counters over warm-up and timed calls
    cache_misses: int | None = None

    @property
    def per_second(self) -> float:
        return self.calls / self.elapsed_s

    @property
    def cpu_per_call_s(self) -> float:
        return self.server_cpu_s / self.calls if self.calls else float("nan")


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
    cache_hits: int | None
    cache_misses: int | None


@dataclass(frozen=True, slots=True)
class CellResult:
    """One (server, stream, rpc, calls in flight) cell, summarized over its rounds.

    `per_second` is the median round's; latencies are pooled over all rounds; server CPU is
    the total over all rounds divided by all calls (items for CheckBatch). `of_echo` and
    `cpu_of_echo` are medians of the per-round sidecar/echo ratios of throughput and of server
    CPU per call (None and empty for the echo server itself).
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
    stream: str = "hits"
    cpu_of_echo: float | None = None
    cpu_of_echo_rounds: tuple[float, ...] = field(default=())
    cache_hits: int | None = None
    cache_misses: int | None = None


def summarize_pair(
    rpc: str,
    in_flight: int,
    items_per_call: int,
    echo: Sequence[Sample],
    sidecar: Sequence[Sample],
    stream: str = "hits",
) -> tuple[CellResult, CellResult]:
    """The echo and sidecar cells of one pair; `echo[i]` ran next to `sidecar[i]`.

    Each round's ratio compares two cells measured back to back, so slow drift in the
    machine's load cancels out of it; the median of the ratios then ignores a round that a
    short burst hit on one side only. A ratio of the two medians would not.
    """
    pairs = list(zip(echo, sidecar, strict=True))
    ratios = tuple(side.per_second / floor.per_second for floor, side in pairs)
    cpu = tuple(
        side.cpu_per_call_s / floor.cpu_per_call_s
        for floor, side in pairs
        if floor.server_cpu_s > 0 and side.calls
    )
    return (
        _summarize("echo", rpc, in_flight, items_per_call, echo, stream, (), ()),
        _summarize("sidecar", rpc, in_flight, items_per_call, sidecar, stream, ratios, cpu),
    )


def _summarize(
    server: str,
    rpc: str,
    in_flight: int,
    items_per_call: int,
    samples: Sequence[Sample],
    stream: str,
    ratios: tuple[float, ...],
    cpu_ratios: tuple[float, ...],
) -> CellResult:
    if not samples:
        raise ValueError(f"no rounds measured for {server} {rpc} x{in_flight}")
    calls = sum(sample.calls for sample in samples)
    pooled = sorted(latency for sample in samples for latency in sample.latencies_us)
    cpu_s = sum(sample.server_cpu_s for sample in samples)
    counted = [s for s in samples if s.cache_hits is not None]
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
        stream=stream,
        cpu_of_echo=statistics.median(cpu_ratios) if cpu_ratios else None,
        cpu_of_echo_rounds=cpu_ratios,
        cache_hits=sum(s.cache_hits or 0 for s in counted) if counted else None,
        cache_misses=sum(s.cache_misses or 0 for s in counted) if counted else None,
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
        cache_hits=sample.cache_hits,
        cache_misses=sample.cache_misses,
    )
