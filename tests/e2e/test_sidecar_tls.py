"""Transport security: TLS, and mTLS that refuses clients without a certificate from the CA."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from cnm_policy.server.app import ServerConfigError, TlsConfig
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import device, policy_stub, principal, serve

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

READ = pb.CheckRequest(principal=principal(), action="read", resource=device())


@dataclass(frozen=True)
class Pki:
    """A throwaway CA with one server and one client certificate (PEM paths)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(directory: Path, name: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates made for this test run only (nothing secret is checked in)."""
    directory = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=cnm-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _issue(
        directory,
        "server",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    _issue(
        directory,
        "client",
        "subjectAltName=URI:spiffe://cnm/portal\nextendedKeyUsage=clientAuth\n",
    )
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )


def _credentials(pki: Pki, *, client_cert: bool) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes() if client_cert else None,
        certificate_chain=pki.client_cert.read_bytes() if client_cert else None,
    )


def test_tls_serves_clients_that_trust_the_ca(pki: Pki, bundle: Path) -> None:
    """With --tls-cert/--tls-key, a client verifying the server certificate gets answers."""
    tls = TlsConfig.from_files(pki.server_cert, pki.server_key)
    with serve(bundle, tls=tls) as served:
        with grpc.secure_channel(served.address, _credentials(pki, client_cert=False)) as channel:
            response = policy_stub(channel).Check(READ, timeout=10)
        with (
            grpc.insecure_channel(served.address) as plaintext,
            pytest.raises(grpc.RpcError) as raised,
        ):
            policy_stub(plaintext).Check(READ, timeout=10)
    assert response.allowed
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_requires_a_client_certificate(pki: Pki, bundle: Path) -> None:
    """With --tls-client-ca, only clients presenting a certificate from that CA get through."""
    tls = TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca)
    with serve(bundle, tls=tls) as served:
        with grpc.secure_channel(served.address, _credentials(pki, client_cert=True)) as channel:
            response = policy_stub(channel).Check(READ, timeout=10)
        anonymous = _credentials(pki, client_cert=False)
        with (
            grpc.secure_channel(served.address, anonymous) as channel,
            pytest.raises(grpc.RpcError) as raised,
        ):
            policy_stub(channel).Check(READ, timeout=10)
    assert response.allowed
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_unreadable_tls_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A missing PEM file is reported naming the flag and the path."""
    with pytest.raises(ServerConfigError, match="--tls-cert: cannot read"):
        TlsConfig.from_files(tmp_path / "missing.pem", tmp_path / "missing.key")


def test_a_key_that_does_not_match_the_certificate_is_named(pki: Pki) -> None:
    """A certificate with another certificate's key is refused as a mismatch, not a bind error."""
    with pytest.raises(ServerConfigError) as raised:
        TlsConfig.from_files(pki.server_cert, pki.client_key)
    assert str(raised.value) == (
        f"--tls-key: the key in `{pki.client_key}` does not match the certificate in "
        f"`{pki.server_cert}`"
    )


def test_a_file_that_is_not_pem_is_named(pki: Pki, tmp_path: Path) -> None:
    """A certificate file holding no certificate is refused naming the flag, before binding."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ServerConfigError) as raised:
        TlsConfig.from_files(garbage, pki.server_key)
    assert str(raised.value) == f"--tls-cert: `{garbage}` holds no PEM certificate"


def test_mtls_decisions_name_the_callers_certificate(pki: Pki, bundle: Path) -> None:
    """With mTLS, each decision event carries the client certificate's subject and SANs."""
    tls = TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca)
    with serve(bundle, tls=tls) as served:
        credentials = _credentials(pki, client_cert=True)
        with grpc.secure_channel(served.address, credentials) as channel, capture_logs() as logs:
            policy_stub(channel).Check(READ, timeout=10)
    identities = [
        (event["peer_subject"], event["peer_san"]) for event in logs if event["event"] == "decision"
    ]
    assert identities == [("CN=client", ["spiffe://cnm/portal"])]
