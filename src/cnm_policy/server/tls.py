"""Transport security for the sidecar: PEM material read and checked before gRPC binds.

gRPC reports unusable material only as "failed to bind", so each problem is named here first.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from cnm_policy.errors import ServerConfigError

__all__ = ["TlsConfig"]


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """PEM material for TLS; with `client_ca`, clients must present a certificate it signed."""

    cert_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_files(cls, cert: Path, key: Path, client_ca: Path | None = None) -> TlsConfig:
        """Read and check the PEM files; anything gRPC could not use is a `ServerConfigError`.

        gRPC only reports unusable material as "failed to bind", so it is checked here first.
        """
        config = cls(
            cert_chain=_read(cert, "--tls-cert"),
            private_key=_read(key, "--tls-key"),
            client_ca=_read(client_ca, "--tls-client-ca") if client_ca else None,
        )
        _check_key_pair(cert, config.cert_chain, key, config.private_key)
        if client_ca is not None and config.client_ca is not None:
            _check_client_ca(client_ca, config.client_ca)
        return config

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials (client certificates required when a client CA is set)."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


def _check_key_pair(cert: Path, cert_pem: bytes, key: Path, key_pem: bytes) -> None:
    """Refuse a certificate or key that is not PEM, an encrypted key, or a key of another cert."""
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise ServerConfigError(f"--tls-cert: `{cert}` holds no PEM certificate")
    if not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", key_pem):
        raise ServerConfigError(f"--tls-key: `{key}` holds no PEM private key")
    if b"ENCRYPTED" in key_pem:
        raise ServerConfigError(f"--tls-key: `{key}` is encrypted: give the key unencrypted")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password callback keeps OpenSSL from ever prompting on the terminal.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ServerConfigError(
                f"--tls-key: the key in `{key}` does not match the certificate in `{cert}`"
            ) from exc
        raise ServerConfigError(
            f"--tls-cert/--tls-key: `{cert}` and `{key}` cannot be loaded: "
            f"{exc.reason or 'invalid PEM'}"
        ) from exc
    except OSError as exc:
        raise ServerConfigError(f"--tls-cert/--tls-key: cannot read: {exc.strerror}") from exc


def _check_client_ca(path: Path, pem: bytes) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cadata=pem.decode("ascii", "replace"))
    except ssl.SSLError as exc:
        raise ServerConfigError(
            f"--tls-client-ca: `{path}` holds no usable CA certificate"
        ) from exc


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ServerConfigError(f"{flag}: cannot read `{path}`: {exc.strerror}") from exc
