"""`principals.yaml`: which token claims carry a principal's id, tenant, roles and attributes.

Declared in the bundle, so the mapping is reviewed, versioned and digested with the rules it
feeds. A claim is named by its key (``tenant``) or by a path into nested claims
(``[realm_access, roles]``); a token without a mapped claim is refused, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cnm_policy.policy._fields import Report, check_fields, excerpt, mapping
from cnm_policy.policy._yaml import LineDict

__all__ = ["DEFAULT_CLAIMS", "PRINCIPALS_FILE", "ClaimPath", "ClaimsMapping", "parse_claims"]

PRINCIPALS_FILE: Final = "principals.yaml"
_MAX_PATH: Final = 8
_MAX_ATTRIBUTES: Final = 64

ClaimPath = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClaimsMapping:
    """Where each part of a principal comes from in a verified token's claims."""

    id: ClaimPath = ("sub",)
    tenant: ClaimPath = ("tenant",)
    roles: ClaimPath | None = ("roles",)
    attributes: tuple[tuple[str, ClaimPath], ...] = ()

    def apply(self, claims: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...], dict[str, Any]]:
        """(id, tenant, roles, attributes) from `claims`; ValueError names a missing claim."""
        principal_id = _required_text(claims, self.id)
        tenant = _required_text(claims, self.tenant)
        roles: tuple[str, ...] = ()
        if self.roles is not None:
            found = _lookup(claims, self.roles)
            if isinstance(found, str):  # a space-separated claim, as OAuth scopes are
                found = found.split()
            if found is not None and not (
                isinstance(found, list) and all(isinstance(role, str) for role in found)
            ):
                raise ValueError(f"claim `{_shown(self.roles)}` is not a list of role ids")
            roles = tuple(found or ())
        attributes = {}
        for name, path in self.attributes:
            value = _lookup(claims, path)
            if value is not None:
                attributes[name] = value
        return principal_id, tenant, roles, attributes


DEFAULT_CLAIMS: Final = ClaimsMapping()


def _lookup(claims: Mapping[str, Any], path: ClaimPath) -> Any:
    value: Any = claims
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _required_text(claims: Mapping[str, Any], path: ClaimPath) -> str:
    value = _lookup(claims, path)
    if not isinstance(value, str) or not value:
        raise ValueError(f"claim `{_shown(path)}` is missing or not a string")
    return value


def _shown(path: ClaimPath) -> str:
    return ".".join(part[:64] for part in path)


def parse_claims(doc: Any, report: Report) -> ClaimsMapping | None:
    """The mapping in a parsed `principals.yaml` (None: no file); problems go to `report`."""
    if doc is None:
        return None
    file = PRINCIPALS_FILE
    top = mapping(doc, "principals.yaml", file, 1, report)
    if top is None or not check_fields(top, "principals.yaml", ["claims"], [], file, report):
        return None
    node = mapping(top["claims"], "`claims`", file, top.line_of("claims"), report)
    if node is None or not check_fields(
        node, "`claims`", ["tenant"], ["id", "roles", "attributes"], file, report
    ):
        return None
    claims = {
        key: _path(node[key], f"claims.{key}", file, node.line_of(key), report)
        for key in ("id", "tenant", "roles")
        if key in node
    }
    attributes = _attributes(node, file, report)
    if any(value is None for value in claims.values()) or attributes is None:
        return None
    return ClaimsMapping(
        id=claims.get("id") or DEFAULT_CLAIMS.id,
        tenant=claims["tenant"] or DEFAULT_CLAIMS.tenant,
        roles=claims.get("roles", DEFAULT_CLAIMS.roles),
        attributes=attributes,
    )


def _attributes(
    node: LineDict, file: str, report: Report
) -> tuple[tuple[str, ClaimPath], ...] | None:
    if "attributes" not in node:
        return ()
    line = node.line_of("attributes")
    found = mapping(node["attributes"], "`claims.attributes`", file, line, report)
    if found is None:
        return None
    if len(found) > _MAX_ATTRIBUTES:
        report.error("too_many_attributes", f"more than {_MAX_ATTRIBUTES} attributes", file, line)
        return None
    pairs = [
        (
            name,
            _path(value, f"claims.attributes.{excerpt(name)}", file, found.line_of(name), report),
        )
        for name, value in found.items()
    ]
    if any(path is None for _, path in pairs):
        return None
    return tuple((name, path) for name, path in pairs if path is not None)


def _path(value: Any, what: str, file: str, line: int, report: Report) -> ClaimPath | None:
    parts = [value] if isinstance(value, str) else value
    if (
        not isinstance(parts, list)
        or not 0 < len(parts) <= _MAX_PATH
        or not all(isinstance(part, str) and 0 < len(part) <= 256 for part in parts)
    ):
        report.error(
            "invalid_claim",
            f"`{what}` must name a claim, or list up to {_MAX_PATH} keys into nested claims",
            file,
            line,
        )
        return None
    return tuple(parts)
