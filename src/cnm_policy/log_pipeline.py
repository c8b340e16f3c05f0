"""The one structlog pipeline every event goes through, decision and operational alike.

JSON lines through structlog's fast path (orjson, `BytesLogger`), a batch's lines in one
write; or a console rendering for people. The server entry point calls `configure_logging`;
the library only calls `structlog.get_logger()`. Why and what it costs: docs/design/decision-log.md.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["configure_logging", "log_timestamp", "one_write"]


def configure_logging(log_file: Path | None, log_format: str, level: str) -> None:
    """Send every structlog event at `level` or above to `log_file` (appended) or stdout.

    JSON lines through structlog's fast path (orjson, `BytesLogger`: one lock per file, each
    line written whole and flushed); `console` (or `auto` on a terminal) renders for people,
    with colours only on a terminal. ``warning`` and above also drop ``decision`` events.
    """
    renderer: Processor
    factory: Callable[..., WrappedLogger]
    if log_format == "console" or (log_format == "auto" and not log_file and sys.stdout.isatty()):
        text = log_file.open("a", encoding="utf-8") if log_file else sys.stdout
        renderer = structlog.dev.ConsoleRenderer(colors=text.isatty())
        factory = structlog.WriteLoggerFactory(text)
    else:
        sys.stdout.flush()  # text printed before comes first
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        lines = structlog.BytesLoggerFactory(log_file.open("ab") if log_file else sys.stdout.buffer)
        factory = lambda *args: _CallLines(lines(*args))  # noqa: E731
    structlog.configure(
        processors=[_lead_with_when_and_what, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level.upper()),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


# A batch's lines go to the file in one write: per-line writes from two workers contend for
# the file's locks at every line (3x the CPU per item; docs/design/decision-log.md).
class _Pending(threading.local):
    """This thread's open `one_write` block: its lines and their writer (`None` outside one)."""

    lines: list[bytes] | None = None  # class defaults: a lookup outside a block raises nothing
    writer: structlog.BytesLogger | None = None


_batch = _Pending()


class _CallLines:
    """structlog's `BytesLogger`, but the lines logged inside `one_write` wait for its end."""

    def __init__(self, writer: structlog.BytesLogger) -> None:
        self._writer = writer

    def msg(self, message: bytes) -> None:
        """Write `message` as one line now, or keep it for the batch's one write."""
        pending = _batch.lines
        if pending is None:
            self._writer.msg(message)
        else:
            pending.append(message)
            _batch.writer = self._writer

    debug = info = warning = error = critical = exception = msg


@contextmanager
def one_write() -> Iterator[None]:
    """Collect the lines logged in this block and write them with one `BytesLogger.msg`."""
    _batch.lines, _batch.writer = [], None
    try:
        yield
    finally:
        lines, writer = _batch.lines, _batch.writer
        _batch.lines = _batch.writer = None
        if lines and writer is not None:
            writer.msg(b"\n".join(lines))


def _lead_with_when_and_what(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """Start each event with its time (ISO UTC, milliseconds), level and name, for people; an
    `exc_info` becomes structlog's ``exception`` text, last. One processor, not three: the
    level is the method's name, as `add_log_level` gives it for the filtering bound logger
    (docs/design/decision-log.md)."""
    if "exc_info" in event_dict:  # operational events only: decisions never carry one
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    return {
        "timestamp": log_timestamp(int(time.time() * 1000)),
        "level": method_name,
        "event": event_dict.pop("event"),
        **event_dict,
    }


# The latest second and its text, swapped whole, and each millisecond's suffix, made once: 3%
# of a decision event's cost (docs/design/decision-log.md).
_last_second: tuple[int, str] = (-1, "")
_MILLISECONDS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))


def log_timestamp(epoch_ms: int) -> str:
    """``2026-01-15T12:00:00.123Z`` for a time in milliseconds since the epoch."""
    global _last_second  # noqa: PLW0603 (one entry, replaced whole)
    second, text = _last_second
    if epoch_ms // 1000 != second:
        second = epoch_ms // 1000
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, text)
    return text + _MILLISECONDS[epoch_ms % 1000]


def _dumps(event: EventDict, **_: Any) -> bytes:
    """orjson; what it refuses (keys other than text, integers past 64 bits, lone surrogates)
    goes through the standard encoder: an odd allow-listed value never costs a decision its line.
    """
    try:
        return orjson.dumps(event, default=repr)
    except orjson.JSONEncodeError:
        pass
    try:  # backslashreplace turns a lone surrogate into its JSON escape
        return _FALLBACK.encode(_plain(event)).encode("utf-8", "backslashreplace")
    except (ValueError, RecursionError):  # a cycle
        return orjson.dumps({str(key): repr(value) for key, value in event.items()})


_FALLBACK: Final = json.JSONEncoder(
    default=repr, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _plain(value: Any) -> Any:
    """`value` as the standard encoder takes it: NaN and infinities as null, keys as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
