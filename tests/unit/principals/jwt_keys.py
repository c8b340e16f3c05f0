"""Keys and tokens made in the test: a JWKS file, signed tokens, and forged ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ISSUER = "https://idp.test"
AUDIENCE = "cnm-policy"
NOW = 1_800_000_000


class Keys:
    """An RSA and an EC signing key published in a JWKS file, and a stranger's key."""

    def __init__(self, tmp_path: Path) -> None:
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
        self.stranger = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
        self.jwks = tmp_path / "jwks.json"
        keys = [self.rsa.as_dict(private=False), self.ec.as_dict(private=False)]
        self.jwks.write_text(json.dumps({"keys": keys}))

    def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        key: Any = None,
        alg: str = "RS256",
        **overrides: Any,
    ) -> str:
        """A token with good defaults (sub, tenant, roles, iss, aud, exp) unless overridden."""
        body = {
            "sub": "u-17",
            "tenant": "acme/emea",
            "roles": ["customer-viewer"],
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": NOW - 10,
            "exp": NOW + 600,
            **(claims or {}),
            **overrides,
        }
        body = {k: v for k, v in body.items() if v is not None}
        signer = key if key is not None else (self.ec if alg.startswith("ES") else self.rsa)
        return jwt.encode({"alg": alg, "kid": signer.kid}, body, signer, algorithms=[alg])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_token(claims: dict[str, Any]) -> str:
    """`alg: none`: a token anyone can write."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hmac_with_public_key(claims: dict[str, Any], public_pem: bytes, kid: str) -> str:
    """Algorithm confusion: HS256 keyed with the verifier's own public key."""
    header = _b64(json.dumps({"alg": "HS256", "kid": kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"
