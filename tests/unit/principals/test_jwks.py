"""The key set: read whole and bounded; refreshed in the background when a new key id shows up."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from cnm_policy.errors import ServerConfigError, UnauthenticatedError
from cnm_policy.principals import JwksSource, JwtConfig, JwtVerifier
from tests.unit.principals.jwt_keys import AUDIENCE, ISSUER, NOW, Keys


def test_a_rotated_key_is_fetched_once_a_token_names_it(tmp_path: Path) -> None:
    """Unknown kid: refused now, fetched in the background, accepted after."""
    keys = Keys(tmp_path)
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    published = [keys.jwks.read_bytes()]
    fetched = threading.Event()

    def fetch(url: str) -> bytes:
        fetched.set()
        return published[-1]

    ticks = iter(range(0, 10_000, 100))
    source = JwksSource("https://idp.test/jwks.json", fetch=fetch, clock=lambda: next(ticks))
    config = JwtConfig(jwks="https://idp.test/jwks.json", issuer=ISSUER, audience=AUDIENCE)
    verifier = JwtVerifier(config, source, clock=lambda: NOW)
    token = keys.token(key=rotated)
    published.append(json.dumps({"keys": [rotated.as_dict(private=False)]}).encode())
    fetched.clear()
    with pytest.raises(UnauthenticatedError):
        verifier.verify(token)
    assert fetched.wait(5)
    deadline = time.monotonic() + 5
    while "rsa-2" not in [key.kid for key in source.keys] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert verifier.verify(token).claims["sub"] == "u-17"


def test_private_key_parts_are_dropped(tmp_path: Path) -> None:
    """A JWKS that leaks private parts still yields public keys only."""
    key = RSAKey.generate_key(2048, parameters={"kid": "k"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    assert [k.is_private for k in JwksSource(str(path)).keys] == [False]


@pytest.mark.parametrize(
    "text", ["not json", '{"keys": []}', '{"keys": [1]}', '{"keys": [{"kty": "RSA"}]}']
)
def test_a_bad_key_set_stops_startup(tmp_path: Path, text: str) -> None:
    """A key set that cannot verify anything is a configuration error."""
    path = tmp_path / "jwks.json"
    path.write_text(text)
    with pytest.raises(ServerConfigError):
        JwksSource(str(path))


def test_keys_over_plain_http_are_refused() -> None:
    """Keys fetched without TLS could be anyone's."""
    with pytest.raises(ServerConfigError):
        JwksSource("http://idp.test/jwks.json")
