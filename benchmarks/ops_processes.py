"""``python -m benchmarks.ops --processes``: req/s and server CPU per decision, 1 vs 2 processes.

`cnm-policy serve --processes N` on the default bundle (its log to a scratch file) answers a
cached `Check` from one grpc.aio client process over 8 connections (the kernel spreads
connections, not calls, across processes) with 32 calls in flight. Server CPU is the sum over
the supervisor and its children, read from /proc before and after the timed window.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from benchmarks.servers import cpu_seconds
from cnm_policy.v1 import policy_pb2 as pb

REPO = Path(__file__).resolve().parents[1]
CHECK = "/cnm_policy.v1.PolicyService/Check"
CONNECTIONS = 8
IN_FLIGHT = 32


def _request() -> bytes:
    principal = pb.Principal(id="u-17", tenant="acme/emea", roles=["customer-viewer"])
    resource = pb.Resource(kind="device", id="dev-9", tenant="acme/emea/paris")
    return pb.CheckRequest(
        principal=principal, action="read", resource=resource
    ).SerializeToString()


def _start(processes: int, log: Path) -> tuple[subprocess.Popen[bytes], str, list[int]]:
    """Start the sidecar logging to `log`; its address and pids once it says it started."""
    command = [sys.executable, "-m", "cnm_policy", "serve"]
    command += ["--policies", str(REPO / "policies" / "cnm"), "--listen", "127.0.0.1:0"]
    command += ["--processes", str(processes), "--no-bundle-tests", "--watch-interval", "0"]
    command += ["--log-format", "json", "--log-file", str(log)]
    process = subprocess.Popen(command, cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        lines = log.read_text().splitlines() if log.exists() else []
        events = [json.loads(line) for line in lines]
        started = [event for event in events if event["event"] == "sidecar_started"]
        supervisor = [event for event in events if event["event"] == "supervisor_started"]
        if len(started) == processes:  # every serving process has bound the port
            if processes == 1:
                return process, started[0]["address"], [process.pid]
            return process, supervisor[0]["address"], [process.pid, *supervisor[0]["processes"]]
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the sidecar did not start")


async def _drive(address: str, seconds: float) -> int:
    request, done = _request(), 0
    options = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(CONNECTIONS)]
    calls = [channel.unary_unary(CHECK, None, None) for channel in channels]
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        call = calls[index % CONNECTIONS]
        while time.monotonic() < deadline:
            await call(request, timeout=10)
            done += 1

    await asyncio.gather(*(worker(index) for index in range(IN_FLIGHT)))
    for channel in channels:
        await channel.close(None)
    return done


def measure(processes: int, seconds: float) -> tuple[float, float]:
    """(calls per second, server CPU microseconds per call) for `processes` processes."""
    with tempfile.TemporaryDirectory() as folder:
        process, address, pids = _start(processes, Path(folder) / "serve.log")
        try:
            asyncio.run(_drive(address, 1.0))  # warm: connections, cache, memo
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            started = time.monotonic()
            calls = asyncio.run(_drive(address, seconds))
            elapsed = time.monotonic() - started
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        finally:
            process.terminate()
            process.wait(60)
    return calls / elapsed, cpu / calls * 1e6


def table(seconds: float) -> str:
    """A Markdown table for 1 and 2 processes."""
    rows = ["| processes | Check/s | server CPU us/decision |", "|---|---|---|"]
    for processes in (1, 2):
        rate, cpu = measure(processes, seconds)
        rows.append(f"| {processes} | {rate:,.0f} | {cpu:.1f} |")
    return "\n".join(rows)
