"""Where the sidecar listens: resolving a host, probing each address, refusing a taken port.

grpc binds what it can of a name's addresses and only warns about the rest, and a second server
on a unix socket silently takes it over: these checks run first and fail with one clean line.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from cnm_policy.errors import ServerConfigError

__all__ = ["can_bind", "is_ip", "refuse_live_unix_socket", "resolve"]


def is_ip(host: str) -> bool:
    """True when `host` is an IP literal (v4 or v6), not a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(address: str, host: str, port: int) -> list[str]:
    """The distinct IP addresses `host` stands for, in resolver order (an IP: itself)."""
    if is_ip(host):
        return [str(ipaddress.ip_address(host))]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServerConfigError(f"cannot listen on `{address}`: the host does not resolve") from exc
    addresses = [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise ServerConfigError(f"cannot listen on `{address}`: the host has no IP address")
    return list(dict.fromkeys(addresses))


def can_bind(address: str, ip: str, port: int, target: str) -> bool:
    """Whether this host has `ip`; raise a clean error when `ip:port` is taken or unusable.

    Checked before grpc binds, so that a port in use is one line of ours rather than grpc's
    own log lines. The probe binds as grpc does, with SO_REUSEADDR and without SO_REUSEPORT.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        probe = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        return False  # no such address family here
    with probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return False
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else "cannot be bound"
            raise ServerConfigError(f"cannot listen on `{address}`: `{target}` {reason}") from exc
    return True


def refuse_live_unix_socket(address: str) -> None:
    """Refuse a unix socket path on which another server still accepts connections.

    gRPC unlinks an existing socket file before binding, so a second sidecar started on the
    same path would silently take it over (and the first one would serve nobody), much as
    SO_REUSEPORT would on a TCP port. A stale file that refuses connections is fine to reuse.
    """
    if not address.startswith("unix:"):
        return
    path = address.removeprefix("unix://") if address.startswith("unix://") else address[5:]
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return  # nothing there, or nobody listening any more
    finally:
        probe.close()
    raise ServerConfigError(f"cannot listen on `{address}`: another server is listening there")
