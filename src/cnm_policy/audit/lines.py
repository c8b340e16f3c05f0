"""Whole lines onto a log stream: one system call per write, one lock per stream.

Decision events and the sidecar's operational events share one stream (stdout or
``--log-file``), and a line there must never be cut by another. Every writer of a stream
therefore goes through the same `LineWriter` (`line_writer` hands out one per stream, and
``cnm-policy serve`` makes it structlog's logger too), which holds the stream's lock while it
writes.

A line is also never left in a buffer: it is handed to the operating system before the call
that wrote it returns, so a decision whose answer went out is in the log even if the process is
killed right after. For a stream backed by a file descriptor the writer encodes the text and
calls ``os.write`` on the descriptor itself, bypassing the stream's two buffer layers that
would only be flushed straight away: on the request path that is two thirds of the cost of
``write()`` plus ``flush()``. Streams without a descriptor (``io.StringIO``, captured output
in tests) get ``write()`` and ``flush()``.
"""

from __future__ import annotations

import io
import os
import threading
import weakref
from typing import Final, TextIO

__all__ = ["LineWriter", "line_writer"]

_writers: Final[weakref.WeakKeyDictionary[TextIO, LineWriter]] = weakref.WeakKeyDictionary()
_writers_lock: Final = threading.Lock()


def line_writer(stream: TextIO) -> LineWriter:
    """The one `LineWriter` of `stream` (created on first use)."""
    with _writers_lock:
        writer = _writers.get(stream)
        if writer is None:
            writer = _writers[stream] = LineWriter(stream)
        return writer


class LineWriter:
    """Writes text plus a newline to `stream`, whole, under the stream's lock.

    Build one through `line_writer` so that every writer of a stream shares the lock. It is
    also a structlog logger (``msg`` and the level names), for ``logger_factory``.
    """

    __slots__ = ("_encoding", "_errors", "_fd", "_stream", "lock")

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.lock = threading.Lock()
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._errors = getattr(stream, "errors", None) or "strict"
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            self._fd = None  # no descriptor of its own: write through the stream
        else:
            stream.flush()  # what was written through the stream so far comes first

    def write_line(self, text: str) -> None:
        """Write `text` and a newline; raises `OSError` if the stream cannot take it."""
        fd = self._fd
        with self.lock:
            if fd is None:
                self._stream.write(text + "\n")
                self._stream.flush()
                return
            data = (text + "\n").encode(self._encoding, self._errors)
            written = os.write(fd, data)
            while written < len(data):  # a pipe or a full disk may take part of it
                if written <= 0:
                    raise OSError(f"the log stream took none of a {len(data)}-byte line")
                data = data[written:]
                written = os.write(fd, data)

    def msg(self, message: str) -> None:
        """structlog's logger interface: every level writes the rendered line."""
        self.write_line(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg
