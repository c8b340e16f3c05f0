"""Hypothesis strategies and helpers for the decision cache tests.

The cache is only as good as its key, so requests here are built to collide: attribute values
that are equal in Python but not to the engine (``True`` / ``1`` / ``1.0`` / ``"1"``), nested
values, look-alike objects the key must refuse, tenants that differ by one segment, and
maintenance windows whose boundaries the fake clock is steered across.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from cnm_policy import Principal, Resource
from cnm_policy.engine import PolicySnapshot
from tests.strategies import NOW, TENANTS, GeneratedRule, rules, snapshot_of

__all__ = [
    "ANCHOR_RULES",
    "CONFUSABLE_VALUES",
    "NOW",
    "FakeClock",
    "LookAlikeStr",
    "Opaque",
    "Request",
    "Tweak",
    "anchor_requests",
    "cache_actions",
    "cache_contexts",
    "cache_principals",
    "cache_requests",
    "cache_resources",
    "clock_steps",
    "policy_versions",
    "tweak",
    "tweaks",
]


class FakeClock:
    """A clock the test moves by hand (epoch seconds); the cache never sleeps in tests."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Opaque:
    """An attribute value that is not plain data; equal to the string it wraps, on purpose."""

    text: str

    def __eq__(self, other: object) -> bool:
        return other == self.text or (isinstance(other, Opaque) and other.text == self.text)

    def __hash__(self) -> int:
        return hash(self.text)


class LookAlikeStr(str):
    """A str subclass: equal to a plain string, but not the exact type the key accepts."""

    __slots__ = ()


# Values that Python considers equal in groups ({True, 1, 1.0}, {False, 0, 0.0}) but the
# engine does not (booleans are not numbers), plus strings, nulls and nested values.
CONFUSABLE_VALUES: tuple[Any, ...] = (
    True,
    False,
    1,
    0,
    1.0,
    0.0,
    "1",
    "true",
    None,
    [True],
    [1],
    {"nested": True},
    {"nested": 1},
    b"1",  # both key encoders write every byte buffer as bytes: these three alike
    bytearray(b"1"),
    memoryview(b"1"),
)

_values = st.sampled_from(CONFUSABLE_VALUES)
# Biased towards the anchor rules' roles, kinds and actions.
_kinds = st.sampled_from(("device", "device", "device", "ticket", "invoice", "ghost-kind"))
cache_actions = st.sampled_from(
    ("read", "configure", "read", "configure", "close", "export", "ghost-action")
)
_extra_values = st.one_of(_values, st.builds(Opaque, st.sampled_from(("true", "1"))))

# Rules every version draws from. The window rules allow a typical request (a NOC engineer
# or a customer admin on a device) and the deny rules each read one more input, so changing
# almost any single input of such a request can change its answer. Versions keep a random
# subset, so a rule one version has may be missing from the next.
_DEVICE_ROLES = ("i-noc", "c-admin")
_DEVICE_ACTIONS = ("read", "configure")
ANCHOR_RULES = (
    GeneratedRule(
        "anchor-noc-window",
        "allow",
        ("i-noc",),
        ("device",),
        _DEVICE_ACTIONS,
        "any",
        (),
        "within_window(context.window)",
    ),
    GeneratedRule(
        "anchor-customer-window",
        "allow",
        ("c-admin",),
        ("device",),
        _DEVICE_ACTIONS,
        "subtree",
        (),
        "within_window(context.window)",
    ),
    GeneratedRule(
        "anchor-flag",
        "deny",
        _DEVICE_ROLES,
        ("device",),
        _DEVICE_ACTIONS,
        "any",
        (),
        "resource.attributes.flag == true",
    ),
    GeneratedRule(
        "anchor-mfa",
        "deny",
        _DEVICE_ROLES,
        ("device",),
        ("configure",),
        "any",
        (),
        "principal.attributes.mfa != true",
    ),
    GeneratedRule(
        "anchor-level",
        "deny",
        _DEVICE_ROLES,
        ("device",),
        ("read",),
        "any",
        (),
        "principal.attributes.level == 1",
    ),
    GeneratedRule(
        "anchor-identity",
        "deny",
        _DEVICE_ROLES,
        ("device",),
        _DEVICE_ACTIONS,
        "any",
        (),
        'principal.id == "u-2" and resource.id == "r-2"',
    ),
    GeneratedRule(
        "anchor-ticket",
        "deny",
        _DEVICE_ROLES,
        ("device",),
        _DEVICE_ACTIONS,
        "any",
        (),
        "context.ticket == true",
    ),
)

