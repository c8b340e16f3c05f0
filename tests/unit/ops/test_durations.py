"""Durations as operators write them, and every other string refused with the value named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.ops.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("500ms", 0.5), ("15m", 900.0), ("1h30m", 5400.0),
     ("7d", 604800.0), ("1.5h", 5400.0), (" 2m ", 120.0)],
)  # fmt: skip
def test_durations_parse(text: str, seconds: float) -> None:
    """Go-style units plus days; a bare number is seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "m", "10x", "1h 30m", "-5s", "0", "0s", "inf", "nan", "1e999"]
)
def test_anything_else_is_refused(text: str) -> None:
    """Unknown units, spaces inside, zero, negatives and non-finite numbers are refused."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.text(max_size=80))
def test_any_text_parses_to_a_positive_number_or_raises(text: str) -> None:
    """Whatever the input, the result is a positive finite number of seconds, or ValueError."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert 0 < seconds < float("inf")
