"""Lines onto a log stream: whole, never buffered, one writer (and lock) per stream."""

from __future__ import annotations

import errno
import gc
import gzip
import io
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pytest
import structlog

from cnm_policy.audit import JsonLinesSink, LineWriter, line_writer
from cnm_policy.cli.serve import configure_logging, decision_sink


def test_a_line_is_in_the_file_before_write_line_returns(tmp_path: Path) -> None:
    """Nothing waits in a buffer: another reader sees the line at once, without a flush."""
    path = tmp_path / "audit.log"
    with path.open("a", encoding="utf-8") as stream:
        writer = LineWriter(stream, direct=True)
        writer.write_line('{"event":"decision","id":"é"}')
        assert path.read_text(encoding="utf-8") == '{"event":"decision","id":"é"}\n'


def test_text_written_through_the_stream_earlier_comes_first(tmp_path: Path) -> None:
    """A writer flushes what the stream buffered before it took over the descriptor."""
    path = tmp_path / "audit.log"
    with path.open("a", encoding="utf-8") as stream:
        stream.write("earlier\n")  # still in the stream's buffer
        LineWriter(stream, direct=True).write_line("later")
        assert path.read_text(encoding="utf-8") == "earlier\nlater\n"


def test_a_partial_write_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipe or a nearly full disk may take a few bytes at a time; the line still lands whole."""
    real_write = os.write
    sizes: list[int] = []

    def three_bytes_at_a_time(fd: int, data: bytes) -> int:
        sizes.append(len(data))
        return real_write(fd, bytes(data[:3]))

    path = tmp_path / "audit.log"
    with path.open("a", encoding="utf-8") as stream:
        writer = LineWriter(stream, direct=True)
        monkeypatch.setattr(os, "write", three_bytes_at_a_time)
        writer.write_line("0123456789")
    assert path.read_text(encoding="utf-8") == "0123456789\n"
    assert sizes == [11, 8, 5, 2]


def test_a_line_cut_by_a_failed_write_does_not_swallow_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk may take part of a line and then refuse the rest: the caller hears of it, and
    the cut line is ended so that the next line (once there is room) stands on its own."""
    real_write = os.write
    calls = iter(["part", "fail", "real", "real", "real"])

    def full_disk(fd: int, data: bytes) -> int:
        step = next(calls)
        if step == "part":
            return real_write(fd, bytes(data[:4]))
        if step == "fail":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    path = tmp_path / "audit.log"
    with path.open("a", encoding="utf-8") as stream:
        writer = LineWriter(stream, direct=True)
        monkeypatch.setattr(os, "write", full_disk)
        with pytest.raises(OSError, match="No space"):
            writer.write_line("first line")
        writer.write_line("second line")
    assert path.read_text(encoding="utf-8").splitlines() == ["firs", "second line"]


def test_a_stream_that_takes_nothing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No endless loop on a descriptor that accepts zero bytes: the caller hears of it."""
    with (tmp_path / "audit.log").open("a", encoding="utf-8") as stream:
        writer = LineWriter(stream, direct=True)
        monkeypatch.setattr(os, "write", lambda fd, data: 0)
        with pytest.raises(OSError, match="took none"):
            writer.write_line("lost?")


def test_a_stream_without_a_descriptor_is_written_and_flushed() -> None:
    """io.StringIO and captured output have no descriptor: write() and flush() instead."""

    class Flushes(io.StringIO):
        flushed = 0

        def flush(self) -> None:
            self.flushed += 1
            super().flush()

    stream = Flushes()
    LineWriter(stream).write_line("one")
    assert (stream.getvalue(), stream.flushed) == ("one\n", 1)


def test_text_the_stream_encoding_cannot_carry_is_an_error(tmp_path: Path) -> None:
    """As the stream itself would: an ASCII stream refuses non-ASCII text rather than mangle it."""
    with (
        (tmp_path / "audit.log").open("a", encoding="ascii") as stream,
        pytest.raises(UnicodeEncodeError),
    ):
        LineWriter(stream, direct=True).write_line("café")


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "through-the-stream"])
def test_several_lines_are_written_in_one_go(tmp_path: Path, direct: bool) -> None:
    """A call's lines go down together, in one system call when direct."""
    path = tmp_path / "audit.log"
    with path.open("a", encoding="utf-8") as stream:
        LineWriter(stream, direct=direct).write_lines("one\ntwo\n")
        LineWriter(stream, direct=direct).write_line("three")
    assert path.read_text(encoding="utf-8") == "one\ntwo\nthree\n"


