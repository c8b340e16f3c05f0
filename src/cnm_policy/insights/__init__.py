"""Decision insights: the report over decision logs, replay under a candidate, shadow checks.

DuckDB reads the logs (JSON lines, gzip, Parquet); the report is JSON-ready data that Markdown,
HTML and JSON renderers format. Input capture and shadow divergence are pure helpers that
`serve` wires in. Walk-through: docs/insights.md; design: docs/design/insights.md.
"""

from cnm_policy.insights.capture import INPUT_EVENT, InputCapture, encode_input_line, input_record
from cnm_policy.insights.html import render_html
from cnm_policy.insights.render import render_json, render_markdown
from cnm_policy.insights.render_replay import render_replay_markdown
from cnm_policy.insights.replay import REPLAY_SCHEMA, ReplayOptions, replay_logs
from cnm_policy.insights.report import REPORT_SCHEMA, ReportOptions, build_report
from cnm_policy.insights.shadow import (
    SHADOW_DIVERGENCE_EVENT,
    ShadowEvaluator,
    ShadowRunner,
    ShadowTask,
)

__all__ = [
    "INPUT_EVENT",
    "REPLAY_SCHEMA",
    "REPORT_SCHEMA",
    "SHADOW_DIVERGENCE_EVENT",
    "InputCapture",
    "ReplayOptions",
    "ReportOptions",
    "ShadowEvaluator",
    "ShadowRunner",
    "ShadowTask",
    "build_report",
    "encode_input_line",
    "input_record",
    "render_html",
    "render_json",
    "render_markdown",
    "render_replay_markdown",
    "replay_logs",
]
