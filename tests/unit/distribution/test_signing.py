"""Signing keys: PEM files in, refusals named by file, signatures bound to one key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cnm_policy.distribution.signing import (
    key_id,
    load_private_key,
    load_public_key,
    parse_signature,
    sign,
    verify,
)
from cnm_policy.errors import BundleSignatureError, PolicySourceError


def write_keys(tmp_path: Path) -> tuple[Path, Path]:
    """An Ed25519 key pair as PEM files, as `openssl genpkey -algorithm ed25519` writes them."""
    key = Ed25519PrivateKey.generate()
    private = tmp_path / "key.pem"
    public = tmp_path / "key.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_a_signature_made_with_a_pem_key_verifies_with_its_public_pem(tmp_path: Path) -> None:
    """The files round-trip and the key ids agree."""
    private_path, public_path = write_keys(tmp_path)
    private, public = load_private_key(private_path), load_public_key(public_path)
    signature = parse_signature(sign(private, b"manifest").render())
    verify(public, signature, b"manifest")
    assert key_id(public) == signature.key_id


def test_a_signature_over_other_bytes_is_refused(tmp_path: Path) -> None:
    """One changed byte of the manifest and the signature fails."""
    private_path, public_path = write_keys(tmp_path)
    signature = sign(load_private_key(private_path), b"manifest")
    with pytest.raises(BundleSignatureError, match="does not verify"):
        verify(load_public_key(public_path), signature, b"manifesT")


@pytest.mark.parametrize(
    "text",
    [b"{}", b"not json", b'{"algorithm": "ed25519", "key_id": "a", "signature": "!!"}', b"\xff"],
)
def test_malformed_signature_files_are_refused(text: bytes) -> None:
    """A signature file that is not ours is an error, not "unsigned"."""
    with pytest.raises(BundleSignatureError, match="malformed"):
        parse_signature(text)


def test_another_algorithm_is_refused() -> None:
    """Only Ed25519 signatures are accepted."""
    text = b'{"algorithm": "rsa", "key_id": "a", "signature": "AAAA"}'
    with pytest.raises(BundleSignatureError, match="signed with `rsa`, not ed25519"):
        parse_signature(text)


def test_keys_that_are_missing_garbage_or_not_ed25519_are_named(tmp_path: Path) -> None:
    """Each refusal names the file; an ECDSA key is not taken for an Ed25519 one."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    messages = []
    for load, path in [
        (load_private_key, tmp_path / "missing.pem"),
        (load_public_key, garbage),
        (load_private_key, ec),
    ]:
        with pytest.raises(PolicySourceError) as caught:
            load(path)
        messages.append(str(caught.value))
    assert messages == [
        f"cannot read private key `{tmp_path / 'missing.pem'}`: No such file or directory",
        f"public key `{garbage}` is not a PEM public key",
        f"signing key `{ec}` is not an Ed25519 private key",
    ]
