"""`serve --processes N`: N serving processes behind one TCP address, under one supervisor.

The supervisor binds the port first, without SO_REUSEPORT (so it fails if anyone holds it,
even with SO_REUSEPORT), then turns SO_REUSEPORT on: its children (`cnm-policy serve`, one
engine and cache each) join with grpc's ``grpc.so_reuseport``; the kernel spreads connections
among them; processes of other users cannot join (why and limits: docs/design/ops.md).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnm_policy.errors import ServerConfigError
from cnm_policy.ops import config as config_layers
from cnm_policy.ops.aggregate import ChildrenReadiness, children_registry
from cnm_policy.ops.app import OpsApp
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.binding import resolve
from cnm_policy.server.http import HttpListener, HttpListenerConfig
from cnm_policy.server.runtime import RuntimeOptions

__all__ = ["CHILD_ENV", "is_child", "join_supervisor", "reserve_port", "supervise"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
CHILD_ENV = "_CNM_POLICY_REUSE_PORT"  # not CNM_POLICY_*: not a setting anyone may give


def is_child(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process is a `--processes` child (it joins its supervisor's port)."""
    return environ.get(CHILD_ENV) == "1"


def join_supervisor(
    config: ServerConfig, options: RuntimeOptions
) -> tuple[ServerConfig, RuntimeOptions]:
    """A child's settings: the gRPC and HTTP listeners join the ports the supervisor holds."""
    http = options.doors.http
    if http is not None:
        doors = dataclasses.replace(options.doors, http=dataclasses.replace(http, reuse_port=True))
        options = dataclasses.replace(options, doors=doors)
    return dataclasses.replace(config, reuse_port=True), options


def reserve_port(listen: str) -> tuple[list[socket.socket], str]:
    """Bind every address of `listen` exclusively, then open it to SO_REUSEPORT joiners."""
    if listen.startswith(("unix:", "unix-abstract:")):
        raise ServerConfigError(
            f"--processes: `{listen}` is a unix socket, which processes cannot share: "
            "listen on a TCP address (e.g. 127.0.0.1:50051)"
        )
    host, _, port_text = listen.rpartition(":")
    bare, port = host.removeprefix("[").removesuffix("]"), int(port_text)
    held: list[socket.socket] = []
    try:
        for ip in resolve(listen, bare, port):
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            held.append(sock)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((ip, port))
            except OSError as exc:
                raise ServerConfigError(
                    f"cannot listen on `{listen}`: `{ip}:{port}` is already in use or not ours"
                ) from exc
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            port = sock.getsockname()[1]  # port 0: every address and child gets this one
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held, f"{host}:{port}"


def supervise(args: argparse.Namespace, sources: Mapping[str, str], log: Any) -> int:
    """Run `args.processes` children until a stop signal or a child's exit; its exit code."""
    held, address = reserve_port(args.listen)
    http_address = None
    if getattr(args, "http_listen", None):  # the HTTP doors are shared the same way
        try:
            more, http_address = reserve_port(args.http_listen)
        except BaseException:
            for sock in held:
                sock.close()
            raise
        held += more
    private = Path(tempfile.mkdtemp(prefix="cnm-policy-"))  # 0700: the unmasked settings
    ops: HttpListener | None = None
    try:
        settings = private / "serve.yaml"
        settings.touch(mode=0o600)
        settings.write_text(config_layers.render(args, sources, mask=False), encoding="utf-8")
        sockets = [f"unix:{private}/ops-{index}.sock" for index in range(args.processes)]
        if args.ops_listen:
            ops_config = HttpListenerConfig(args.ops_listen, "--ops-listen", allow_remote=True)
            app = OpsApp(children_registry(sockets), ChildrenReadiness(sockets))
            ops = HttpListener(app, ops_config, name="ops")
            ops.start()
        children = [_spawn(settings, address, http_address, sock) for sock in sockets]
        log.info(
            "supervisor_started",
            address=address,
            http_address=http_address,
            ops_address=ops.address if ops is not None else None,
            processes=[child.pid for child in children],
        )
        return _run(children, float(args.grace), log)
    finally:
        if ops is not None:
            ops.stop()
        for sock in held:
            sock.close()
        shutil.rmtree(private, ignore_errors=True)


def _spawn(
    settings: Path, address: str, http_address: str | None, ops_socket: str
) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(config_layers.ENV_PREFIX)}
    environ[CHILD_ENV] = "1"
    command = [sys.executable, "-m", "cnm_policy", "serve", "--config", str(settings)]
    command += ["--listen", address, "--ops-listen", ops_socket, "--processes", "1"]
    if http_address is not None:
        command += ["--http-listen", http_address]
    return subprocess.Popen(command, env=environ, preexec_fn=_die_with_parent)  # noqa: PLW1509


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, even by SIGKILL (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # elsewhere: an orphan keeps serving until stopped


def _run(children: list[subprocess.Popen[bytes]], grace: float, log: Any) -> int:
    """Forward SIGHUP; on SIGTERM/SIGINT, or when a child exits, stop them all."""
    stop, code = threading.Event(), 0

    def forward(signum: int, _frame: object) -> None:
        if signum != signal.SIGHUP:
            stop.set()
            return
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGHUP)

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in handled}
    try:
        while not stop.wait(0.2):
            exited = [child for child in children if child.poll() is not None]
            if exited:
                returned = exited[0].returncode
                code = returned if returned >= 0 else 1  # killed by a signal: a failure
                log.error("process_exited", pid=exited[0].pid, exit_code=exited[0].returncode)
                break
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(grace + 5.0)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5.0)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("supervisor_stopped", exit_code=code)
    return code
