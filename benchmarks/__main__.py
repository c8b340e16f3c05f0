"""``python -m benchmarks``: engine and sidecar benchmarks, printed as Markdown tables.

Run from the repository root (``make bench``). ``--quick`` measures the smaller policies
with fewer repetitions and a short sidecar run (about a minute); the full run takes a few
minutes, most of it loading the 100,000-rule policy (twice: in-process and in the sidecar).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from benchmarks.generate import generate_bundle
from benchmarks.inprocess import EngineResult, Settings, run_sizes
from benchmarks.sidecar import ECHO_POOLS, SidecarReport, SidecarSettings, run_sidecar_benchmarks
from benchmarks.timing import machine_description, render_table

FULL_SIZES = (100, 1_000, 10_000, 100_000)
QUICK_SIZES = (100, 1_000, 10_000)
TARGET_UNCACHED_US = 50.0
TARGET_GROWTH = 2.0
TARGET_CACHED_US = 2.0
TARGET_ECHO_SHARE = 0.90
TARGET_BATCH_ITEM_US = 20.0
TARGET_RSS_MB = 500.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks selected on the command line; print tables; 0 unless they crash."""
    args = _parser().parse_args(argv)
    sizes = tuple(args.sizes) if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    settings = (
        Settings(requests=500, repeat=2, casbin_budget_s=2.0, fast_passes=2)
        if args.quick
        else Settings()
    )
    machine = machine_description()
    print(f"# cnm-policy benchmarks\n\nMachine: {machine}\n", flush=True)
    results = run_sizes(
        sizes,
        settings,
        progress=lambda size, seconds: print(
            f"  measured {size:,} rules in {seconds:.0f} s", flush=True
        ),
    )
    if results:
        print(engine_tables(results), flush=True)
    sidecar: SidecarReport | None = None
    if not args.no_sidecar:
        rules = args.sidecar_rules or (10_000 if args.quick else 100_000)
        sidecar_settings = SidecarSettings.quick() if args.quick else SidecarSettings()
        sidecar_settings = replace(sidecar_settings, echo_pool=args.echo_pool)
        with tempfile.TemporaryDirectory(prefix="cnm-bench-sidecar-") as scratch:
            policy = generate_bundle(Path(scratch) / "bundle", rules)
            sidecar = run_sidecar_benchmarks(policy, sidecar_settings)
        print(sidecar_tables(sidecar), flush=True)
    print(targets_table(results, sidecar))
    if args.json:
        payload = {
            "machine": machine,
            "engine": [asdict(r) for r in results],
            "sidecar": asdict(sidecar) if sidecar else None,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller and shorter (about 1 min)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", metavar="RULES", help="policy sizes to measure"
    )
    parser.add_argument("--no-sidecar", action="store_true", help="in-process benchmarks only")
    parser.add_argument(
        "--sidecar-rules", type=int, metavar="RULES", help="policy size for the sidecar"
    )
    parser.add_argument(
        "--echo-pool",
        choices=ECHO_POOLS,
        default="executor",
        help="the echo server's thread pool: the standard executor (default: a bare grpc "
        "server) or the sidecar's own pool (a like-for-like floor)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    return parser


def engine_tables(results: Sequence[EngineResult]) -> str:
    """Per-size latency table, and the ratios measured in the same run."""
    rows = []
    for result in results:
        for name, measured in result.rows_by_name.items():
            rows.append(
                (
                    result.rules,
                    name,
                    measured.median_us,
                    measured.p99_us,
                    measured.per_second,
                    measured.calls,
                )
            )
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
            "cached / cachetools hit",
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
                r.casbin_disagreements,
            )
            for r in results
        ],
    )
    return (
        "## In-process check latency\n\n"
        "Median and p99 per check over the request mix (40% own-tenant reads, 20% cross-tenant "
        "attempts, 20% guardrail denies, 20% staff access). `cached hit`, `key build` and "
        "`cachetools hit` are timed in blocks of 20 calls (p99 of block averages).\n\n"
        f"{latency}\n\n## Ratios (same run)\n\n{ratios}\n"
    )


def _ratio(result: EngineResult, top: str, bottom: str) -> float:
    return result.rows_by_name[top].median_us / result.rows_by_name[bottom].median_us


