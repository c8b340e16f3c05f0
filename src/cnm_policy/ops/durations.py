"""Durations as operators write them: ``90``, ``90s``, ``500ms``, ``15m``, ``1h30m``, ``7d``.

Go's and Kubernetes' notation (as OPA and Cerbos flags take it), plus days; a bare number is
seconds. Used by `--max-policy-age` and the YAML configuration.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_MAX_CHARS = 64


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError (lowercase, the value in backticks) otherwise."""
    value = text.strip()
    if len(value) > _MAX_CHARS:
        raise ValueError("a duration is at most 64 characters")
    try:
        seconds = float(value)
    except ValueError:
        parts = _PART.findall(value)
        if not parts or "".join(number + unit for number, unit in parts) != value:
            raise ValueError(
                f"`{value}` is not a duration (e.g. `90s`, `15m`, `1h30m`, `7d`)"
            ) from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"`{value}` is not a positive duration")
    return seconds
