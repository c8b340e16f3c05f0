"""Timing and table helpers shared by the engine and sidecar benchmarks.

Each measurement times blocks of calls with ``perf_counter_ns``: one call per block for slow
operations (so p99 is a real per-call tail), several for microsecond ones (so the timer's own
cost does not dominate; their p99 is then the p99 of block averages). Fast operations are
measured in several rounds and the best round is kept.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Measurement", "machine_description", "measure", "percentile", "render_table"]


@dataclass(frozen=True, slots=True)
class Measurement:
    """Per-call latency (microseconds) and single-thread throughput of one operation."""

    name: str
    median_us: float
    p99_us: float
    per_second: float
    calls: int


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of `sorted_values` lie (nearest rank)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def measure(
    name: str,
    call: Callable[..., object],
    arguments: Sequence[Any],
    *,
    repeat: int,
    block: int = 1,
    rounds: int = 1,
    budget_s: float | None = None,
    unpack: bool = False,
) -> Measurement:
    """Time `call(argument)` over `arguments`, `repeat` times, `block` calls per timing.

    With `unpack`, each argument is a tuple and ``call(*argument)`` is timed: the harness then
    adds no function of its own around a call of a microsecond or two.

    With several `rounds`, the round with the lowest median is reported (as ``timeit``
    reports its best repetition): on a shared machine a neighbour's burst inflates a whole
    round, never deflates one. With `budget_s`, stop once that much time is spent (at least
    one block is timed): for baselines that take seconds per call.
    """
    results = [
        _one_round(name, call, arguments, repeat, block, budget_s, unpack)
        for _ in range(max(1, rounds))
    ]
    return min(results, key=lambda result: result.median_us)


def _one_round(
    name: str,
    call: Callable[..., object],
    arguments: Sequence[Any],
    repeat: int,
    block: int,
    budget_s: float | None,
    unpack: bool,
) -> Measurement:
    samples: list[float] = []
    calls = 0
    clock = time.perf_counter_ns
    deadline = None if budget_s is None else clock() + int(budget_s * 1e9)
    for _ in range(repeat):
        for offset in range(0, len(arguments) - block + 1, block):
            chunk = arguments[offset : offset + block]
            t0 = clock()
            if unpack:
                for argument in chunk:
                    call(*argument)
            else:
                for argument in chunk:
                    call(argument)
            samples.append((clock() - t0) / block / 1000.0)
            calls += block
            if deadline is not None and clock() > deadline:
                break
        if deadline is not None and clock() > deadline:
            break
    samples.sort()
    total_s = sum(samples) * block / 1e6
    return Measurement(
        name=name,
        median_us=statistics.median(samples),
        p99_us=percentile(samples, 0.99),
        per_second=calls / total_s if total_s else float("nan"),
        calls=calls,
    )


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (readable on a terminal too)."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines.extend(
        "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    )
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_description() -> str:
    """CPU model, core count, Python and load: enough to compare runs across machines."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"load average {load:.2f} at start"
    )