def sidecar_tables(report: SidecarReport) -> str:
    """Check and CheckBatch cells against the echo floor, then memory."""
    rows = [
        (
            c.rpc,
            c.in_flight,
            c.server,
            c.per_second,
            c.per_second * (1 if c.rpc == "Check" else report.settings.batch_items),
            c.median_us,
            c.p99_us,
            c.server_cpu_us,
            _share(c.of_echo),
            _spread(c.of_echo_rounds),
        )
        for c in report.cells
    ]
    table = render_table(
        (
            "rpc",
            "in flight",
            "server",
            "calls/s",
            "decisions/s",
            "median us",
            "p99 us",
            "server CPU us per decision",
            "of echo",
            "of echo, rounds min-max",
        ),
        rows,
    )
    settings = report.settings
    return (
        f"## Sidecar over gRPC ({report.rules:,}-rule policy, cache hits)\n\n"
        f"Echo server thread pool: {_POOL_NAMES[settings.echo_pool]}. "
        "Client and servers on the same machine; CheckBatch carries "
        f"{settings.batch_items} items per call. Each row: {settings.rounds} rounds of "
        f"{settings.seconds:g} s (after {settings.warmup_s:g} s of warm-up), echo and sidecar "
        "back to back in each round, in alternating order. *calls/s*: the median round; "
        "*median/p99 us*: all calls of all rounds pooled; *server CPU*: all rounds' CPU / all "
        "calls (items); *of echo*: the median of the per-round sidecar/echo ratios (not the "
        "ratio of the two calls/s shown), with their lowest and highest.\n\n"
        f"{table}\n\n"
        f"- sidecar startup (load, compile, serve): {report.startup_s:.1f} s\n"
        f"- CheckBatch with every item a cache miss: {report.cold_batch_item_cpu_us:.1f} us "
        "server CPU per item\n"
        f"- RSS with the policy loaded: {report.rss_loaded_mb:.0f} MB; with the cache full "
        f"({report.cache_size:,} entries): {report.rss_full_mb:.0f} MB\n"
        f"- cache counters at the end: {report.cache_hits:,} hits, {report.cache_misses:,} "
        "misses\n"
    )


_POOL_NAMES = {
    "executor": "the standard ThreadPoolExecutor (a bare grpc server)",
    "sidecar": "the sidecar's own WorkerPool (like for like)",
}


def _share(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.0%}"


def _spread(ratios: Sequence[float]) -> str:
    return f"{min(ratios):.0%}-{max(ratios):.0%}" if ratios else ""


def targets_table(results: Sequence[EngineResult], sidecar: SidecarReport | None) -> str:
    """Each target of issue 4 with the measured value and whether it is met."""
    rows: list[tuple[str, str, str, str]] = []
    by_rules = {r.rules: r for r in results}
    if 10_000 in by_rules and 100 in by_rules:
        big = by_rules[10_000].rows_by_name["uncached"].median_us
        small = by_rules[100].rows_by_name["uncached"].median_us
        rows.append(_target("uncached check @10k rules", big, TARGET_UNCACHED_US, "us"))
        rows.append(_target("uncached @10k / @100", big / small, TARGET_GROWTH, "x"))
        casbin = by_rules[10_000].rows_by_name["raw pycasbin"].median_us / max(
            by_rules[100].rows_by_name["raw pycasbin"].median_us, 1e-9
        )
        rows.append(("raw pycasbin @10k / @100 (reference)", f"{casbin:.0f}x", "-", "-"))
    for result in results:
        cached = result.rows_by_name["cached hit"].median_us
        rows.append(_target(f"cached hit @{result.rules:,} rules", cached, TARGET_CACHED_US, "us"))
    if sidecar:
        for cell in sidecar.cells:
            if cell.server != "sidecar":
                continue
            if cell.rpc == "Check" and cell.in_flight in (16, 64) and cell.of_echo is not None:
                rows.append(
                    (
                        f"sidecar Check hits, {cell.in_flight} in flight, share of echo "
                        "(median of rounds)",
                        f"{cell.of_echo:.0%} ({_spread(cell.of_echo_rounds)})",
                        f">= {TARGET_ECHO_SHARE:.0%}",
                        "met" if cell.of_echo >= TARGET_ECHO_SHARE else "MISSED",
                    )
                )
            if cell.rpc == "CheckBatch":
                rows.append(
                    _target(
                        f"CheckBatch server CPU per item, {cell.in_flight} in flight",
                        cell.server_cpu_us,
                        TARGET_BATCH_ITEM_US,
                        "us",
                    )
                )
        # The batch target is about cache hits; every-item-a-miss is shown for scale only.
        rows.append(
            (
                "CheckBatch server CPU per item, all misses (reference)",
                f"{sidecar.cold_batch_item_cpu_us:.1f} us",
                "-",
                "-",
            )
        )
        rows.append(
            _target(
                f"sidecar RSS, {sidecar.rules:,} rules, cache full",
                sidecar.rss_full_mb,
                TARGET_RSS_MB,
                "MB",
            )
        )
    return "## Targets\n\n" + render_table(("target", "measured", "goal", "status"), rows) + "\n"


def _target(name: str, value: float, goal: float, unit: str) -> tuple[str, str, str, str]:
    shown = f"{value:.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"
    return (name, shown, f"<= {goal:g} {unit}", "met" if value <= goal else "MISSED")


if __name__ == "__main__":
    sys.exit(main())
