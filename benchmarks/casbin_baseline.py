"""The raw pycasbin baseline: casbin's own ``Enforcer.enforce`` over the engine's rows.

The one place the benchmarks reach below the public API (the engine's casbin reference and
its request preparation), so that a move there is a change to this file only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.mix import Request
from benchmarks.timing import Measurement, measure
from cnm_policy import PolicySnapshot, Resource
from cnm_policy.engine.reference import reference_allowed
from cnm_policy.engine.requests import PreparedPrincipal, prepare_principal, validate_target

if TYPE_CHECKING:
    from benchmarks.inprocess import Settings

__all__ = ["CasbinRow", "casbin_row"]

Prepared = tuple[PreparedPrincipal, str, Resource, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class CasbinRow:
    """casbin's timing, its verdicts (in request order) and its enforcer's build time."""

    measurement: Measurement
    verdicts: list[bool]
    build_s: float


def casbin_row(
    snapshot: PolicySnapshot, requests: Sequence[Request], now: float, settings: Settings
) -> CasbinRow:
    """Time casbin on the first requests, for at most `settings.casbin_budget_s` seconds."""
    started = time.perf_counter()
    snapshot.reference()  # built once and kept by the snapshot: not part of a call's time
    build_s = time.perf_counter() - started
    prepared = [_prepare(snapshot, request) for request in requests]
    verdicts: list[bool] = []

    def casbin(item: Prepared) -> None:
        principal, action, resource, context = item
        verdicts.append(reference_allowed(snapshot, principal, action, resource, context, now))

    measurement = measure(
        "raw pycasbin",
        casbin,
        prepared[: settings.casbin_max_calls],
        repeat=1,
        budget_s=settings.casbin_budget_s,
    )
    return CasbinRow(measurement, verdicts, build_s)


def _prepare(snapshot: PolicySnapshot, request: Request) -> Prepared:
    principal, action, resource, context = request
    return (
        prepare_principal(snapshot, principal),
        action,
        resource,
        validate_target(action, resource, context),
    )
