"""``python -m benchmarks``: engine and sidecar benchmarks, printed as Markdown tables.

Run from the repository root (``make bench``). ``--quick`` measures the smaller policies
with fewer repetitions and a short sidecar run (about a minute); the full run takes about ten
minutes, much of it loading the 100,000-rule policy (twice: in-process and in the sidecar).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from benchmarks.budgets import targets_table
from benchmarks.generate import generate_bundle
from benchmarks.inprocess import Settings, run_sizes
from benchmarks.report import engine_tables, sidecar_tables
from benchmarks.sidecar import SidecarReport, SidecarSettings, run_sidecar_benchmarks
from benchmarks.timing import machine_description

FULL_SIZES = (100, 1_000, 10_000, 100_000)
QUICK_SIZES = (100, 1_000, 10_000)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks selected on the command line; print tables; 0 unless they crash."""
    args = _parser().parse_args(argv)
    sizes = tuple(args.sizes) if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    settings = (
        Settings(requests=500, repeat=2, casbin_budget_s=2.0, fast_passes=2, miss_cache=5_000)
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
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    return parser


if __name__ == "__main__":
    sys.exit(main())
