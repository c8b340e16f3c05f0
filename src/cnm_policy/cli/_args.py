"""Argument types shared by several commands, so each flag means the same thing everywhere."""

from __future__ import annotations

import argparse
from datetime import datetime

__all__ = ["instant"]


def instant(text: str) -> float:
    """Epoch seconds, or ISO 8601 with an explicit offset (a naive time is ambiguous)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not ISO 8601 or epoch seconds") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"`{text}` needs a UTC offset (e.g. `Z` or `+01:00`)")
    return moment.timestamp()
