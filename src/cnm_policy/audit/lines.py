"""Whole lines onto a log stream, never left in a buffer, one lock per stream.

Decision events and the sidecar's operational events share one stream (stdout or
``--log-file``), and a line there must never be cut by another. Every writer of a stream
therefore goes through the same `LineWriter` (`line_writer` hands out one per stream, and
``cnm-policy serve`` makes it structlog's logger too), which holds the stream's lock while it
writes.

A line is handed to the operating system before the call that wrote it returns, so a decision
whose answer went out is in the log even if the process is killed right after. By default that
is the stream's ``write()`` and ``flush()``. The owner of a plain file or standard stream may ask
for *direct* writes instead (``cnm-policy serve`` does, for the stream it set up): the text is
encoded and given to ``os.write`` on the descriptor, skipping the stream's text and buffer
layers, which would only be flushed straight away; on the request path that is two thirds of
the cost. Direct writes are used only when they write exactly what the stream would: a plain
`io.TextIOWrapper` over a buffered file (not gzip, not a subclass that overrides ``write``), in
an encoding without a byte-order mark, translating no newlines (its owner vouches for that:
it cannot be read back from the stream). Text written through the stream object *after* the
writer was set up may then reach the file after later lines; what was written before is
flushed first.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import threading
import weakref
from typing import Final, TextIO

__all__ = ["LineWriter", "line_writer"]

# Writers by id(stream), each holding its stream: an entry lives as long as some user holds
# the writer, and while it does the stream (hence its id) stays alive and cannot be reused.
_writers: Final[weakref.WeakValueDictionary[int, LineWriter]] = weakref.WeakValueDictionary()
_writers_lock: Final = threading.Lock()
# Encodings that add no byte-order mark, so each line may be encoded on its own.
_DIRECT_ENCODINGS: Final = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1"})


def line_writer(stream: TextIO, *, direct: bool = False) -> LineWriter:
    """The one `LineWriter` of `stream`, created on first use.

    `direct` asks for writes straight to the descriptor (see the module docstring); it counts
    only when the writer is created, so the owner of the stream asks first.
    """
    with _writers_lock:
        writer = _writers.get(id(stream))
        if writer is None or writer.stream is not stream:
            writer = _writers[id(stream)] = LineWriter(stream, direct=direct)
        return writer


class LineWriter:
    """Writes text plus a newline to `stream`, whole, under the writer's lock.

    Get one through `line_writer`, so that every writer of a stream shares the lock. It is also
    a structlog logger (``msg`` and the level names), for ``logger_factory``.
    """

    __slots__ = ("__weakref__", "_encoding", "_errors", "_raw", "lock", "stream")

    def __init__(self, stream: TextIO, *, direct: bool = False) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        # For direct writes, the file under the stream and how the stream encodes (None for
        # str.encode's own default, UTF-8 strict, which skips the codec lookup).
        self._raw = _direct_file(stream) if direct else None
        self._encoding: str | None = None
        self._errors = "strict"
        if self._raw is not None:
            errors = stream.errors or "strict"
            if codecs.lookup(stream.encoding).name != "utf-8" or errors != "strict":
                self._encoding, self._errors = stream.encoding, errors
            stream.flush()  # what was written through the stream so far comes first

    def write_line(self, text: str) -> None:
        """Write `text` and a newline (see `write_lines`)."""
        self.write_lines(text + "\n")

    def write_lines(self, text: str) -> None:
        """Write `text`, whole lines each ending in a newline, in one go.

        Raises `ValueError` if `text` does not end with a newline (the next writer's line would
        continue it) or once the stream is closed, and `OSError` if the lines cannot be written.
        """
        if not text.endswith("\n"):
            raise ValueError("a log write must end with a newline")
        raw = self._raw
        # acquire/release rather than `with`: half the cost, on every decision logged.
        lock = self.lock
        lock.acquire()
        try:
            if raw is None:
                self.stream.write(text)
                self.stream.flush()
                return
            encoding = self._encoding
            data = text.encode() if encoding is None else text.encode(encoding, self._errors)
            # fileno() raises ValueError once the stream is closed: its descriptor number may
            # belong to another file by then.
            fd = raw.fileno()
            written = os.write(fd, data)
            if written < len(data):  # a pipe or a full disk may take part of it
                _write_rest(fd, memoryview(data), written)
        finally:
            lock.release()

    def msg(self, message: str) -> None:
        """structlog's logger interface: every level writes the rendered line."""
        self.write_line(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _direct_file(stream: TextIO) -> io.FileIO | None:
    """The file under `stream` if writing to its descriptor writes exactly what the stream would."""
    buffer = getattr(stream, "buffer", None)
    raw = getattr(buffer, "raw", None)
    if (
        type(stream) is not io.TextIOWrapper
        or type(buffer) not in (io.BufferedWriter, io.BufferedRandom)
        or type(raw) is not io.FileIO
        or stream.closed
    ):
        return None
    try:
        encoding = codecs.lookup(stream.encoding).name
    except LookupError:
        return None
    return raw if encoding in _DIRECT_ENCODINGS else None


def _write_rest(fd: int, data: memoryview, written: int) -> None:
    """Finish a write that took `written` bytes of `data`; a descriptor that takes nothing at
    all is an error.

    If the write fails after part of the text went out, the cut line is ended (best effort) so
    that the next line starts on a line of its own instead of being glued to the fragment.
    """
    try:
        while written < len(data):
            more = os.write(fd, data[written:])
            if more <= 0:
                raise OSError(
                    f"the log stream took none of the last {len(data) - written} bytes of a line"
                )
            written += more
    except OSError:
        if written > 0:
            with contextlib.suppress(OSError):
                os.write(fd, b"\n")
        raise
