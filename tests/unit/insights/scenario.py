"""A day of decisions made by the real engine and logged by the real DecisionLog, counts known.

Only the clock is scripted: each event's `timestamp` is the instant the engine decided at, so the
report's periods and the replay's `now` are exact. The counts the tests expect are worked out by
hand in the comments beside each step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from cnm_policy import CachedEngine, Engine, Principal, Resource
from cnm_policy.audit import AttributeAllowList, DecisionLog
from cnm_policy.insights import InputCapture

POLICIES = Path(__file__).resolve().parents[3] / "policies" / "cnm"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()

EVE_ID = "eve<script>alert(1)</script>|`x`\n# head"  # hostile: HTML, a table pipe, a newline
ANN = Principal("ann", "acme/emea", ("customer-viewer",), {"mfa": True, "email": "a@x"})
BOB = Principal("bob", "acme", ("customer-admin",), {"mfa": False})
EVE = Principal(EVE_ID, "evil", ("customer-viewer",), {})
NOC = Principal("noc-1", "provider", ("noc-engineer",), {"mfa": True})
SAM = Principal("sam", "provider", ("support-agent",), {"assigned_tenants": ["acme"]})
# Actors, who act on a principal's behalf: a partner's agent inside acme, a support engineer,
# and an agent of another customer (refused: a customer-side actor stays in its own subtree).
PAT = Principal("pat", "acme", ("customer-viewer",), {"clearance": "high", "mfa": True})
SUE = Principal("sue", "provider", ("support-agent",), {"clearance": "low"})
GUS = Principal("gus", "globex", ("customer-viewer",), {})


def device(identifier: str, tenant: str, **attributes: Any) -> Resource:
    """A device resource."""
    return Resource("device", identifier, tenant, attributes)


class Clock:
    """A settable clock: the engine decides at, and the log stamps, the same instant."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _stamp(clock: Clock) -> Callable[..., Mapping[str, Any]]:
    def processor(_: Any, level: str, event: dict[str, Any]) -> Mapping[str, Any]:
        millis = round(clock.now * 1000)
        moment = datetime.fromtimestamp(millis / 1000, UTC)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
        return {"timestamp": text, "level": level, "event": event.pop("event"), **event}

    return processor


class Recorder:
    """Decides with a CachedEngine and logs each decision as `serve` does, to JSON lines."""

    def __init__(
        self,
        path: Path,
        *,
        allow: AttributeAllowList | None = None,
        capture: Path | None = None,
        policies: Path = POLICIES,
    ) -> None:
        self.clock = Clock()
        self.engine = CachedEngine(Engine.from_path(policies, clock=self.clock))
        self._file = path.open("ab")
        self.logger = logger = structlog.wrap_logger(
            structlog.BytesLogger(self._file),
            processors=[_stamp(self.clock), structlog.processors.JSONRenderer(orjson.dumps)],
        )
        self._ids = iter(range(1, 1_000_000))
        self.log = DecisionLog(allow=allow, new_id=lambda: f"d-{next(self._ids)}", logger=logger)
        self.capture = InputCapture(capture, clock=self.clock) if capture else None

    def at(self, minutes: float) -> Recorder:
        """Move the clock to `minutes` after T0."""
        self.clock.now = T0 + minutes * 60
        return self

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        latency: float = 0.001,
        version: str | None = None,
        actor: Principal | None = None,
    ) -> None:
        """One Check call (by `actor` on the principal's behalf, if given), decided and logged."""
        decision = self.engine.check(principal, action, resource, context or {}, actor=actor)
        if version is not None:
            decision = dataclasses.replace(decision, policy_version=version)
        decision_id = self.log.new_decision_id()
        self.log.record(
            principal=principal,
            action=action,
            resource=resource,
            context=context or {},
            decision=decision,
            decision_id=decision_id,
            request_id=f"req-{decision_id}",
            latency_seconds=latency,
            actor=actor,
        )
        if self.capture is not None:
            self.capture.record(
                principal=principal,
                action=action,
                resource=resource,
                context=context or {},
                decision=decision,
                decision_id=decision_id,
                actor=actor,
            )

    def batch(self, principal: Principal, items: list[tuple[str, Resource]]) -> None:
        """One CheckBatch call, decided and logged."""
        decisions = self.engine.check_batch(principal, items, {})
        self.log.record_batch(
            principal=principal,
            items=items,
            context={},
            decisions=decisions,
            decision_ids=self.log.new_decision_ids(len(items)),
            request_id="req-batch",
            latency_seconds=0.004,
        )

    def reject(self, code: str) -> None:
        """A call refused before any decision."""
        self.log.record_rejected(
            error_code=code, error_field="principal.id", request_id=None, latency_seconds=0.0002
        )

    def close(self) -> None:
        """Flush and close the files."""
        self._file.close()
        if self.capture is not None:
            self.capture.close()


