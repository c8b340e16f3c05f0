"""Network-native condition functions: `ip_in(ip, cidrs)` and `cidr_within(prefix, cidrs)`.

Rules such as "NOC consoles only from the management network" and "a customer edits ACLs only
for prefixes it owns" read addresses, not strings. Parsing is the standard library's
`ipaddress`, strict (host bits set in a prefix are an error); anything malformed is a
condition error, so the rule fails closed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cnm_policy.errors import ConditionError

__all__ = ["NETWORK_FUNCTIONS", "check_literal_networks"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The longest valid text is an IPv6 prefix with a scope-free address (~43 characters).
_MAX_TEXT = 64
_MAX_NETWORKS = 10_000  # prefixes one call may compare against


def _quoted(value: str) -> str:
    """`value` for a message: never more than about 60 characters of request data."""
    return f"`{value}`" if len(value) <= 60 else f"`{value[:57]}...`"


@lru_cache(maxsize=4096)
def _parse_network(text: str) -> _Network:
    return ipaddress.ip_network(text, strict=True)


@lru_cache(maxsize=4096)
def _parse_address(text: str) -> _Address:
    return ipaddress.ip_address(text)


def _network(value: Any, what: str) -> _Network:
    """`value` as a CIDR prefix; raises ConditionError."""
    if not isinstance(value, str):
        raise ConditionError(f"{what} must be a CIDR prefix string, got {type(value).__name__}")
    if len(value) <= _MAX_TEXT:
        try:
            return _parse_network(value)
        except ValueError:
            pass
    raise ConditionError(f"{what} {_quoted(value)} is not a CIDR prefix such as `10.0.0.0/8`")


def _address(value: Any) -> _Address:
    """`value` as an IPv4 or IPv6 address; raises ConditionError."""
    if not isinstance(value, str):
        raise ConditionError(f"`ip_in` needs an address string, got {type(value).__name__}")
    if len(value) <= _MAX_TEXT:
        try:
            return _parse_address(value)
        except ValueError:
            pass
    raise ConditionError(f"{_quoted(value)} is not an IPv4 or IPv6 address")


def _networks(value: Any, function: str) -> list[_Network]:
    """A list of prefixes (or one prefix) as networks; raises ConditionError."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping) or not isinstance(value, list | tuple):
        raise ConditionError(f"`{function}` needs a list of CIDR prefixes as its second argument")
    if len(value) > _MAX_NETWORKS:
        raise ConditionError(f"`{function}` compares against at most {_MAX_NETWORKS} prefixes")
    return [_network(item, f"`{function}` prefix") for item in value]


def _ip_in(env: object, ip: Any, cidrs: Any) -> bool:
    """Whether address `ip` lies in one of `cidrs` (an IPv4 address never in an IPv6 prefix)."""
    address = _address(ip)
    return any(
        address.version == net.version and address in net for net in _networks(cidrs, "ip_in")
    )


def _cidr_within(env: object, prefix: Any, cidrs: Any) -> bool:
    """Whether prefix `prefix` lies inside one of `cidrs` (equal counts as inside)."""
    inner = _network(prefix, "`cidr_within` prefix")
    return any(
        inner.version == net.version and inner.subnet_of(net)  # type: ignore[arg-type]
        for net in _networks(cidrs, "cidr_within")
    )


def check_literal_networks(function: str, values: list[Any]) -> None:
    """Validate the literal prefixes a condition lists, when the bundle loads."""
    _networks(values, function)


# name -> (implementation, number of arguments)
NETWORK_FUNCTIONS = {"ip_in": _ip_in, "cidr_within": _cidr_within}
