"""The HTTP runner: binds like the gRPC listener, serves TLS from its material, stops cleanly."""

from __future__ import annotations

import asyncio
import datetime
import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cnm_policy.errors import ServerConfigError
from cnm_policy.server.http import HttpListener, HttpListenerConfig
from cnm_policy.server.tls import TlsConfig


async def hello(scope: Any, receive: Any, send: Any) -> None:
    """Answer every request with its path."""
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-t", b"1")]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def served() -> Iterator[HttpListener]:
    """A listener on a free loopback port, stopped after the test."""
    listener = HttpListener(hello, HttpListenerConfig(listen="127.0.0.1:0", grace_seconds=1))
    listener.start()
    yield listener
    listener.stop()


def _get(address: str, path: str = "/x") -> tuple[int, bytes]:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_serves_on_the_port_it_reports(served: HttpListener) -> None:
    """Port 0 binds a free port, and `start` returns the address actually bound."""
    assert served.address is not None
    assert not served.address.endswith(":0")
    assert _get(served.address, "/metrics") == (200, b"/metrics")


def test_a_taken_port_is_a_located_error(served: HttpListener) -> None:
    """A second listener on the same port is refused with one line naming the flag and target."""
    assert served.address is not None
    port = served.address.rpartition(":")[2]
    other = HttpListener(hello, HttpListenerConfig(listen=f"127.0.0.1:{port}", flag="--ops-listen"))
    with pytest.raises(ServerConfigError) as caught:
        other.start()
    expected = (
        f"--ops-listen: cannot listen on `127.0.0.1:{port}`: `127.0.0.1:{port}` is already in use"
    )
    assert expected == str(caught.value)


@pytest.mark.parametrize("address", ["0.0.0.0:0", "10.1.2.3:8080", "ops.internal:9090"])
def test_remote_addresses_need_allow_remote(address: str) -> None:
    """Anything reachable from other hosts needs the explicit opt-in, named in the error."""
    with pytest.raises(ServerConfigError, match="--allow-remote"):
        HttpListenerConfig(listen=address)
    assert HttpListenerConfig(listen=address, allow_remote=True).allow_remote


def test_a_malformed_address_names_its_flag() -> None:
    """An address without a numeric port is refused, naming the flag it came from."""
    with pytest.raises(ServerConfigError, match=r"^--ops-listen: `9090` is not `HOST:PORT`"):
        HttpListenerConfig(listen="9090", flag="--ops-listen")


def test_a_foreign_ip_is_refused() -> None:
    """An IP this host does not have is a configuration error, not a silent partial bind."""
    listener = HttpListener(hello, HttpListenerConfig(listen="192.0.2.1:0", allow_remote=True))
    with pytest.raises(ServerConfigError, match="is not an address of this host"):
        listener.start()


def test_unix_socket_serves_and_is_removed_on_stop(tmp_path: Path) -> None:
    """A unix socket path serves HTTP and is gone after the stop."""
    path = tmp_path / "ops.sock"
    listener = HttpListener(hello, HttpListenerConfig(listen=f"unix:{path}"))
    assert f"unix:{path}" == listener.start()
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.1 200")
        assert b"\r\n/u\r\n" in reply
    finally:
        listener.stop()
    assert not path.exists()


def test_a_live_unix_socket_is_not_taken_over(tmp_path: Path) -> None:
    """A second listener on a unix socket someone still serves is refused."""
    path = tmp_path / "ops.sock"
    first = HttpListener(hello, HttpListenerConfig(listen=f"unix:{path}"))
    first.start()
    try:
        with pytest.raises(ServerConfigError, match="another server is listening there"):
            HttpListener(hello, HttpListenerConfig(listen=f"unix:{path}")).start()
    finally:
        first.stop()


def test_stop_refuses_new_connections(served: HttpListener) -> None:
    """After `stop`, the port no longer accepts connections."""
    assert served.address is not None
    address = served.address
    served.stop()
    with pytest.raises(OSError):
        _get(address)


def test_a_request_in_flight_finishes_during_the_stop() -> None:
    """A request already being handled is answered while the listener stops."""
    entered, release = threading.Event(), threading.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        await hello(scope, receive, send)

    listener = HttpListener(slow, HttpListenerConfig(listen="127.0.0.1:0", grace_seconds=5))
    address = listener.start()
    result: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: result.append(_get(address, "/slow")))
    client.start()
    assert entered.wait(5)
    stopper = threading.Thread(target=listener.stop)
    stopper.start()
    release.set()
    client.join(10)
    stopper.join(10)
    assert result == [(200, b"/slow")]


def _tls(tmp_path: Path, *, client_ca: bool) -> tuple[TlsConfig, Path, tuple[Path, Path]]:
    """A CA, a server certificate for 127.0.0.1, a client certificate; PEM files in tmp_path."""
    now = datetime.datetime.now(datetime.UTC)

    def issue(
        name: str, key: Any, issuer_key: Any, issuer: x509.Name, ca: bool
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer if not ca else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    def write(name: str, cert: x509.Certificate, key: Any) -> tuple[Path, Path]:
        cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca_cert = issue("test-ca", ca_key, ca_key, ca_name, True)
    ca_path, _ = write("ca", ca_cert, ca_key)
    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    server = write("server", issue("server", server_key, ca_key, ca_name, False), server_key)
    client = write("client", issue("client", client_key, ca_key, ca_name, False), client_key)
    tls = TlsConfig.from_files(server[0], server[1], ca_path if client_ca else None)
    return tls, ca_path, client


def _get_tls(address: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPSConnection(host, int(port), timeout=5, context=context)
    try:
        conn.request("GET", "/secure")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_tls_serves_clients_that_trust_the_ca(tmp_path: Path) -> None:
    """The gRPC listener's TlsConfig serves HTTPS to a client verifying the certificate."""
    tls, ca, _ = _tls(tmp_path, client_ca=False)
    listener = HttpListener(hello, HttpListenerConfig(listen="127.0.0.1:0", tls=tls))
    address = listener.start()
    try:
        context = ssl.create_default_context(cafile=str(ca))
        assert _get_tls(address, context) == (200, b"/secure")
    finally:
        listener.stop()


def test_mtls_refuses_clients_without_a_certificate(tmp_path: Path) -> None:
    """With a client CA, a client certificate from it is required."""
    tls, ca, (client_cert, client_key) = _tls(tmp_path, client_ca=True)
    listener = HttpListener(hello, HttpListenerConfig(listen="127.0.0.1:0", tls=tls))
    address = listener.start()
    try:
        anonymous = ssl.create_default_context(cafile=str(ca))
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            _get_tls(address, anonymous)
        known = ssl.create_default_context(cafile=str(ca))
        known.load_cert_chain(client_cert, client_key)
        assert _get_tls(address, known) == (200, b"/secure")
    finally:
        listener.stop()
