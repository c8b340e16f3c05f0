"""Decision events (`DecisionLog`), where they go (`DecisionSink`s) and how lines are written."""

from cnm_policy.audit.events import (
    DECISION_EVENT,
    AttributeAllowList,
    DecisionLog,
    format_timestamp,
)
from cnm_policy.audit.lines import LineWriter, line_writer
from cnm_policy.audit.sinks import (
    DecisionSink,
    JsonLinesSink,
    StructlogSink,
    render_json_lines,
)

__all__ = [
    "DECISION_EVENT",
    "AttributeAllowList",
    "DecisionLog",
    "DecisionSink",
    "JsonLinesSink",
    "LineWriter",
    "StructlogSink",
    "format_timestamp",
    "line_writer",
    "render_json_lines",
]
