"""Ed25519 signatures over an archive's manifest, with `cryptography` (no home-made crypto).

Keys are PEM files (``openssl genpkey -algorithm ed25519``): the private key signs in CI, the
public key verifies in every sidecar. The signature file names the key id (a short hash of the
public key) so a mismatch says which key signed and which one was expected.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cnm_policy.errors import BundleSignatureError, PolicySourceError

__all__ = [
    "MAX_SIGNATURE_BYTES",
    "Signature",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_signature",
    "sign",
    "verify",
]

MAX_SIGNATURE_BYTES = 4096
_MAX_KEY_BYTES = 64 * 1024
_ALGORITHM = "ed25519"
_KEYS = frozenset({"algorithm", "key_id", "signature"})


@dataclass(frozen=True, slots=True)
class Signature:
    """One detached signature: the algorithm, the signer's key id and the raw signature."""

    algorithm: str
    key_id: str
    value: bytes

    def render(self) -> bytes:
        """The signature file's bytes (JSON)."""
        document = {
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.value).decode("ascii"),
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its sha256."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key from a PEM file; raises `PolicySourceError`."""
    key = _load(path, "private")
    if not isinstance(key, Ed25519PrivateKey):
        raise PolicySourceError(f"signing key `{path}` is not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; raises `PolicySourceError`."""
    key = _load(path, "public")
    if not isinstance(key, Ed25519PublicKey):
        raise PolicySourceError(f"public key `{path}` is not an Ed25519 public key")
    return key


def sign(private_key: Ed25519PrivateKey, message: bytes) -> Signature:
    """Sign `message` (the manifest's bytes)."""
    return Signature(_ALGORITHM, key_id(private_key.public_key()), private_key.sign(message))


def parse_signature(data: bytes) -> Signature:
    """Parse a signature file; raises `BundleSignatureError` when it is not one."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise BundleSignatureError(f"the signature is larger than {MAX_SIGNATURE_BYTES} bytes")
    try:
        document: Any = json.loads(data.decode("ascii"))
        if not isinstance(document, dict) or set(document) != _KEYS:
            raise ValueError("wrong keys")
        value = base64.b64decode(document["signature"], validate=True)
        algorithm, signer = document["algorithm"], document["key_id"]
        if not isinstance(algorithm, str) or not isinstance(signer, str):
            raise ValueError("not strings")
    except (ValueError, TypeError, RecursionError):
        raise BundleSignatureError("the archive's signature file is malformed") from None
    if algorithm != _ALGORITHM:
        raise BundleSignatureError(f"the archive is signed with `{algorithm[:20]}`, not ed25519")
    return Signature(algorithm, signer[:64], value)


def verify(public_key: Ed25519PublicKey, signature: Signature | None, message: bytes) -> None:
    """Raise `BundleSignatureError` unless `signature` is `public_key`'s over `message`."""
    expected = key_id(public_key)
    if signature is None:
        raise BundleSignatureError(f"the archive is not signed; key `{expected}` is required")
    if signature.key_id != expected:
        raise BundleSignatureError(
            f"the archive is signed by key `{signature.key_id}`, not by `{expected}`"
        )
    try:
        public_key.verify(signature.value, message)
    except InvalidSignature:
        raise BundleSignatureError(
            f"the archive's signature does not verify with key `{expected}` (tampered)"
        ) from None


def _load(path: str | Path, kind: str) -> object:
    try:
        with open(path, "rb") as stream:
            data = stream.read(_MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise PolicySourceError(f"cannot read {kind} key `{path}`: {exc.strerror}") from None
    try:
        if len(data) > _MAX_KEY_BYTES:
            raise ValueError("too large")
        if kind == "private":
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise PolicySourceError(f"{kind} key `{path}` is not a PEM {kind} key") from None
