"""Cache keys: one exact encoding of every input of a check, and the private copy it rebuilds.

Equal keys must mean equal inputs down to the type, so a key is the policy digest, the six
names (exact strings) and one `marshal` (format 2) of the rest; docs/design/cache.md says why
that encoding is exact and why a miss evaluates the copy `keyed_request` rebuilds.
"""

from __future__ import annotations

import marshal
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from cnm_policy.model import Principal, Resource

__all__ = [
    "Key",
    "KeyedRequest",
    "batch_copy",
    "batch_keys",
    "key_bytes",
    "keyed_request",
    "request_key",
]

# (digest, six names, marshal of roles, attributes and context) | (digest, shared fingerprint,
# item fingerprint): different lengths, so the kinds never answer for each other
Key = tuple[str, str, str, str, str, str, str, bytes] | tuple[str, bytes, bytes]
# (principal, action, resource, context, actor): what a library key encodes (`keyed_request`).
KeyedRequest = tuple[Principal, str, Resource, Mapping[str, Any], Principal | None]
# (principal, items, context) to evaluate, and the key each decision may be stored under
BatchCopy = tuple[
    Principal,
    list[tuple[str, Resource]],
    Mapping[str, Any] | None,
    Principal | None,
    list[Key | None],
]

_LIBRARY_PARTS: Final = 8
_MARSHAL_FORMAT: Final = 2  # the newest format without back-references (docs/design/cache.md)
_NO_CONTEXT: Final[Mapping[str, Any]] = {}  # what `context=None` means; never mutated
_SCALARS: Final = frozenset({type(None), bool, int, str})  # storable as they are
_CONTAINERS: Final = frozenset({tuple, list, set, frozenset})  # storable if their items are
_MAX_DEPTH: Final = 32  # levels of nesting a stored request may have

# Typed loosely on purpose: refusing values that are not plain data is its job here.
_dumps: Callable[[Any, int], bytes] = marshal.dumps


def request_key(
    digest: str,
    principal: Principal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any] | None,
    actor: Principal | None = None,
) -> Key | None:
    """The key of one check under policy `digest`, or ``None`` when it cannot be keyed exactly.

    Only the exact model classes, exact strings as names and a tuple of roles are keyed: a
    look-alike, a generator or a list of roles is evaluated (and rejected, if bad) instead.
    """
    if type(principal) is not Principal or type(resource) is not Resource:
        return None
    acting = None
    if actor is not None:
        if type(actor) is not Principal or type(actor.roles) is not tuple:
            return None
        acting = (actor.id, actor.tenant, actor.roles, actor.attributes)
    principal_id, tenant, roles = principal.id, principal.tenant, principal.roles
    kind, resource_id, resource_tenant = resource.kind, resource.id, resource.tenant
    if not (
        type(principal_id) is str
        and type(tenant) is str
        and type(action) is str
        and type(kind) is str
        and type(resource_id) is str
        and type(resource_tenant) is str
        and type(roles) is tuple
    ):
        return None
    rest = (roles, principal.attributes, _NO_CONTEXT if context is None else context)
    try:
        encoded = _dumps((*rest, resource.attributes, acting), _MARSHAL_FORMAT)
    except Exception:  # marshal refuses anything but exact built-in types (ValueError)
        return None
    return (digest, principal_id, tenant, action, kind, resource_id, resource_tenant, encoded)


def batch_keys(
    digest: str,
    principal: Principal,
    items: Sequence[tuple[str, Resource]],
    context: Mapping[str, Any] | None,
    actor: Principal | None = None,
) -> list[Key | None]:
    """The key of each item, as a single check of it would have."""
    keys: list[Key | None] = []
    for item in items:
        try:
            action, resource = item
        except (TypeError, ValueError):  # malformed item: the engine reports it
            keys.append(None)
        else:
            keys.append(request_key(digest, principal, action, resource, context, actor))
    return keys


def key_bytes(key: Key) -> int:
    """How many bytes of request `key` count against the store's bound: its encoded part (and
    the shared one of a fingerprint). The names are not counted: only a decision is stored, and
    the engine refuses any name over `MAX_ID_LENGTH` characters before deciding."""
    if len(key) == _LIBRARY_PARTS:
        return len(key[-1])
    return len(key[1]) + len(key[2])


def keyed_request(key: Key) -> KeyedRequest | None:
    """The request library key `key` encodes, rebuilt as a private copy; ``None`` if the key
    holds a value outside the whitelist (docs/design/cache.md), or is a caller fingerprint."""
    if len(key) != _LIBRARY_PARTS:
        return None
    try:
        decoded = marshal.loads(key[-1])
    except Exception:  # a value marshal writes but cannot read back: never stored
        return None
    if not _plain(decoded):
        return None
    _, principal_id, tenant, action, kind, resource_id, resource_tenant, _ = key
    roles, attributes, context, resource_attributes, acting = decoded
    return (
        Principal(principal_id, tenant, roles, attributes),
        action,
        Resource(kind, resource_id, resource_tenant, resource_attributes),
        context,
        None if acting is None else Principal(*acting),
    )


def batch_copy(
    keys: Sequence[Key | None],
    principal: Principal,
    items: Sequence[tuple[str, Resource]],
    context: Mapping[str, Any] | None,
    actor: Principal | None = None,
) -> BatchCopy:
    """What a library batch evaluates: the copies its keys rebuild, with the principal, context
    and actor of the first copy; an item whose key holds another principal or context (changed
    while the batch was keyed), or none, is evaluated as given and never stored."""
    copies = [None if key is None else keyed_request(key) for key in keys]
    first = next((copy for copy in copies if copy is not None), None)
    if first is None:
        return principal, list(items), context, actor, [None] * len(keys)
    shared_principal, _, _, shared_context, shared_actor = first
    evaluated: list[tuple[str, Resource]] = []
    keep: list[Key | None] = []
    for key, copy, item in zip(keys, copies, items, strict=True):
        if key is None or copy is None:
            evaluated.append(item)
            keep.append(None)
            continue
        _, action, resource, _, _ = copy
        evaluated.append((action, resource))
        same = copy is first or key == request_key(
            key[0], shared_principal, action, resource, shared_context, shared_actor
        )
        keep.append(key if same else None)
    return shared_principal, evaluated, shared_context, shared_actor, keep


def _plain(decoded: object) -> bool:
    """Whether `decoded` holds only whitelisted values, nested at most `_MAX_DEPTH` deep."""
    level: list[Any] = [decoded]
    scalars, containers = _SCALARS, _CONTAINERS
    for _ in range(_MAX_DEPTH):
        nested: list[Any] = []
        for value in level:
            kind = type(value)
            if kind in scalars:
                continue
            if kind is float:
                if math.isnan(value):
                    return False
            elif kind is dict:
                nested += value
                nested += value.values()
            elif kind in containers:
                nested += value
            else:
                return False
        if not nested:
            return True
        level = nested
    return False
