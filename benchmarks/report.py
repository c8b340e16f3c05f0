"""The benchmark tables: in-process rows and sidecar cells (budgets: `budgets`)."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.inprocess import EngineResult
from benchmarks.sidecar import SidecarReport
from benchmarks.summary import CellResult
from benchmarks.timing import render_table

__all__ = ["engine_tables", "sidecar_tables"]


def engine_tables(results: Sequence[EngineResult]) -> str:
    """Per-size latency table, and the ratios measured in the same run."""
    rows = [
        (r.rules, name, m.median_us, m.p99_us, m.per_second, m.calls)
        for r in results
        for name, m in r.rows_by_name.items()
    ]
    latency = render_table(
        ("rules", "variant", "median us", "p99 us", "checks/s (1 thread)", "calls timed"), rows
    )
    base = results[0].rows_by_name["uncached"].median_us
    ratios = render_table(
        (
            "rules",
            "casbin rows",
            "roles",
            "tenants",
            "load s",
            "allowed",
            "uncached vs smallest",
            "casbin / uncached",
            "cached hit / cachetools hit",
            "miss - uncached (same stream)",
            "hits while timing misses",
            "casbin disagreements",
        ),
        [
            (
                r.rules,
                r.rows,
                r.roles,
                r.tenants,
                r.load_s,
                f"{r.allowed_share:.0%}",
                f"{r.rows_by_name['uncached'].median_us / base:.2f}x",
                f"{_ratio(r, 'raw pycasbin', 'uncached'):,.0f}x",
                f"{_ratio(r, 'cached hit', 'cachetools hit'):.1f}x",
                f"{r.miss_overhead_us:+.2f} us",
                r.miss_hits,
                r.casbin_disagreements,
            )
            for r in results
        ],
    )
    return (
        "## In-process check latency\n\n"
        "Median and p99 per check. `uncached`, `cached hit` and `cachetools hit` go round the "
        "request mix (40% own-tenant reads, 20% cross-tenant attempts, 20% guardrail denies, "
        "20% staff access); `cached hit` and `cachetools hit` are timed in blocks of 20 calls "
        "(p99 of block averages). `uncached, miss stream` and `cached miss` take the same "
        "fresh requests of that mix, each naming a resource never seen before, through a full "
        "cache (each miss also evicts).\n\n"
        f"{latency}\n\n## Ratios (same run)\n\n{ratios}\n"
    )


def _ratio(result: EngineResult, top: str, bottom: str) -> float:
    return result.rows_by_name[top].median_us / result.rows_by_name[bottom].median_us


def sidecar_tables(report: SidecarReport) -> str:
    """Each stream's Check and CheckBatch cells against the echo floor, then memory."""
    settings = report.settings
    rows = [
        (
            c.stream,
            c.rpc,
            c.in_flight,
            c.server,
            c.per_second * (1 if c.rpc == "Check" else settings.batch_items),
            c.median_us,
            c.p99_us,
            c.server_cpu_us,
            _times(c.cpu_of_echo),
            _spread(c.cpu_of_echo_rounds, "{:.2f}x"),
            _share(c.of_echo),
            _hit_share(c),
        )
        for c in report.cells
    ]
    table = render_table(
        (
            "stream",
            "rpc",
            "in flight",
            "server",
            "decisions/s",
            "median us",
            "p99 us",
            "server CPU us per decision",
            "CPU of echo",
            "CPU of echo, rounds",
            "throughput of echo",
            "cache hits",
        ),
        rows,
    )
    return (
        f"## Sidecar over gRPC ({report.rules:,}-rule policy)\n\n"
        "Echo floor: a bare synchronous grpc server (standard ThreadPoolExecutor, 2 workers). "
        f"CheckBatch carries {settings.batch_items} items per call. Each row: "
        f"{settings.rounds} rounds of {settings.seconds:g} s (after {settings.warmup_s:g} s of "
        "warm-up), echo and sidecar back to back in each round, in alternating order. "
        "*decisions/s*: the median round; *median/p99 us*: per call, all rounds pooled; "
        "*server CPU*: all rounds' CPU / all decisions; *CPU of echo* and *throughput of "
        "echo*: medians of the per-round sidecar/echo ratios; *cache hits*: the sidecar's "
        f"counters over the cell. Miss pools: {settings.miss_pool:,} distinct requests (batch "
        f"items) each, more than the cache ({settings.cache_size:,}) or any memo "
        f"({settings.memo_bound:,}) holds, built in {report.payloads_s:.1f} s before timing.\n\n"
        f"{table}\n\n"
        f"- sidecar startup (load, compile, serve): {report.startup_s:.1f} s\n"
        f"- RSS with the policy loaded: {report.rss_loaded_mb:.0f} MB; with the cache full "
        f"({report.cache_size:,} entries): {report.rss_full_mb:.0f} MB\n"
        f"- cache counters at the end: {report.cache_hits:,} hits, {report.cache_misses:,} "
        "misses\n"
    )


def _share(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.0%}"


def _times(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.2f}x"


def _spread(ratios: Sequence[float], form: str = "{:.0%}") -> str:
    return f"{form.format(min(ratios))}-{form.format(max(ratios))}" if ratios else ""


def _hit_share(cell: CellResult) -> str:
    if cell.cache_hits is None or cell.cache_misses is None:
        return ""
    total = cell.cache_hits + cell.cache_misses
    return f"{cell.cache_hits / total:.0%}" if total else "-"
