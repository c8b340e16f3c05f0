"""Serve an ASGI app with uvicorn on `HOST:PORT` or `unix:PATH`, in a thread of the sidecar.

The sockets are bound here, before uvicorn starts, so a taken port or a foreign address is a
located `ServerConfigError` (as for the gRPC listener) and port 0 reports the port it got.
TLS material is the gRPC listener's `TlsConfig`; HTTP parsing is uvicorn's (h11).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from cnm_policy.errors import ServerConfigError
from cnm_policy.server.app import is_local_address
from cnm_policy.server.binding import is_ip, refuse_live_unix_socket, resolve
from cnm_policy.server.tls import TlsConfig

__all__ = ["ASGIApp", "HttpListener", "HttpListenerConfig"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

_STARTUP_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class HttpListenerConfig:
    """Where and how to listen; `flag` names the option in every error message.

    Only loopback and unix-socket addresses unless `allow_remote`. `max_connections` bounds
    concurrent connections (beyond it uvicorn answers 503), `max_header_bytes` the request head.
    """

    listen: str
    flag: str = "--http-listen"
    allow_remote: bool = False
    tls: TlsConfig | None = None
    grace_seconds: float = 5.0
    max_connections: int = 256
    max_header_bytes: int = 16 * 1024
    keep_alive_seconds: float = 5.0
    # Only for `serve --processes N`: the supervisor holds the port, its children share it.
    reuse_port: bool = False

    def __post_init__(self) -> None:
        try:
            local = is_local_address(self.listen)
        except ServerConfigError as exc:
            raise ServerConfigError(f"{self.flag}: {exc}") from exc
        if not self.allow_remote and not local:
            raise ServerConfigError(
                f"{self.flag}: `{self.listen}` is reachable from other hosts: pass "
                "--allow-remote (and preferably --tls-cert/--tls-key) to listen there"
            )


class HttpListener:
    """One HTTP listener: `start()` binds and serves in a daemon thread, `stop()` drains it."""

    def __init__(self, app: ASGIApp, config: HttpListenerConfig, *, name: str = "http") -> None:
        self._app = app
        self._config = config
        self._name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._unix_path: str | None = None
        self.address: str | None = None

    def start(self) -> str:
        """Bind, start serving, and return the address bound (the real port for port 0)."""
        sockets, address = self._bind()
        cfg = self._config
        uv = uvicorn.Config(
            self._app,
            http="httptools",  # ~10-25% less server CPU than h11 (docs/design/http.md)
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=True,
            limit_concurrency=cfg.max_connections,
            h11_max_incomplete_event_size=cfg.max_header_bytes,
            timeout_keep_alive=max(1, round(cfg.keep_alive_seconds)),
            timeout_graceful_shutdown=max(0, round(cfg.grace_seconds)),
            ssl_context_factory=_context_factory(cfg.tls) if cfg.tls is not None else None,
        )
        server = uvicorn.Server(uv)
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(server.serve(sockets=sockets))
            except BaseException as exc:  # SystemExit from a failed startup included
                failure.append(exc)

        thread = threading.Thread(target=serve, name=f"cnm-policy-{self._name}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.005)
        if not server.started:
            server.should_exit = True
            for sock in sockets:
                sock.close()
            reason = f": {failure[0]}" if failure and str(failure[0]) else ""
            raise ServerConfigError(f"{cfg.flag}: cannot serve on `{cfg.listen}`{reason}")
        self.address = address
        return address

    def stop(self, grace: float | None = None) -> None:
        """Refuse new connections, let requests in flight finish within `grace` seconds."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        grace = self._config.grace_seconds if grace is None else grace
        server.should_exit = True
        thread.join(grace + 1.0)
        if thread.is_alive():  # uvicorn's own graceful timeout is whole seconds: force it
            server.force_exit = True
            thread.join(1.0)
        if self._unix_path is not None:
            Path(self._unix_path).unlink(missing_ok=True)
        self._server = self._thread = None

    def _bind(self) -> tuple[list[socket.socket], str]:
        listen = self._config.listen
        if listen.startswith("unix-abstract:"):
            return [self._unix_socket("\0" + listen.removeprefix("unix-abstract:"))], listen
        if listen.startswith("unix:"):
            refuse_live_unix_socket(listen)
            path = listen.removeprefix("unix://") if listen.startswith("unix://") else listen[5:]
            Path(path).unlink(missing_ok=True)  # stale: refuse_live_unix_socket found nobody
            sock = self._unix_socket(path)
            self._unix_path = path
            return [sock], listen
        host, _, port_text = listen.rpartition(":")
        bare, port = host.removeprefix("[").removesuffix("]"), int(port_text)
        sockets: list[socket.socket] = []
        try:
            for ip in resolve(listen, bare, port):
                bound = self._tcp_socket(ip, port, must_exist=is_ip(bare))
                if bound is not None:
                    sockets.append(bound)
                    port = bound.getsockname()[1]  # port 0: every address gets the same port
        except BaseException:
            for each in sockets:
                each.close()
            raise
        if not sockets:
            raise ServerConfigError(
                f"{self._config.flag}: cannot listen on `{listen}`: the host has none of its "
                "addresses"
            )
        return sockets, f"{host}:{port}"

    def _tcp_socket(self, ip: str, port: int, *, must_exist: bool) -> socket.socket | None:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        target = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR only (as grpc): no other process may share the port, but the
            # children of a `--processes` supervisor, which reserved it (cli/_processes.py).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self._config.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((ip, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) and not must_exist:
                return None
            reason = {
                errno.EADDRINUSE: "is already in use",
                errno.EADDRNOTAVAIL: "is not an address of this host",
            }.get(exc.errno or 0, "cannot be bound")
            raise ServerConfigError(
                f"{self._config.flag}: cannot listen on `{self._config.listen}`: "
                f"`{target}` {reason}"
            ) from exc
        sock.setblocking(False)
        return sock

    def _unix_socket(self, path: str) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ServerConfigError(
                f"{self._config.flag}: cannot listen on `{self._config.listen}`: "
                f"{exc.strerror or 'cannot be bound'}"
            ) from exc
        sock.setblocking(False)
        return sock


def _context_factory(
    tls: TlsConfig,
) -> Callable[[Any, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """uvicorn's hook: our own context from the PEM bytes already read and checked."""

    def factory(_config: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return server_ssl_context(tls)

    return factory


def server_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with a client CA, client certificates are required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    with _pem_file(tls.cert_chain) as cert, _pem_file(tls.private_key) as key:
        context.load_cert_chain(cert, key, password=lambda: b"")
    if tls.client_ca is not None:
        context.load_verify_locations(cadata=tls.client_ca.decode("ascii", "replace"))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _pem_file:  # noqa: N801 - used as a context manager, like open()
    """PEM bytes as a path OpenSSL can read: an anonymous memory file, never on disk if possible."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._fd: int | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> str:
        if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
            self._fd = os.memfd_create("cnm-policy-pem", os.MFD_CLOEXEC)
            os.write(self._fd, self._data)
            return f"/proc/self/fd/{self._fd}"
        self._dir = tempfile.TemporaryDirectory(prefix="cnm-policy-tls-")
        path = Path(self._dir.name) / "pem"
        path.touch(mode=0o600)
        path.write_bytes(self._data)
        return str(path)

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
        if self._dir is not None:
            self._dir.cleanup()
