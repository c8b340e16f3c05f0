"""Evaluation: compiled policy snapshots, the indexed evaluator, and the `Engine` front door.

The only package that touches casbin (through :mod:`cnm_policy.engine.casbin_backend`).
"""

from cnm_policy.engine.engine import Clock, Engine, decide_batch
from cnm_policy.engine.plan import Plan
from cnm_policy.engine.snapshot import PolicySnapshot, compile_bundle, load_snapshot

__all__ = [
    "Clock",
    "Engine",
    "Plan",
    "PolicySnapshot",
    "compile_bundle",
    "decide_batch",
    "load_snapshot",
]
