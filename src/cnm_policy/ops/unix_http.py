"""Plain HTTP/1.1 requests to an ops listener on HOST:PORT or unix:PATH (stdlib http.client).

Shared by `cnm-policy healthcheck` (over TLS too, when the ops listener serves it) and the
`--processes` supervisor, which reads its children's /metrics and /readyz over private unix
sockets. Bodies are read up to a bound.
"""

from __future__ import annotations

import http.client
import socket
import ssl

__all__ = ["get", "http_connection"]


def http_connection(
    address: str,
    timeout: float,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
) -> http.client.HTTPConnection:
    """A connection to HOST:PORT (a wildcard host means this host) or to unix:PATH.

    With `tls`, the connection is HTTPS, the certificate checked for `server_name` (default:
    the host, ``localhost`` for a unix socket).
    """
    if address.startswith("unix:"):
        path = address.removeprefix("unix://").removeprefix("unix:")
        return _Connection("localhost", None, timeout, path, tls, server_name)
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"`{address}` is not `HOST:PORT` or `unix:PATH`")
    host = host.removeprefix("[").removesuffix("]")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return _Connection(host, int(port), timeout, None, tls, server_name)


def get(
    address: str,
    path: str,
    timeout: float,
    max_bytes: int,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
) -> tuple[int, bytes]:
    """GET `path`: (status, at most `max_bytes` of the body)."""
    connection = http_connection(address, timeout, tls, server_name)
    try:
        connection.request("GET", path, headers={"user-agent": "cnm-policy"})
        response = connection.getresponse()
        return response.status, response.read(max_bytes)
    finally:
        connection.close()


class _Connection(http.client.HTTPConnection):
    """http.client to a host or a unix socket, in TLS when given a context."""

    def __init__(
        self,
        host: str,
        port: int | None,
        timeout: float,
        path: str | None,
        tls: ssl.SSLContext | None,
        server_name: str | None,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._path = path
        self._tls = tls
        self._server_name = server_name or host

    def connect(self) -> None:
        """Connect to the host or the socket file, then start TLS if asked."""
        if self._path is None:
            super().connect()
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self._path)
            except OSError:
                sock.close()
                raise
            self.sock = sock
        if self._tls is not None:
            self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_name)
