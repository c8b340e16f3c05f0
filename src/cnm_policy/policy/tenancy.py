"""Tenant paths: the customer organisation hierarchy (``acme``, ``acme/emea``, ``acme/emea/paris``).

Containment is decided on whole path segments, never on string prefixes, so ``acme`` can never
reach ``acme-evil`` or ``acmex/...``. Every tenant is validated once at the edge; after that a
segment-safe prefix test (``child.startswith(root + "/")``) is both correct and fast.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["MAX_TENANT_DEPTH", "MAX_TENANT_LENGTH", "is_within", "tenant_problem"]

MAX_TENANT_DEPTH = 16
MAX_TENANT_LENGTH = 256
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def tenant_problem(tenant: object) -> str | None:
    """Why `tenant` is not a valid organisation path, or ``None`` when it is."""
    if not isinstance(tenant, str):
        return "must be a string"
    return _string_tenant_problem(tenant)


@lru_cache(maxsize=8192)
def _string_tenant_problem(tenant: str) -> str | None:
    # Tenants repeat across requests; caching keeps validation off the hot path's profile.
    if not tenant:
        return "must not be empty"
    if len(tenant) > MAX_TENANT_LENGTH:
        return f"is longer than {MAX_TENANT_LENGTH} characters"
    segments = tenant.split("/")
    if len(segments) > MAX_TENANT_DEPTH:
        return f"is deeper than {MAX_TENANT_DEPTH} levels"
    for index, segment in enumerate(segments):
        if not segment:
            return f"has an empty segment ({_empty_segment_cause(index, len(segments))})"
        if not _SEGMENT.fullmatch(segment):
            shown = segment if len(segment) <= 63 else segment[:60] + "..."
            return (
                f"has an invalid segment `{shown}` (segments are 1-63 characters of "
                "letters, digits, `_`, `.` or `-`, starting with a letter or digit)"
            )
    return None


def _empty_segment_cause(index: int, count: int) -> str:
    if index == 0:
        return "a leading `/`"
    return "a trailing `/`" if index == count - 1 else "`//`"


def is_within(tenant: str, root: str) -> bool:
    """True when `tenant` is `root` itself or one of its descendants (segment-wise)."""
    # INVARIANT: both arguments passed tenant_problem(); segments never contain "/", so the
    # prefix test below cannot match a sibling such as `acme-evil` for root `acme`.
    return tenant == root or tenant.startswith(root + "/")