def write_day(path: Path) -> None:
    """The day the report tests count (totals: 6 allow, 7 deny, 3 rejected)."""
    rec = Recorder(path)
    paris = device("dev-1", "acme/emea/paris")
    # ann reads one device three times within the cache's minute: 1 miss, 2 hits.
    for seconds in (0, 10, 20):
        rec.at(seconds / 60).check(ANN, "read", paris, latency=0.001)
    rec.at(5).check(ANN, "configure", paris, latency=0.002)  # default deny
    rec.at(30).check(BOB, "configure", device("dev-2", "acme"), latency=0.003)  # mfa deny
    rec.at(31).check(BOB, "configure", device("dev-2", "acme"), latency=0.003)  # mfa deny
    # eve probes other tenants: 3 requests at 2 tenants, all denied by default.
    rec.at(60).check(EVE, "read", device("dev-9](javascript:x)", "acme/emea"), latency=0.005)
    rec.at(61).check(EVE, "read", device("dev-8", "acme/emea"), latency=0.005)
    rec.at(62).check(EVE, "read", Resource("ticket", "t-1", "globex", {}), latency=0.005)
    rec.at(90).check(NOC, "read", Resource("circuit", "c-1", "acme", {}), latency=0.006)
    rec.at(91).check(SAM, "read", Resource("ticket", "t-2", "acme/emea", {}), version="1.1.0")
    rec.at(120).batch(ANN, [("read", device("dev-3", "acme/emea")), ("read", _invoice())])
    for code in ("invalid_request", "invalid_request", "limit_exceeded"):
        rec.at(150).reject(code)
    rec.close()


def _invoice() -> Resource:
    return Resource("invoice", "inv-1", "acme/emea", {})


GLASS = {"break_glass": {"incident": "INC-7", "reason": "core router down"}}
SAM_MFA = Principal(
    "sam", "provider", ("support-agent",), {"mfa": True, "assigned_tenants": ["acme"]}
)
KIM = Principal("kim", "provider", ("support-agent",), {"mfa": True})
BOB_MFA = Principal("bob", "acme", ("customer-admin",), {"mfa": True})


def write_governed(path: Path) -> None:
    """Break-glass, a self-managed crossing and on-behalf-of requests (counts in comments)."""
    rec = Recorder(path)
    # break-glass: sam twice (two tenants), kim once; sam without a justification: a plain deny
    rec.at(0).check(SAM_MFA, "configure", device("g-1", "globex"), GLASS)
    rec.at(1).check(SAM_MFA, "read", device("i-1", "initech"), GLASS)
    rec.at(2).check(KIM, "read", device("g-2", "globex/us"), GLASS)
    rec.at(3).check(SAM_MFA, "configure", device("g-1", "globex"))
    # an allowed crossing into acme's self-managed lab
    rec.at(4).check(BOB_MFA, "read", device("lab-1", "acme/emea/labs"))
    # on behalf of ann: pat twice (one allowed, one denied), gus refused, sue allowed
    paris = device("dev-1", "acme/emea/paris")
    rec.at(5).check(ANN, "read", paris, actor=PAT)
    rec.at(6).check(ANN, "configure", paris, actor=PAT)
    rec.at(7).check(ANN, "read", paris, actor=GUS)
    rec.at(8).check(ANN, "read", device("dev-3", "acme/emea"), actor=SUE)
    rec.close()
