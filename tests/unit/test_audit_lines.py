"""Lines onto a log stream: whole, unbuffered, one writer (and lock) per stream."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from cnm_policy.audit import LineWriter, line_writer


def test_a_line_is_in_the_file_before_write_line_returns(tmp_path: Path) -> None:
    """Nothing waits in a buffer: another reader sees the line at once, without a flush."""
    path = tmp_path / "audit.log"
    with path.open("a", encoding="utf-8") as stream:
        writer = LineWriter(stream)
        writer.write_line('{"event":"decision","id":"é"}')
        assert path.read_text(encoding="utf-8") == '{"event":"decision","id":"é"}\n'


def test_text_written_through_the_stream_earlier_comes_first(tmp_path: Path) -> None:
    """A writer flushes what the stream buffered before it took over the descriptor."""
    path = tmp_path / "audit.log"
    with path.open("a", encoding="utf-8") as stream:
        stream.write("earlier\n")  # still in the stream's buffer
        LineWriter(stream).write_line("later")
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
        writer = LineWriter(stream)
        monkeypatch.setattr(os, "write", three_bytes_at_a_time)
        writer.write_line("0123456789")
    assert path.read_text(encoding="utf-8") == "0123456789\n"
    assert sizes == [11, 8, 5, 2]


def test_a_stream_that_takes_nothing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No endless loop on a descriptor that accepts zero bytes: the caller hears of it."""
    with (tmp_path / "audit.log").open("a", encoding="utf-8") as stream:
        writer = LineWriter(stream)
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
        LineWriter(stream).write_line("café")


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
        writer = LineWriter(stream)
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
