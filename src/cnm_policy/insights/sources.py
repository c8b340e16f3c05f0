"""Which files a `report` or `replay` reads: globs expanded, kinds told apart, nothing missed.

A LOG argument that names no existing file is an error, never an empty report: a mistyped path
must not pass as a quiet week.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LogFiles", "expand_logs"]

_PARQUET_SUFFIXES = (".parquet", ".pq")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class LogFiles:
    """The files to read, in argument order, split by format (JSON lines may be gzip)."""

    json_lines: tuple[str, ...]
    parquet: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """Every file, JSON lines first."""
        return self.json_lines + self.parquet


def expand_logs(patterns: Iterable[str]) -> LogFiles:
    """Expand each pattern (a file or a glob); raises FileNotFoundError for one naming nothing."""
    seen: dict[str, None] = {}
    for pattern in patterns:
        if _GLOB_CHARS.isdisjoint(pattern) or Path(pattern).is_file():
            path = Path(pattern)
            if not path.is_file():
                raise FileNotFoundError(f"`{pattern}` is not a readable file")
            seen[str(path)] = None
            continue
        matches = sorted(p for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not matches:
            raise FileNotFoundError(f"`{pattern}` matches no file")
        seen.update(dict.fromkeys(matches))
    files = tuple(seen)
    parquet = tuple(f for f in files if f.lower().endswith(_PARQUET_SUFFIXES))
    return LogFiles(json_lines=tuple(f for f in files if f not in parquet), parquet=parquet)
