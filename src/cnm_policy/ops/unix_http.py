"""Plain HTTP/1.1 requests to an ops listener on HOST:PORT or unix:PATH (stdlib http.client).

Shared by `cnm-policy healthcheck` and the `--processes` supervisor, which reads its
children's /metrics and /readyz over private unix sockets. Bodies are read up to a bound.
"""

from __future__ import annotations

import http.client
import socket

__all__ = ["get", "http_connection"]


def http_connection(address: str, timeout: float) -> http.client.HTTPConnection:
    """A connection to HOST:PORT (a wildcard host means this host) or to unix:PATH."""
    if address.startswith("unix:"):
        return _UnixConnection(address.removeprefix("unix://").removeprefix("unix:"), timeout)
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"`{address}` is not `HOST:PORT` or `unix:PATH`")
    host = host.removeprefix("[").removesuffix("]")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def get(address: str, path: str, timeout: float, max_bytes: int) -> tuple[int, bytes]:
    """GET `path`: (status, at most `max_bytes` of the body)."""
    connection = http_connection(address, timeout)
    try:
        connection.request("GET", path, headers={"user-agent": "cnm-policy"})
        response = connection.getresponse()
        return response.status, response.read(max_bytes)
    finally:
        connection.close()


class _UnixConnection(http.client.HTTPConnection):
    """http.client over a unix socket: only where it connects changes."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Connect to the socket file instead of a host and port."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock
