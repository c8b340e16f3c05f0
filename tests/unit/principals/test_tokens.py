"""JWT bearer tokens: only a well-signed, current token for us, from our issuer, is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnm_policy.errors import ServerConfigError, UnauthenticatedError
from cnm_policy.model import Decision, Principal
from cnm_policy.principals import (
    JwksSource,
    JwtConfig,
    JwtVerifier,
    PrincipalResolver,
    bearer_token,
    capped,
)
from tests.unit.principals.jwt_keys import (
    AUDIENCE,
    ISSUER,
    NOW,
    Keys,
    hmac_with_public_key,
    unsigned_token,
)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    """Fresh keys for each test, published in a JWKS file."""
    return Keys(tmp_path)


def verifier(keys: Keys, now: float = NOW, **config: object) -> JwtVerifier:
    """A verifier for the test issuer and audience, its clock at `now`."""
    settings = {"issuer": ISSUER, "audience": AUDIENCE, "leeway": 0, **config}
    jwt_config = JwtConfig(jwks=str(keys.jwks), **settings)  # type: ignore[arg-type]
    return JwtVerifier(jwt_config, JwksSource(str(keys.jwks)), clock=lambda: now)


def refusal(keys: Keys, token: str, **config: object) -> str:
    """The code a token is refused with."""
    with pytest.raises(UnauthenticatedError) as caught:
        verifier(keys, NOW, **config).verify(token)
    return caught.value.code


def test_a_good_token_yields_its_claims_and_exp(keys: Keys) -> None:
    """A token signed by a published key, for our audience and issuer, is accepted."""
    verified = verifier(keys).verify(keys.token())
    assert ("u-17", "acme/emea", float(NOW + 600)) == (
        verified.claims["sub"],
        verified.claims["tenant"],
        verified.expires_at,
    )


def test_an_ec_token_is_accepted_when_its_algorithm_is_allowed(keys: Keys) -> None:
    """ES256 is in the default allow-list."""
    assert verifier(keys).verify(keys.token(alg="ES256")).claims["sub"] == "u-17"


def test_an_algorithm_outside_the_allow_list_is_refused(keys: Keys) -> None:
    """A valid ES256 token is refused when only RS256 is allowed."""
    assert refusal(keys, keys.token(alg="ES256"), algorithms=("RS256",)) == "token_invalid"


def test_an_expired_token_is_refused(keys: Keys) -> None:
    """`exp` in the past: token_expired."""
    assert refusal(keys, keys.token(exp=NOW - 1)) == "token_expired"


def test_a_token_not_valid_yet_is_refused(keys: Keys) -> None:
    """`nbf` in the future: token_not_yet_valid."""
    assert refusal(keys, keys.token(nbf=NOW + 60)) == "token_not_yet_valid"


def test_a_token_without_exp_is_refused(keys: Keys) -> None:
    """A token that never expires is not accepted."""
    assert refusal(keys, keys.token(exp=None)) == "token_invalid"


@pytest.mark.parametrize(
    "claims", [{"iss": "https://evil.test"}, {"aud": "someone-else"}, {"iss": None}]
)
def test_a_wrong_or_missing_issuer_or_audience_is_refused(
    keys: Keys, claims: dict[str, object]
) -> None:
    """Issuer and audience must be exactly ours."""
    assert refusal(keys, keys.token(claims)) == "token_invalid"


def test_a_token_signed_by_another_key_is_refused(keys: Keys) -> None:
    """Same kid, another key: the signature does not verify."""
    assert refusal(keys, keys.token(key=keys.stranger)) == "token_invalid"


def test_alg_none_is_refused(keys: Keys) -> None:
    """An unsigned token is never accepted."""
    claims = {"sub": "u-17", "tenant": "acme", "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 60}
    assert refusal(keys, unsigned_token(claims)) == "token_invalid"


def test_an_hmac_keyed_with_the_public_key_is_refused(keys: Keys) -> None:
    """Algorithm confusion: HS256 over the RSA public key is not a signature of ours."""
    claims = {"sub": "root", "tenant": "acme", "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 60}
    token = hmac_with_public_key(claims, keys.rsa.as_pem(private=False), "rsa-1")
    assert refusal(keys, token) == "token_invalid"
    assert refusal(keys, token, algorithms=("RS256", "ES256")) == "token_invalid"


@pytest.mark.parametrize("algorithms", [("none",), ("HS256",), ()])
def test_none_and_symmetric_algorithms_cannot_be_configured(
    keys: Keys, algorithms: tuple[str, ...]
) -> None:
    """The allow-list takes asymmetric algorithms only."""
    with pytest.raises(ServerConfigError):
        JwtConfig(jwks=str(keys.jwks), issuer=ISSUER, audience=AUDIENCE, algorithms=algorithms)


def test_garbage_is_refused(keys: Keys) -> None:
    """Not a JWT at all: token_invalid, not a crash."""
    assert refusal(keys, "not.a.token") == "token_invalid"
    assert refusal(keys, "x" * 20_000) == "token_invalid"


def test_a_remembered_token_is_refused_once_expired() -> None:
    """The memo never serves a token past its `exp`."""
    now = [float(NOW)]
    keys = Keys(Path(__import__("tempfile").mkdtemp()))
    config = JwtConfig(jwks=str(keys.jwks), issuer=ISSUER, audience=AUDIENCE, leeway=0)
    checker = JwtVerifier(config, JwksSource(str(keys.jwks)), clock=lambda: now[0])
    token = keys.token(exp=NOW + 5)
    assert checker.verify(token).claims["sub"] == "u-17"
    now[0] = NOW + 6
    with pytest.raises(UnauthenticatedError) as caught:
        checker.verify(token)
    assert caught.value.code == "token_expired"


def test_valid_until_is_capped_by_the_token_exp(keys: Keys) -> None:
    """A decision made on a token is never valid past the token's `exp`."""
    resolver = PrincipalResolver(verifier=verifier(keys))
    resolved = resolver.resolve(Principal("", ""), keys.token(exp=NOW + 100))
    timeless = Decision(True, ("r",), "ok", "b", "1", "d")
    later = Decision(True, ("r",), "ok", "b", "1", "d", valid_until=NOW + 1000)
    sooner = Decision(True, ("r",), "ok", "b", "1", "d", valid_until=NOW + 50)
    assert [capped(d, resolved.expires_at).valid_until for d in (timeless, later, sooner)] == [
        NOW + 100,
        NOW + 100,
        NOW + 50,
    ]


@pytest.mark.parametrize(
    ("header", "expected"), [(None, None), ("Bearer abc", "abc"), ("bearer  abc ", "abc")]
)
def test_bearer_token_reads_the_authorization_header(
    header: str | None, expected: str | None
) -> None:
    """`Authorization: Bearer <token>`, scheme case-insensitive."""
    assert expected == bearer_token(header)


def test_another_authorization_scheme_is_refused() -> None:
    """Basic credentials are not a bearer token."""
    with pytest.raises(UnauthenticatedError):
        bearer_token("Basic dXNlcjpwYXNz")


def test_a_jwks_with_a_symmetric_key_is_refused(tmp_path: Path) -> None:
    """A shared secret published as a key set is a configuration error."""
    path = tmp_path / "jwks.json"
    path.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    with pytest.raises(ServerConfigError):
        JwksSource(str(path))
