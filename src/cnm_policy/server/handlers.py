"""The PolicyService's grpc method handlers, built around a servicer's byte-level methods."""

from __future__ import annotations

import functools
from typing import Any

import grpc

__all__ = ["rpc_handlers"]


def rpc_handlers(servicer: Any) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """The PolicyService method handlers, by method name.

    Every method takes and returns bytes (no (de)serializer): the servicer parses requests
    itself, so undecodable bytes are INVALID_ARGUMENT rather than grpc's own INTERNAL.

    Each behaviour is a `functools.partial` of the class's method (so a subclass's override
    serves) rather than the bound method: grpc looks an optional attribute up on it per call,
    and a partial misses that lookup cheaply (docs/design/sidecar-wire.md).
    """
    methods = type(servicer)
    return {
        "Check": grpc.unary_unary_rpc_method_handler(
            functools.partial(methods.check_bytes, servicer)
        ),
        "CheckBatch": grpc.unary_unary_rpc_method_handler(
            functools.partial(methods.check_batch_bytes, servicer)
        ),
        "GetPolicyInfo": grpc.unary_unary_rpc_method_handler(
            functools.partial(methods.policy_info_bytes, servicer)
        ),
        "CanGrant": grpc.unary_unary_rpc_method_handler(
            functools.partial(methods.can_grant_bytes, servicer)
        ),
        "PlanResources": grpc.unary_unary_rpc_method_handler(
            functools.partial(methods.plan_resources_bytes, servicer)
        ),
    }
