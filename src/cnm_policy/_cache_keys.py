"""Cache keys: what makes two checks "the same request", exactly and cheaply.

A key must never let one request answer for another, so equal keys have to mean equal inputs,
down to the type: ``True``, ``1``, ``1.0`` and ``"1"`` are different answers to a condition,
and a ``str`` subclass may behave unlike the string it equals. Building the key is also most
of the cost of a cached hit, so it is done in C.

- **msgpack, strict types** (the usual key): every input of the check, names included, packed
  into one byte string. msgpack gives nil, booleans, integers, floats (all 64 bits: ``-0.0``
  and each NaN keep their bits), strings (UTF-8), maps (in insertion order) and lists markers
  of their own, and with strict types it refuses subclasses, tuples and anything else it does
  not know rather than writing it as a look-alike. Same facts in another order are a miss,
  never a wrong answer.
- **marshal, format 2** (the fallback, for what strict msgpack refuses: tuples and sets in
  attributes, integers beyond 64 bits...): the names kept as exact strings and the rest
  marshalled, also exact-typed. Format 2 has no back-references; later formats mark objects by
  reference count, so equal requests could encode differently. What marshal refuses too is
  not keyed at all: such a request is evaluated every time.
- The two kinds of key (and the caller fingerprints of `cnm_policy.cache`) differ in length,
  so a key of one kind never equals a key of another.
- **What may be stored** (`keyed_request`, on the way in, never on a hit) is a whitelist of what
  both encoders write exactly: None, booleans, integers, floats other than NaN, strings, and
  lists, tuples, dicts and sets of them. Anything else is refused: both encoders write bytes,
  bytearray, memoryview and the like as plain bytes, msgpack writes its own extension objects
  as extension data, and marshal writes code objects with their constants. A NaN is refused
  because conditions compare containers with ``==``, which counts the *same* NaN object as
  equal to itself: two requests with the same NaN bits, shared in one and not in the other,
  could be answered differently. For the same reason a request nested deeper than 32 levels is
  refused: ``==`` on one shared deep container answers by identity, where the cache's copies
  (below) would recurse past the interpreter's limit and fail. A request holding any of these
  can never match a stored key, which never holds one; it is evaluated every time.
- **A stored decision is about its key.** `keyed_request` rebuilds the request a key encodes,
  and the cache evaluates that private copy, not the caller's objects, whose attribute dicts
  may change at any time. So no decision is ever stored under a key whose facts it was not
  computed from.

A packer keeps a buffer between calls, so two calls must never share one: each call takes an
idle packer from a pool and gives it back afterwards (a list's ``pop`` and ``append`` are
atomic), which holds for threads and for a call re-entered from inside another. Only packers
whose buffer stayed small go back, so the pool holds a few KiB per thread that keys at once.
"""

from __future__ import annotations

import marshal
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from msgpack import Packer, unpackb

from cnm_policy.model import Principal, Resource

__all__ = ["Key", "KeyedRequest", "batch_keys", "key_bytes", "keyed_request", "request_key"]

# (digest, msgpack of the whole request) | (digest, the six names, marshal of the rest) |
# (digest, shared fingerprint, item fingerprint): see the module docstring and the cache.
Key = tuple[str, bytes] | tuple[str, str, str, str, str, str, str, bytes] | tuple[str, bytes, bytes]
# (principal, action, resource, context): what a library key encodes (`keyed_request`). The
# types are those of a valid request; an invalid one that could be keyed (an int id, a list
# context) is rebuilt as it was, and fails validation just as the original would.
KeyedRequest = tuple[Principal, str, Resource, Mapping[str, Any]]

_PACKED_PARTS: Final = 2
_MARSHALLED_PARTS: Final = 8
_MARSHAL_FORMAT: Final = 2  # the newest format without back-references (module docstring)
_NO_CONTEXT: Final[Mapping[str, Any]] = {}  # what `context=None` means; never mutated
_SCALARS: Final = frozenset({type(None), bool, int, str})  # storable as they are
_CONTAINERS: Final = frozenset({tuple, list, set, frozenset})  # storable if their items are
_MAX_DEPTH: Final = 32  # levels of nesting a stored request may have (module docstring)
_PACKER_BUFFER: Final = 1024  # starting size; a packer grows its buffer as needed
_PACKER_KEPT_BELOW: Final = 16 * 1024  # a packer that grew past this is not pooled again

# Typed loosely on purpose: refusing values that are not plain data is its job here.
_dumps: Callable[[Any, int], bytes] = marshal.dumps


class _KeyPacker:
    """A strict msgpack packer that notes, instead of raising, a value it does not take.

    strict msgpack raises on a tuple or a subclass, and raising out of its C code builds a
    traceback per level: three times the cost of the marshal key that follows. Its `default`
    hook is called for such values instead; it sets `refused` and lets the packing finish
    (writing nil), and the caller throws that output away.
    """

    __slots__ = ("pack", "refused")

    def __init__(self) -> None:
        self.refused = False
        packer = Packer(
            default=self._refuse,
            strict_types=True,
            use_bin_type=True,
            use_single_float=False,
            buf_size=_PACKER_BUFFER,
        )
        self.pack: Callable[[Any], bytes] = packer.pack

    def _refuse(self, value: object) -> None:
        self.refused = True


_idle_packers: list[_KeyPacker] = []


