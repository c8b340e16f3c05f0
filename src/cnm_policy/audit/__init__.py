"""Decision events (`DecisionLog`) and where they are written (`DecisionSink` implementations)."""

from cnm_policy.audit.events import (
    DECISION_EVENT,
    AttributeAllowList,
    DecisionLog,
    format_timestamp,
)
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
    "StructlogSink",
    "format_timestamp",
    "render_json_lines",
]
