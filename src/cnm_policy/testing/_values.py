"""A test case's YAML values as request values: plain data, and principals (or actors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnm_policy.model import Principal

__all__ = ["plain_value", "principal_from"]


def principal_from(part: Mapping[str, Any]) -> Principal:
    """The principal (or actor) a case's fixture describes."""
    return Principal(
        id=part.get("id", ""),
        tenant=part.get("tenant", ""),
        roles=tuple(part.get("roles", ())),
        attributes=dict(part.get("attributes", {})),
    )


def plain_value(value: Any) -> Any:
    """Line-annotated YAML values -> plain dicts and lists (what a request carries).

    The YAML reader yields JSON types only (an unquoted timestamp stays the string written).
    """
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    return value