def request_key(
    digest: str,
    principal: Principal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any] | None,
) -> Key | None:
    """The key of one check under policy `digest`, or ``None`` when it cannot be keyed exactly.

    Only the exact model classes are keyed: a look-alike is evaluated (and rejected) instead.
    Roles must be a tuple, so that a generator (which the key would use up) or a list never
    shares a key with the tuple the engine would see.
    """
    if type(principal) is not Principal or type(resource) is not Resource:
        return None
    roles = principal.roles
    if type(roles) is tuple:
        try:
            packer = _idle_packers.pop()
        except IndexError:
            packer = _KeyPacker()
        packed = None
        try:  # noqa: SIM105 (contextlib.suppress costs a tenth of a hit)
            packed = packer.pack(
                [
                    principal.id,
                    principal.tenant,
                    action,
                    resource.kind,
                    resource.id,
                    resource.tenant,
                    principal.attributes,
                    _NO_CONTEXT if context is None else context,
                    resource.attributes,
                    *roles,
                ]
            )
        except Exception:  # a value msgpack cannot write at all (a strided memoryview...)
            pass  # the packer has emptied its buffer on the way out
        if packer.refused:  # a value strict msgpack does not take (a tuple...): use marshal
            packer.refused = False
        elif packed is not None:
            if len(packed) < _PACKER_KEPT_BELOW:
                _idle_packers.append(packer)
            return (digest, packed)
        _idle_packers.append(packer)
    return _marshalled_key(digest, principal, action, resource, context)


def _marshalled_key(
    digest: str,
    principal: Principal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any] | None,
) -> Key | None:
    """The fallback key: the names kept as they are (exact strings only), the rest marshalled."""
    principal_id = principal.id
    tenant = principal.tenant
    kind = resource.kind
    resource_id = resource.id
    resource_tenant = resource.tenant
    if not (
        type(principal_id) is str
        and type(tenant) is str
        and type(action) is str
        and type(kind) is str
        and type(resource_id) is str
        and type(resource_tenant) is str
    ):
        return None
    try:
        rest = _dumps(
            (
                principal.roles,
                principal.attributes,
                _NO_CONTEXT if context is None else context,
                resource.attributes,
            ),
            _MARSHAL_FORMAT,
        )
    except Exception:  # marshal refuses anything but exact built-in types (ValueError)
        return None
    return (digest, principal_id, tenant, action, kind, resource_id, resource_tenant, rest)


def batch_keys(
    digest: str,
    principal: Principal,
    items: Sequence[tuple[str, Resource]],
    context: Mapping[str, Any] | None,
) -> list[Key | None]:
    """The key of each item, as a single check of it would have."""
    keys: list[Key | None] = []
    for item in items:
        try:
            action, resource = item
        except (TypeError, ValueError):  # malformed item: the engine reports it
            keys.append(None)
        else:
            keys.append(request_key(digest, principal, action, resource, context))
    return keys


def key_bytes(key: Key) -> int:
    """At most how many bytes of request `key` holds (the digest is shared by all keys).

    A name counts four bytes per character unless it is ASCII (one byte each in CPython).
    """
    return sum(
        len(part) if type(part) is bytes or part.isascii() else 4 * len(part) for part in key[1:]
    )


def keyed_request(key: Key) -> KeyedRequest | None:
    """The request library key `key` encodes, rebuilt from the key; ``None`` if not storable.

    The cache evaluates this copy, never the caller's objects, before it stores a decision
    under `key`. Attribute dicts are mutable: if the caller's objects changed between their
    encoding and their evaluation (another thread updating a shared session's attributes),
    a decision about other facts would be stored under this key and answer requests it was
    never computed for. The copy is private to the cache and holds exactly what the key says.

    ``None`` when the key holds a value outside the whitelist (module docstring), and for a
    caller fingerprint, which encodes no request the cache could rebuild.
    """
    try:
        if len(key) == _PACKED_PARTS:
            decoded = unpackb(key[-1], raw=False, strict_map_key=False, timestamp=0)
            if not _plain(decoded):
                return None
            principal_id, tenant, action, kind, resource_id, resource_tenant, *rest = decoded
            principal_attributes, context, resource_attributes, *roles = rest
            roles = tuple(roles)
        elif len(key) == _MARSHALLED_PARTS:
            decoded = marshal.loads(key[-1])
            if not _plain(decoded):
                return None
            _, principal_id, tenant, action, kind, resource_id, resource_tenant, _ = key
            roles, principal_attributes, context, resource_attributes = decoded
        else:
            return None
    except Exception:  # e.g. extension data msgpack cannot read back: not stored
        return None
    return (
        Principal(principal_id, tenant, roles, principal_attributes),
        action,
        Resource(kind, resource_id, resource_tenant, resource_attributes),
        context,
    )


def _plain(decoded: object) -> bool:
    """Whether `decoded` holds only whitelisted values, nested at most `_MAX_DEPTH` deep."""
    level: list[Any] = [decoded]
    for _ in range(_MAX_DEPTH):
        nested: list[Any] = []
        for value in level:
            kind = type(value)
            if kind in _SCALARS:
                continue
            if kind is float:
                if math.isnan(value):
                    return False
            elif kind is dict:
                nested.extend(value)
                nested.extend(value.values())
            elif kind in _CONTAINERS:
                nested.extend(value)
            else:
                return False
        if not nested:
            return True
        level = nested
    return False
