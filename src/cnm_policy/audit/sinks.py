"""Where decision events go: through structlog's pipeline, or straight to a JSON-lines stream.

`DecisionLog` hands a sink all the events of one call at once (one for a Check, one per item for
a CheckBatch), in parts: the call's own fields, the fields its decisions share, and each
decision's. That is the unit a sink may write in one go, and it is what keeps the decision log
cheap on the request path:

- The parts that repeat from call to call (who asked, about what, with which answer) are
  *prepared* by the sink once and passed back to it again and again; `DecisionLog` remembers
  them by the request's fingerprint when its caller has one (the sidecar does).
- `StructlogSink` (the default) emits each event through ``structlog.get_logger()``, so every
  processor, renderer and test helper (``structlog.testing.capture_logs``) the process has
  configured applies. Flexible, and fine for a library making a few checks per request.
- `JsonLinesSink` is what ``cnm-policy serve`` uses for JSON logs. It renders each event as one
  JSON object per line (``timestamp``, ``level``, ``event`` first, as the process's structlog
  JSON lines are): prepared parts are rendered once, so a repeated request costs the rendering
  of its time, ids and latency only. It writes the whole call through the stream's
  `~cnm_policy.audit.lines.LineWriter`: one system call per call, under the lock every writer
  of the stream shares, so decision lines never interleave with the operational events written
  to the same stream. A batch of 100 decisions releases the GIL for I/O once instead of 100
  times (each release under contention can cost a thread switch interval).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, Final, Protocol, TextIO

import orjson
import structlog

from cnm_policy.audit.lines import line_writer

__all__ = [
    "DECISION_EVENT",
    "DecisionSink",
    "JsonLinesSink",
    "StructlogSink",
    "render_json_lines",
]

DECISION_EVENT: Final = "decision"
_LEVEL: Final = "info"
# The standard library's C escaper: a third of orjson's cost for a short string.
_escape: Final[Callable[[str], str]] = encode_basestring
_FALLBACK_ENCODER: Final = json.JSONEncoder(
    default=repr, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


class DecisionSink(Protocol):
    """Receives the decision events of one call, in order; raises if they cannot be recorded.

    Event *i* of a call is, in this order (no key twice):

    - ``timestamp``, ``level`` (``info``), ``event`` (``decision``), ``request_id``,
      ``latency_ms``, and for a batch ``batch_size``: the envelope, new on every call;
    - the fields of `shared`: who asked, in what context (the same for every decision);
    - for a batch ``batch_index``, then ``decision_id``: the first of ``decisions[i]``;
    - the fields of its outcome, the second of ``decisions[i]``: about what, and the answer.

    `shared` and the outcomes come from :meth:`prepare`, and the same prepared value is passed
    again whenever the same request gets the same answer, so that a sink does its per-part
    work (rendering text, copying) once per distinct request rather than once per call.
    """

    def prepare(self, fields: Mapping[str, Any]) -> Any:
        """`fields` in whatever form `emit` wants them; `fields` may be reused after this."""
        ...

    def emit(
        self,
        *,
        timestamp: str,
        request_id: str | None,
        latency_ms: float,
        shared: Any,
        decisions: Sequence[tuple[str, Any]],
        batch: bool,
    ) -> None:
        """Record one event per ``(decision_id, prepared outcome)`` in `decisions`."""
        ...


class StructlogSink:
    """One structlog call per event, at the event's level, through what the process configured."""

    __slots__ = ("_logger",)

    def __init__(self, logger_name: str = "cnm_policy.audit") -> None:
        self._logger = structlog.get_logger(logger_name)

    def prepare(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A private deep copy: what the caller does with `fields` later cannot change it."""
        return copy.deepcopy(dict(fields))

    def emit(
        self,
        *,
        timestamp: str,
        request_id: str | None,
        latency_ms: float,
        shared: dict[str, Any],
        decisions: Sequence[tuple[str, dict[str, Any]]],
        batch: bool,
    ) -> None:
        """Log each event; structlog adds the level and event name itself."""
        log = getattr(self._logger, _LEVEL)
        envelope: dict[str, Any] = {
            "timestamp": timestamp,
            "request_id": request_id,
            "latency_ms": latency_ms,
        }
        if batch:
            envelope["batch_size"] = len(decisions)
        for index, (decision_id, outcome) in enumerate(decisions):
            ids: dict[str, Any] = {"batch_index": index} if batch else {}
            ids["decision_id"] = decision_id
            # Fresh copies: processors may change an event's values in place, and prepared
            # parts are passed again for later events.
            log(
                DECISION_EVENT,
                **envelope,
                **copy.deepcopy(shared),
                **ids,
                **copy.deepcopy(outcome),
            )


class JsonLinesSink:
    """Renders events as JSON lines and writes each call's lines in one system call."""

    __slots__ = ("_writer",)

    def __init__(self, stream: TextIO) -> None:
        # The stream's one LineWriter: its lock is shared with every other writer of the
        # stream (``cnm-policy serve`` makes it structlog's logger), and it writes unbuffered.
        self._writer = line_writer(stream)

    def prepare(self, fields: Mapping[str, Any]) -> str:
        """The JSON members of `fields`, each after a comma (``,"key":value...``), or ``""``.

        The leading comma lets `render_json_lines` append a part without looking at it.
        """
        members = _encode(fields)[1:-1]
        return "," + members if members else ""

    def emit(
        self,
        *,
        timestamp: str,
        request_id: str | None,
        latency_ms: float,
        shared: str,
        decisions: Sequence[tuple[str, str]],
        batch: bool,
    ) -> None:
        """Write one line per decision; nothing at all when there are none."""
        if not decisions:
            return
        self._writer.write_lines(
            _render(timestamp, request_id, latency_ms, shared, decisions, batch)
        )


# The envelope's fixed text, around its three values (see `DecisionSink` for the order).
_BEFORE_TIMESTAMP: Final = '{"timestamp":'
_BEFORE_REQUEST_ID: Final = f',"level":"{_LEVEL}","event":"{DECISION_EVENT}","request_id":'
_BEFORE_LATENCY: Final = ',"latency_ms":'
# The latest timestamp and its JSON text: every decision logged in the same millisecond gets
# the same string object from `format_timestamp`, so it is escaped once. Replaced whole.
_last_timestamp: tuple[object, str] = (object(), "")
# Latency texts by value (see `_latency_text`), dropped all at once when this many.
_latency_texts: Final[dict[float, str]] = {}
_LATENCY_TEXTS: Final = 4096


def render_json_lines(
    timestamp: str,
    request_id: str | None,
    latency_ms: float,
    shared: str,
    decisions: Sequence[tuple[str, str]],
    batch: bool,
) -> list[str]:
    """The JSON lines of one call's events (see `DecisionSink`), one per decision.

    `shared` and the outcomes are parts prepared by `JsonLinesSink.prepare`; only the envelope
    and the ids are rendered here. Each part's members follow a comma, so appending parts gives
    the encoding of the merged event (no key is in two parts).
    """
    if not decisions:
        return []
    text = _render(timestamp, request_id, latency_ms, shared, decisions, batch)
    # JSON text holds no raw line break (strings escape theirs), so the lines split back apart.
    return text[:-1].split("\n")


def _render(
    timestamp: str,
    request_id: str | None,
    latency_ms: float,
    shared: str,
    decisions: Sequence[tuple[str, str]],
    batch: bool,
    string: Callable[[Any], str] = _escape,
) -> str:
    """The lines of `render_json_lines`, each ending in a line break (`string` encodes a text
    value).

    A value that is not text (a test's clock or id source) fails the C escaper; the call is
    then rendered again with every such value encoded as JSON.
    """
    global _last_timestamp  # noqa: PLW0603 (a one-entry cache, swapped atomically)
    try:
        last = _last_timestamp
        if last[0] is timestamp and string is _escape:
            quoted_timestamp = last[1]
        else:
            quoted_timestamp = string(timestamp)
            if string is _escape:
                _last_timestamp = (timestamp, quoted_timestamp)
        latency = _latency_texts.get(latency_ms) if type(latency_ms) is float else None
        if latency is None:
            latency = _latency_text(latency_ms)
        # f-strings: joining literal text and values this way costs a third of `%` formatting.
        quoted_request_id = "null" if request_id is None else string(request_id)
        if batch:
            head = (
                f"{_BEFORE_TIMESTAMP}{quoted_timestamp}{_BEFORE_REQUEST_ID}{quoted_request_id}"
                f'{_BEFORE_LATENCY}{latency},"batch_size":{len(decisions)}{shared}'
            )
            return "".join(
                [  # a list: joining one is cheaper than running a generator
                    f'{head},"batch_index":{index},"decision_id":{string(decision_id)}{outcome}}}\n'
                    for index, (decision_id, outcome) in enumerate(decisions)
                ]
            )
        if len(decisions) != 1:  # not from DecisionLog, which logs a Check's one decision
            return "".join(
                _render(timestamp, request_id, latency_ms, shared, (pair,), False, string)
                for pair in decisions
            )
        ((decision_id, outcome),) = decisions
        # One f-string for the whole line: a separate head would be copied twice.
        return (
            f"{_BEFORE_TIMESTAMP}{quoted_timestamp}{_BEFORE_REQUEST_ID}{quoted_request_id}"
            f'{_BEFORE_LATENCY}{latency}{shared},"decision_id":{string(decision_id)}{outcome}}}\n'
        )
    except TypeError:
        if string is _encode:
            raise
        return _render(timestamp, request_id, latency_ms, shared, decisions, batch, _encode)


def _latency_text(latency_ms: Any) -> str:
    """JSON for a latency, remembered when it is a positive float.

    Latencies are whole microseconds, and a busy sidecar's fall in a few hundred of them, so a
    lookup replaces formatting a float on nearly every call. Only positive values are kept:
    0.0 and -0.0 (equal keys, different text) and NaN (equal to nothing) are formatted each time.
    orjson writes any float (NaN and infinities as null) in two thirds of the time of repr.
    """
    if type(latency_ms) is not float:
        return _encode(latency_ms)
    text = orjson.dumps(latency_ms).decode()
    if latency_ms > 0.0:
        if len(_latency_texts) >= _LATENCY_TEXTS:
            _latency_texts.clear()
        _latency_texts[latency_ms] = text
    return text


def _encode(value: Any) -> str:
    """JSON text for `value`, whatever it holds.

    The common case takes orjson's fast path. A mapping with non-string keys (a date, an enum,
    an int in an allow-listed attribute) is retried with orjson's slower option for them, and
    what orjson cannot encode at all (an integer beyond 64 bits) falls back to the standard
    encoder in the same compact style, with ``repr`` for unknown types and NaN as null: a
    decision is never lost to an unencodable log value.
    """
    try:
        return orjson.dumps(value, default=repr).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return _FALLBACK_ENCODER.encode(_plain(value))
    except (ValueError, TypeError, RecursionError):  # a cycle, or keys beyond repair
        if isinstance(value, Mapping):
            return _FALLBACK_ENCODER.encode({str(key): repr(item) for key, item in value.items()})
        return _FALLBACK_ENCODER.encode(repr(value))


def _plain(value: Any) -> Any:
    """`value` as the standard encoder takes it: NaN and infinities as null (as orjson writes
    them), keys other than strings as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {
            key if isinstance(key, str) else str(key): _plain(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
