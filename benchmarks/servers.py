"""The two servers the sidecar benchmark drives, as processes: the echo floor and the sidecar.

The echo server is a bare synchronous grpc server (standard ``ThreadPoolExecutor``, the
sidecar's worker count) that answers every method with the request bytes through a generic
handler: no protobuf, no policy, the transport floor. The sidecar is ``cnm-policy serve``.
Both are read from outside: CPU time from ``/proc/<pid>/stat``, memory from its status.

``python -m benchmarks.servers echo --port N`` runs the echo server (started internally).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path

import grpc

__all__ = [
    "WORKERS",
    "cpu_seconds",
    "echo_server",
    "free_port",
    "rss_mb",
    "start_echo",
    "start_sidecar",
    "stop",
    "wait_ready",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2  # `cnm-policy serve --workers` default; the echo server gets the same
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CACHE_TTL_S = 3600  # the rounds outlast the default 60 s TTL: hits stay hits


def echo_server(port: int, workers: int = WORKERS) -> grpc.Server:
    """A started server answering every method with the request bytes: the transport floor."""

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.unary_unary_rpc_method_handler(echo)  # no (de)serializers: raw bytes
    pool = futures.ThreadPoolExecutor(max_workers=workers)
    server = grpc.server(pool, options=[("grpc.so_reuseport", 0)])
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_echo(port: int) -> subprocess.Popen[bytes]:
    """The echo server as a process of its own."""
    return _start(["-m", "benchmarks.servers", "echo", "--port", str(port)])


def start_sidecar(
    policy: Path, port: int, cache_size: int, extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """``cnm-policy serve`` on `policy` (plus `extra` flags): decision log as JSON to
    /dev/null, no reloads."""
    return _start(
        [
            "-m",
            "cnm_policy",
            "serve",
            "--policies",
            str(policy),
            "--listen",
            f"127.0.0.1:{port}",
            "--no-bundle-tests",
            "--watch-interval",
            "0",
            "--cache-size",
            str(cache_size),
            "--cache-ttl",
            str(CACHE_TTL_S),
            "--workers",
            str(WORKERS),
            "--log-file",
            os.devnull,
            "--log-format",
            "json",
            *extra,
        ]
    )


def _start(arguments: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *arguments],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_ready(process: subprocess.Popen[bytes], target: str, timeout: float) -> None:
    """Return once `target` accepts a connection; raise if the process exits or time runs out."""
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


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (all its threads) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    """``echo --port N``: serve the echo server until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers")
    commands = parser.add_subparsers(dest="command", required=True)
    echo = commands.add_parser("echo", help="run the bare gRPC echo server")
    echo.add_argument("--port", type=int, required=True)
    echo.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args(argv)
    server = echo_server(args.port, args.workers)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
