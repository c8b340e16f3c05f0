"""What shadow mode costs the live path: server CPU per decision with and without a candidate.

The sidecar serves the generated 10,000-rule bundle; the candidate is the same bundle (no
divergences: the cost measured is the re-decision itself). Each variant runs as its own
`cnm-policy serve` process, alternated; CPU is read from /proc once the shadow queue is idle.
Budget (issue #22): at sample rate 1, at most 1.10x the CPU per decision without shadow.

Run: ``python -m benchmarks.shadow [--requests N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.generate import generate_bundle
from benchmarks.mix import DistinctStream, request_mix
from benchmarks.payloads import check_payload
from benchmarks.servers import cpu_seconds, free_port, start_sidecar, stop, wait_ready
from benchmarks.sidecar import _send_each
from benchmarks.timing import machine_description, render_table

BUDGET = 1.10


def _settled_cpu(pid: int) -> float:
    """The process's CPU seconds once it stops rising (the shadow queue has drained)."""
    last = cpu_seconds(pid)
    while True:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        if now == last:
            return now
        last = now


def _cpu_per_decision(bundle: Path, payloads: list[bytes], extra: list[str]) -> float:
    """Server CPU µs per Check for one sidecar process over `payloads` (after a warm-up pass)."""
    port = free_port()
    process = start_sidecar(bundle, port, 10_000, extra)
    target = f"127.0.0.1:{port}"
    try:
        wait_ready(process, target, 120)
        _send_each(target, "Check", payloads[: len(payloads) // 4])  # warm-up
        before = _settled_cpu(process.pid)
        _send_each(target, "Check", payloads)
        return (_settled_cpu(process.pid) - before) / len(payloads) * 1e6
    finally:
        stop(process)


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 1 when a ratio is over the budget."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shadow")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cnm-shadow-"))
    try:
        policy = generate_bundle(work / "live", 10_000)
        shutil.copytree(work / "live", work / "candidate")
        shadow = ["--shadow-policies", str(work / "candidate"), "--shadow-sample", "1"]
        streams = {
            "hits (a 2,000-request mix, repeated)": [
                check_payload(r) for r in request_mix(policy, 2000)
            ]
            * (args.requests // 2000 or 1),
            "misses (every request new)": [
                check_payload(r) for r in DistinctStream(policy).take(args.requests)
            ],
        }
        rows: list[list[object]] = []
        for name, payloads in streams.items():
            plain: list[float] = []
            shadowed: list[float] = []
            for index in range(args.rounds):
                order = [(plain, []), (shadowed, shadow)]
                for into, extra in order if index % 2 == 0 else order[::-1]:
                    into.append(_cpu_per_decision(work / "live", payloads, extra))
            base, used = min(plain), min(shadowed)
            rows.append([name, base, used, used / base, BUDGET])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"# Shadow mode: server CPU per Check\n\n{machine_description()}\n")
    print(render_table(["stream", "without µs", "with shadow µs", "ratio", "budget"], rows))
    return 1 if any(float(row[3]) > BUDGET for row in rows) else 0  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