@pytest.mark.parametrize("text", ["", "one", "one\ntwo"])
def test_a_write_that_would_leave_a_line_open_is_refused(text: str) -> None:
    """The next writer's line would continue an unterminated one: refused, nothing written."""
    stream = io.StringIO()
    with pytest.raises(ValueError, match="newline"):
        LineWriter(stream).write_lines(text)
    assert stream.getvalue() == ""


def test_the_lock_is_released_when_a_write_fails(tmp_path: Path) -> None:
    """A failed write (here: text the stream cannot encode) leaves the writer usable."""
    path = tmp_path / "audit.log"
    with path.open("a", encoding="ascii") as stream:
        writer = LineWriter(stream, direct=True)
        with pytest.raises(UnicodeEncodeError):
            writer.write_line("café")
        assert not writer.lock.locked()
        writer.write_line("cafe")
    assert path.read_text(encoding="ascii") == "cafe\n"


def test_every_writer_of_a_stream_is_the_same_one() -> None:
    """One writer, hence one lock, per stream: decision lines and operational events share it."""
    first, second = io.StringIO(), io.StringIO()
    assert line_writer(first) is line_writer(first)
    assert line_writer(first) is not line_writer(second)


def test_concurrent_lines_never_interleave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many threads, long lines, forced partial writes: every line comes out whole."""
    path = tmp_path / "audit.log"
    real_write = os.write

    def halves(fd: int, data: bytes) -> int:
        return real_write(fd, bytes(data[: max(1, len(data) // 2)]))

    def work(writer: LineWriter, name: str) -> None:
        for index in range(200):
            writer.write_line(f"{name}-{index}-" + name * 300)

    with path.open("a", encoding="utf-8") as stream:
        writer = LineWriter(stream, direct=True)
        monkeypatch.setattr(os, "write", halves)
        threads = [threading.Thread(target=work, args=(writer, name)) for name in "abcd"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        monkeypatch.undo()
    written = path.read_text(encoding="utf-8").splitlines()
    assert len(written) == 800
    for line in written:
        name, index, body = line.split("-")
        assert body == name * 300 and 0 <= int(index) < 200


def test_the_error_handler_of_the_stream_applies(tmp_path: Path) -> None:
    """A stream that escapes surrogates (stdout in a C locale) writes them as it would."""
    path = tmp_path / "audit.log"
    with path.open("a", encoding="utf-8", errors="surrogateescape") as stream:
        LineWriter(stream, direct=True).write_line("raw \udcff byte")
    assert path.read_bytes() == b"raw \xff byte\n"


@pytest.mark.parametrize(
    "open_stream",
    [
        pytest.param(lambda path: gzip.open(path, "at", encoding="utf-8"), id="gzip"),  # noqa: SIM115
        pytest.param(lambda path: path.open("a", encoding="utf-16"), id="byte-order-mark"),
    ],
)
def test_a_stream_the_descriptor_would_bypass_is_written_through(
    tmp_path: Path, open_stream: Callable[[Path], TextIO]
) -> None:
    """Direct writes only where they write what the stream would: not under gzip's text
    wrapper, not in an encoding that marks the start of its text."""
    path = tmp_path / "audit.log"
    with open_stream(path) as stream:
        writer = LineWriter(stream, direct=True)
        writer.write_line("one")
        writer.write_line("two")
    with _reader(path) as read:
        assert read.read().splitlines() == ["one", "two"]


def _reader(path: Path) -> TextIO:
    if path.read_bytes()[:2] == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-16")


def test_a_closed_stream_is_an_error_not_another_file(tmp_path: Path) -> None:
    """Once its stream is closed, a writer refuses, even if the descriptor number now belongs
    to a newly opened file."""
    first = (tmp_path / "first.log").open("a", encoding="utf-8")
    writer = LineWriter(first, direct=True)
    first.close()
    with (
        (tmp_path / "second.log").open("a", encoding="utf-8"),
        pytest.raises(ValueError, match="closed file"),
    ):
        writer.write_line("meant for the first")
    assert (tmp_path / "second.log").read_text(encoding="utf-8") == ""


def test_writers_are_shared_only_while_in_use() -> None:
    """One writer per stream while anyone holds it; none kept alive for a stream let go."""
    stream = io.StringIO()
    writer = line_writer(stream)
    assert line_writer(stream) is writer
    watch = weakref.ref(writer)
    del writer
    gc.collect()
    assert watch() is None


def test_serve_logs_operational_events_and_decisions_through_one_writer(tmp_path: Path) -> None:
    """`configure_logging` sets up the stream's direct writer, and the decision sink uses it."""
    stream = configure_logging(tmp_path / "audit.log", "json", "info")
    sink = decision_sink(stream, "json", "info")
    assert isinstance(sink, JsonLinesSink)
    writer = line_writer(stream)
    assert writer._raw is not None  # direct
    assert structlog.get_config()["logger_factory"]("ops") is writer