# Window boundaries a few seconds around NOW, so that small clock steps cross them.
# Most windows are open at NOW (so the window rules allow and the deny rules matter).
_offsets = st.sampled_from((-5.0, 0.0, -1.0, -20.0, 3.0, 10.0))


@st.composite
def _windows(draw: st.DrawFn) -> Any:
    start = NOW + draw(_offsets)
    end = start + draw(st.sampled_from((8.0, 30.0, 1.0)))
    # Rarely malformed (end before start): a condition error, which must fail closed.
    return draw(
        _rarely(st.just({"start": start, "end": end}), st.just({"start": end, "end": start}))
    )


def _rarely(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> Any:
    """`common` most of the time, `rare` about one time in twenty (keyed on a value in the middle
    of the range: hypothesis favours the ends)."""
    return st.integers(0, 19).flatmap(lambda n: rare if n == 7 else common)


_role_sets = st.sampled_from(
    (
        ("i-noc",),
        ("c-admin",),
        ("c-view",),
        ("i-lead",),
        ("i-support",),
        ("c-bill",),
        (),
        ("ghost",),
        ("c-admin", "i-noc"),  # mixed sides: refused
    )
)
_bad_tenants = st.sampled_from(("", "acme//x", LookAlikeStr("acme")))


@st.composite
def cache_principals(draw: st.DrawFn) -> Principal:
    """Principals of `tests.strategies` roles whose attributes are deliberately confusable."""
    attributes: dict[str, Any] = {}
    if draw(st.booleans()):
        attributes["mfa"] = draw(_values)
    if draw(st.booleans()):
        attributes["level"] = draw(st.sampled_from((1, 1.0, 5, "high", True)))
    if draw(st.booleans()):
        attributes["assigned_tenants"] = draw(
            st.lists(st.sampled_from(TENANTS), max_size=2, unique=True)
        )
    if draw(_rarely(st.just(False), st.just(True))):
        attributes["extra"] = draw(_extra_values)
    return Principal(
        id=draw(st.sampled_from(("u-1", "u-2"))),
        tenant=draw(_rarely(st.sampled_from(TENANTS), _bad_tenants)),
        roles=draw(_role_sets),
        attributes=attributes,
    )


@st.composite
def cache_resources(draw: st.DrawFn, near: str | None = None) -> Resource:
    """Resources whose `flag` attribute takes confusable values, often in or under `near`."""
    attributes: dict[str, Any] = {}
    if draw(st.booleans()):
        attributes["flag"] = draw(_values)
    if draw(_rarely(st.just(False), st.just(True))):
        attributes["extra"] = draw(_extra_values)
    tenants = st.sampled_from(TENANTS)
    if near:
        tenants = st.one_of(st.just(near), st.just(f"{near}/site-1"), tenants)
    return Resource(
        kind=draw(_kinds),
        id=draw(st.sampled_from(("r-1", "r-2"))),
        tenant=draw(_rarely(tenants, st.just("not a tenant"))),
        attributes=attributes,
    )


@st.composite
def cache_contexts(draw: st.DrawFn) -> dict[str, Any] | None:
    """None, or a context with a window near NOW and maybe a ticket (`tests.strategies` names)."""
    if draw(_rarely(st.just(False), st.just(True))):
        return None
    context: dict[str, Any] = {}
    window = draw(_windows())
    if window is not None:
        context["window"] = window
    if draw(st.booleans()):
        context["ticket"] = draw(st.sampled_from(("CHG-1", 1, True)))
    return context


@st.composite
def anchor_requests(draw: st.DrawFn) -> Request:
    """A NOC engineer or customer admin on a device: the anchor rules decide, so the answer
    depends on the window (and expires), on the tenants, and on every attribute they read."""
    attributes = {"mfa": draw(_values)}
    if draw(st.booleans()):
        attributes["level"] = draw(st.sampled_from((1, 1.0, 5, True)))
    principal = Principal(
        draw(st.sampled_from(("u-1", "u-2"))),
        draw(st.sampled_from(TENANTS)),
        draw(st.sampled_from((("i-noc",), ("c-admin",)))),
        attributes,
    )
    resource = replace(draw(cache_resources(principal.tenant)), kind="device")
    context: dict[str, Any] = {"window": draw(_windows())}
    if draw(st.booleans()):
        context["ticket"] = draw(st.sampled_from((True, 1, "CHG-1")))
    return (principal, draw(st.sampled_from(("read", "configure"))), resource, context)


@st.composite
def cache_requests(draw: st.DrawFn) -> Request:
    """Anchor requests half of the time; otherwise anything, the resource often nearby."""
    if draw(st.booleans()):
        return draw(anchor_requests())
    principal = draw(cache_principals())
    near = principal.tenant if type(principal.tenant) is str else None
    return (principal, draw(cache_actions), draw(cache_resources(near)), draw(cache_contexts()))


Request = tuple[Principal, str, Resource, dict[str, Any] | None]
Tweak = tuple[str, Any]

# One field of a request and a new value for it: near-duplicates of a cached request are where
# a key that misses one input would serve a wrong answer.
tweaks: st.SearchStrategy[Tweak] = st.one_of(
    st.tuples(st.just("principal.mfa"), _values),
    st.tuples(st.just("resource.flag"), _values),
    st.tuples(st.just("principal.level"), st.sampled_from((1, 1.0, 5, "1", True))),
    st.tuples(st.just("context.ticket"), st.sampled_from((True, 1, "CHG-1", None))),
    st.tuples(st.just("principal.tenant"), st.sampled_from(TENANTS)),
    st.tuples(st.just("resource.tenant"), st.sampled_from(TENANTS)),
    st.tuples(st.just("principal.id"), st.sampled_from(("u-2", "u-1", "u-3"))),
    st.tuples(st.just("resource.id"), st.sampled_from(("r-2", "r-1", ""))),
    st.tuples(st.just("principal.roles"), _role_sets),
    st.tuples(st.just("action"), cache_actions),
    st.tuples(st.just("resource.kind"), _kinds),
    st.tuples(st.just("context.window"), _windows()),
    st.tuples(st.just("context"), st.sampled_from((None, {}))),
)


def tweak(request: Request, change: Tweak) -> Request:
    """`request` with the one field named by `change` set to its value."""
    principal, action, resource, context = request
    field, value = change
    section, _, name = field.partition(".")
    if section == "principal" and name in ("mfa", "level"):
        principal = replace(principal, attributes={**principal.attributes, name: value})
    elif section == "principal":
        principal = replace(principal, **{name: value})
    elif section == "resource" and name == "flag":
        resource = replace(resource, attributes={**resource.attributes, name: value})
    elif section == "resource":
        resource = replace(resource, **{name: value})
    elif field == "action":
        action = value
    elif field == "context":
        context = value
    else:
        context = {**(context or {}), name: value}
    return (principal, action, resource, context)


# Forward steps land on and just around window boundaries; a few go back in time.
clock_steps = st.sampled_from((0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 8.0, 15.0, 31.0, -3.0, -30.0))


@st.composite
def policy_versions(draw: st.DrawFn, count: int = 3) -> list[PolicySnapshot]:
    """`count` random policies over `tests.strategies` roles and kinds, with distinct digests.

    Each version keeps some of the previous version's random rules, adds a few, and draws its
    own subset of the anchor rules: versions that differ a little are the ones where a stale
    cached answer would look plausible.
    """
    base = [draw(rules(i)) for i in range(draw(st.integers(0, 4)))]
    versions = []
    current = base
    for number in range(1, count + 1):
        if number > 1:
            kept = [rule for rule in current if draw(st.booleans())]
            current = kept + [draw(rules(100 * number + i)) for i in range(draw(st.integers(0, 2)))]
        anchors = [rule for rule in ANCHOR_RULES if draw(st.sampled_from((True, True, False)))]
        versions.append(snapshot_of(current + anchors or list(ANCHOR_RULES), version=str(number)))
    return versions
