"""`python -m benchmarks.ops` keeps running: every variant measured, the bare one the baseline."""

from __future__ import annotations

from benchmarks.ops import run


def test_every_variant_is_measured_against_the_bare_servicer() -> None:
    """A tiny run yields the four variants, the first with zero overhead by definition."""
    results = run(calls=50, rounds=1)
    assert [name for name, _median, _overhead in results] == [
        "bare (no metrics)",
        "metrics",
        "metrics + max age",
        "metrics + max age + traceparent",
    ]
    assert results[0][2] == 0.0
    assert all(median > 0 for _name, median, _overhead in results)
