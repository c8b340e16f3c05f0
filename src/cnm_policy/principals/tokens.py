"""JWT bearer tokens: verified signature, issuer, audience and lifetime, or a coded refusal.

Verification is joserfc's; what is ours is the policy: an algorithm allow-list (never
``none``, never a symmetric one: the keys are public), issuer and audience required, ``exp``
required, and a memo of verified tokens keyed by the whole token and never used past its
``exp`` (so a hit costs one dict lookup and can never outlive the token).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import ClaimsOption

from cnm_policy.cache.store import FifoStore
from cnm_policy.errors import ServerConfigError, UnauthenticatedError
from cnm_policy.principals.jwks import JwksSource

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "MAX_TOKEN_BYTES",
    "JwtConfig",
    "JwtVerifier",
    "VerifiedToken",
    "bearer_token",
]

MAX_TOKEN_BYTES: Final = 16 * 1024
# Asymmetric algorithms only: a verifier holding public keys must never accept an HMAC made
# with one of them as the secret (algorithm confusion), nor an unsigned token.
ALLOWED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ALGORITHMS: Final = ("RS256", "ES256")
_MEMO_ENTRIES: Final = 10_000


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """What a token must satisfy; `leeway` seconds of clock skew are tolerated."""

    jwks: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: int = 30

    def __post_init__(self) -> None:
        refused = [alg for alg in self.algorithms if alg not in ALLOWED_ALGORITHMS]
        if refused or not self.algorithms:
            allowed = ", ".join(sorted(ALLOWED_ALGORITHMS))
            raise ServerConfigError(
                f"JWT algorithms `{','.join(refused)}` are not allowed (allowed: {allowed})"
            )
        if not self.issuer or not self.audience:
            raise ServerConfigError("JWT verification needs an issuer and an audience")


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token's claims, once its signature, issuer, audience and lifetime were checked.

    `expires_at` is its ``exp``: no decision made on it may be valid longer.
    """

    claims: Mapping[str, Any]
    expires_at: float


class JwtVerifier:
    """Verifies bearer tokens against `keys`; `clock` gives epoch seconds."""

    def __init__(
        self,
        config: JwtConfig,
        keys: JwksSource,
        *,
        clock: Callable[[], float] = time.time,
        memo_entries: int = _MEMO_ENTRIES,
    ) -> None:
        self._config = config
        self._keys = keys
        self._clock = clock
        self._memo: FifoStore[str, VerifiedToken] = FifoStore(memo_entries)
        self._iss: ClaimsOption = {"essential": True, "value": config.issuer}
        self._aud: ClaimsOption = {"essential": True, "value": config.audience}
        self._exp: ClaimsOption = {"essential": True}

    def verify(self, token: str) -> VerifiedToken:
        """The verified token, or UnauthenticatedError with a code saying why."""
        now = self._clock()
        found = self._memo.get(token)
        if found is not None and now < found.expires_at + self._config.leeway:
            return found
        verified = self._verify(token, now)
        self._memo.put(token, verified)
        return verified

    def _verify(self, token: str, now: float) -> VerifiedToken:
        if len(token) > MAX_TOKEN_BYTES:
            raise UnauthenticatedError(
                f"bearer token is longer than {MAX_TOKEN_BYTES} bytes", "token_invalid"
            )
        try:
            decoded = jwt.decode(token, self._keys.keys, algorithms=list(self._config.algorithms))
        except JoseError as exc:
            if "kid" in str(exc).lower() or type(exc).__name__ == "InvalidKeyIdError":
                self._keys.unknown_key_seen()
            raise UnauthenticatedError(
                f"bearer token refused: {_reason(exc)}", "token_invalid"
            ) from None
        except Exception:  # malformed input may surface as ValueError/KeyError in the library
            raise UnauthenticatedError("bearer token refused: malformed", "token_invalid") from None
        registry = jwt.JWTClaimsRegistry(
            now=int(now), leeway=self._config.leeway, iss=self._iss, aud=self._aud, exp=self._exp
        )
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise UnauthenticatedError("bearer token has expired", "token_expired") from None
        except JoseError as exc:
            if "not yet valid" in _reason(exc) or "in the future" in _reason(exc):
                raise UnauthenticatedError(
                    "bearer token is not valid yet", "token_not_yet_valid"
                ) from None
            raise UnauthenticatedError(
                f"bearer token refused: {_reason(exc)}", "token_invalid"
            ) from None
        exp = decoded.claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise UnauthenticatedError(
                "bearer token refused: `exp` is not a number", "token_invalid"
            )
        return VerifiedToken(claims=decoded.claims, expires_at=float(exp))


def _reason(error: Exception) -> str:
    """joserfc's description (its own text: no token content), clipped."""
    text = getattr(error, "description", "") or type(error).__name__
    return str(text)[:200]


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (None without one)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("`authorization` is not `Bearer <token>`", "token_invalid")
    return token.strip()
