"""`ip_in` and `cidr_within`: network-native conditions that fail closed on malformed input."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.errors import ConditionError, ConditionSyntaxError
from cnm_policy.policy.conditions import EvalEnv, compile_condition


def env(principal: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> EvalEnv:
    """A request view with the given principal attributes and context."""
    view = {"id": "u", "tenant": "acme", "roles": [], "attributes": principal or {}}
    resource = {"kind": "acl", "id": "a", "tenant": "acme", "attributes": {}}
    return EvalEnv(view, "edit", resource, context or {}, 0.0)


def test_ip_in_a_literal_management_network() -> None:
    """An address inside a listed prefix passes; outside does not."""
    cond = compile_condition('ip_in(context.source_ip, ["10.20.0.0/16", "2001:db8:1::/48"])')
    assert cond.evaluate(env(context={"source_ip": "10.20.3.4"})) is True
    assert cond.evaluate(env(context={"source_ip": "2001:db8:1::7"})) is True
    assert cond.evaluate(env(context={"source_ip": "10.21.0.1"})) is False


def test_an_ipv4_address_is_never_inside_an_ipv6_prefix() -> None:
    """Versions never mix, even for an IPv4-mapped address."""
    cond = compile_condition('ip_in(context.ip, ["::/0"])')
    assert cond.evaluate(env(context={"ip": "192.0.2.1"})) is False
    assert cond.evaluate(env(context={"ip": "::ffff:192.0.2.1"})) is True


def test_cidr_within_owned_prefixes_from_the_principal() -> None:
    """A prefix inside (or equal to) an owned prefix passes; a wider or foreign one does not."""
    cond = compile_condition("cidr_within(context.prefix, principal.attributes.prefixes)")
    owner = {"prefixes": ["203.0.113.0/24", "2001:db8::/32"]}
    assert cond.evaluate(env(owner, {"prefix": "203.0.113.128/25"})) is True
    assert cond.evaluate(env(owner, {"prefix": "203.0.113.0/24"})) is True
    assert cond.evaluate(env(owner, {"prefix": "203.0.112.0/23"})) is False
    assert cond.evaluate(env(owner, {"prefix": "2001:db8:ff00::/40"})) is True


@pytest.mark.parametrize(
    "context",
    [
        {"ip": "10.0.0.256"},
        {"ip": "not an address"},
        {"ip": 167772161},
        {},
        {"ip": "1" * 1_000_000},
    ],
    ids=["octet", "text", "number", "missing", "megabyte"],
)
def test_a_malformed_address_is_a_condition_error(context: dict[str, Any]) -> None:
    """Anything but an address string errors (so the rule fails closed), quickly."""
    cond = compile_condition('ip_in(context.ip, ["10.0.0.0/8"])')
    started = time.perf_counter()
    with pytest.raises(ConditionError) as caught:
        cond.evaluate(env(context=context))
    assert time.perf_counter() - started < 0.5
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("prefix", ["10.0.0.1/8", "10.0.0.0/33", "fe80::/129", "10/8", ""])
def test_a_malformed_prefix_from_the_request_is_a_condition_error(prefix: str) -> None:
    """Host bits set or lengths out of range, on either side: errors, never a match."""
    cond = compile_condition("cidr_within(context.prefix, context.owned)")
    with pytest.raises(ConditionError):
        cond.evaluate(env(context={"prefix": prefix, "owned": ["10.0.0.0/8"]}))
    with pytest.raises(ConditionError):
        cond.evaluate(env(context={"prefix": "10.1.0.0/16", "owned": [prefix]}))


def test_a_malformed_literal_prefix_fails_when_the_bundle_loads() -> None:
    """A typo in a prefix written into the policy is a syntax error, located at load time."""
    with pytest.raises(ConditionSyntaxError, match="not a CIDR prefix"):
        compile_condition('ip_in(context.ip, ["10.0.0.0/8", "10.300.0.0/16"])')


def test_the_functions_take_exactly_two_arguments() -> None:
    """Arity is checked when the condition compiles."""
    with pytest.raises(ConditionSyntaxError, match="exactly 2 arguments"):
        compile_condition("ip_in(context.ip)")


def test_too_many_prefixes_is_an_error() -> None:
    """A request cannot make one call compare against an unbounded list."""
    cond = compile_condition("ip_in(context.ip, context.nets)")
    nets = [f"10.{i // 256}.{i % 256}.0/24" for i in range(10_001)]
    with pytest.raises(ConditionError, match="at most"):
        cond.evaluate(env(context={"ip": "10.0.0.1", "nets": nets}))


_V4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


@given(address=_V4, base=_V4, length=st.integers(0, 32))
def test_ip_in_agrees_with_the_standard_library(
    address: ipaddress.IPv4Address, base: ipaddress.IPv4Address, length: int
) -> None:
    """For any IPv4 address and prefix, `ip_in` answers as `ipaddress` membership does."""
    network = ipaddress.ip_network(f"{base}/{length}", strict=False)
    cond = compile_condition("ip_in(context.ip, context.nets)")
    verdict = cond.evaluate(env(context={"ip": str(address), "nets": [str(network)]}))
    assert (address in network) == verdict
