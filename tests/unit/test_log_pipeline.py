"""The one structlog pipeline: its single processor says what structlog's own ones said."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from cnm_policy.log_pipeline import configure_logging


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """`configure_logging` configures structlog process-wide; put the defaults back."""
    yield
    structlog.reset_defaults()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


# What `add_log_level` wrote for each method of the filtering bound logger: the level's name
# (the logger hands its processors "warning" for `warn`, "error" for `exception`, and so on).
_LEVELS = {
    "debug": "debug",
    "info": "info",
    "msg": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "exception": "error",
    "critical": "critical",
    "fatal": "critical",
}


def test_each_method_logs_the_level_add_log_level_gave(tmp_path: Path) -> None:
    """The level is structlog's name for it, whichever alias the caller used."""
    configure_logging(tmp_path / "out.log", "json", "debug")
    logger = structlog.get_logger("ops")
    for method in _LEVELS:
        getattr(logger, method)(method)
    events = _lines(tmp_path / "out.log")
    assert {event["event"]: event["level"] for event in events} == _LEVELS
    assert all(list(event) == ["timestamp", "level", "event"] for event in events)


def test_an_exception_is_rendered_last_by_format_exc_info(tmp_path: Path) -> None:
    """`exc_info` becomes structlog's own ``exception`` text, after the event's other keys."""
    configure_logging(tmp_path / "out.log", "json", "info")
    logger = structlog.get_logger("ops")
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        logger.exception("failed", detail="x")
        rendered = structlog.processors.format_exc_info(None, "error", {"exc_info": sys.exc_info()})
    logger.info("fine", exc_info=False)
    failed, fine = _lines(tmp_path / "out.log")
    assert list(failed) == ["timestamp", "level", "event", "detail", "exception"]
    assert rendered["exception"] == failed["exception"]
    assert list(fine) == ["timestamp", "level", "event"]
