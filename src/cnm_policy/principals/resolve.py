"""Who asks, completed by the policy information point: a verified token, the directory, or
(only when nothing else is configured, or when explicitly trusted) the request itself.

Nobody grants themselves a role: once tokens or a directory are configured, a request's own
tenant, roles and `assigned_tenants` are ignored unless `trust_request_roles` is set; its other
attributes stay, beneath what the token and the directory say. Every result names its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from cnm_policy.errors import UnauthenticatedError
from cnm_policy.model import Decision, Principal
from cnm_policy.policy import ASSIGNED_TENANTS_ATTRIBUTE
from cnm_policy.policy._principal_mapping import DEFAULT_CLAIMS, ClaimsMapping
from cnm_policy.principals.directory import Directory, plain
from cnm_policy.principals.tokens import JwtVerifier

__all__ = [
    "SOURCE_DIRECTORY",
    "SOURCE_REQUEST",
    "SOURCE_TOKEN",
    "PrincipalResolver",
    "ResolvedPrincipal",
]

SOURCE_REQUEST: Final = "request"
SOURCE_DIRECTORY: Final = "directory"
SOURCE_TOKEN: Final = "token"


@dataclass(frozen=True, slots=True)
class ResolvedPrincipal:
    """The principal to decide for, where its tenant and roles came from, and until when."""

    principal: Principal
    source: str
    expires_at: float | None = None


class PrincipalResolver:
    """Completes principals; `directory()` and `claims()` read the serving versions each call."""

    def __init__(
        self,
        *,
        directory: Callable[[], Directory] | None = None,
        verifier: JwtVerifier | None = None,
        claims: Callable[[], ClaimsMapping | None] = lambda: None,
        trust_request_roles: bool = False,
    ) -> None:
        self._directory = directory
        self._verifier = verifier
        self._claims = claims
        self._trust = trust_request_roles

    @property
    def configured(self) -> bool:
        """True when tokens or a directory are configured (requests are then completed)."""
        return self._directory is not None or self._verifier is not None

    def resolve(self, requested: Principal, token: str | None) -> ResolvedPrincipal:
        """The principal for `requested` (as sent) and the bearer `token` (None: none sent)."""
        if not self.configured:
            return ResolvedPrincipal(requested, SOURCE_REQUEST)
        if token is not None and self._verifier is not None:
            return self._from_token(requested, token, self._verifier)
        if self._directory is not None:
            entry = self._directory().get(requested.id) if requested.id else None
            if entry is not None:
                tenant, roles = entry.tenant, entry.roles
                if self._trust and requested.tenant:
                    tenant, roles = requested.tenant, requested.roles
                attributes = {**self._kept(requested.attributes), **entry.attributes}
                principal = Principal(requested.id, tenant, roles, attributes)
                return ResolvedPrincipal(principal, SOURCE_DIRECTORY)
        if self._trust:
            return ResolvedPrincipal(requested, SOURCE_REQUEST)
        if self._directory is not None:
            raise UnauthenticatedError(
                f"principal `{requested.id[:64]}` is not in the directory", "principal_unknown"
            )
        raise UnauthenticatedError("a bearer token is required", "token_missing")

    def resolve_actor(self, requested: Principal) -> Principal:
        """Who acts on the principal's behalf, vouched for like a principal: completed from the
        directory, taken as sent only when nothing is configured or requests are trusted."""
        if not self.configured or self._trust:
            return requested
        entry = self._directory().get(requested.id) if self._directory and requested.id else None
        if entry is None:
            raise UnauthenticatedError(
                f"actor `{requested.id[:64]}` cannot be vouched for (not in the directory)",
                "actor_unknown",
            )
        attributes = {**self._kept(requested.attributes), **entry.attributes}
        return Principal(requested.id, entry.tenant, entry.roles, attributes)

    def _from_token(
        self, requested: Principal, token: str, verifier: JwtVerifier
    ) -> ResolvedPrincipal:
        verified = verifier.verify(token)
        try:
            principal_id, tenant, roles, attributes = (self._claims() or DEFAULT_CLAIMS).apply(
                verified.claims
            )
            attributes = plain(attributes, "claims")
        except ValueError as exc:
            raise UnauthenticatedError(f"bearer token refused: {exc}", "token_invalid") from None
        entry = self._directory().get(principal_id) if self._directory is not None else None
        merged = {
            **self._kept(requested.attributes),
            **(entry.attributes if entry is not None else {}),
            **attributes,
        }
        principal = Principal(principal_id, tenant, roles, merged)
        return ResolvedPrincipal(principal, SOURCE_TOKEN, verified.expires_at)

    def _kept(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """The request's attributes that do not grant reach (all of them when trusted)."""
        if self._trust:
            return dict(attributes)
        return {k: v for k, v in attributes.items() if k != ASSIGNED_TENANTS_ATTRIBUTE}


def capped(decision: Decision, expires_at: float | None) -> Decision:
    """`decision`, valid no longer than `expires_at` (a token's ``exp``; None: no bound)."""
    if expires_at is None:
        return decision
    if decision.valid_until is not None and decision.valid_until <= expires_at:
        return decision
    return replace(decision, valid_until=expires_at)
