"""The instructor's terminal: what the kit writes there shows a submission's bytes, never obeys them.

A submission reaches the screen by many roads: a cell's output, an error message the grader quotes, a
student id or a file name, a log line. Any of them may hold control characters: ESC sequences that set
the window title or the clipboard (OSC 0, OSC 52), move the cursor and rewrite the kit's own lines (CSI),
or switch the terminal's echo off. :func:`visible` is the one filter: every C0 control but newline and
tab, DEL, every C1 control (0x80-0x9f) and a lone surrogate (a file name that is not UTF-8) is shown as
``\\xNN`` (or ``\\uNNNN``), so the bytes are seen and none is interpreted.

:func:`install` puts it between the kit and the terminal: ``sys.stdout`` and ``sys.stderr`` become
:class:`VisibleStream` wrappers, so every ``print`` and every log line of the process passes it.
Sandboxed processes never hold the terminal (their standard input is /dev/null, their output a pipe, their
session their own); :func:`relay` shows what they write, through the same filter.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading

# C0 but tab and newline, DEL, C1, and the surrogates Python uses for bytes that are not UTF-8
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text) -> str:
    """`text` with every control character (but newline and tab) written out as ``\\xNN``: shown, never obeyed."""
    return _CONTROL.sub(_escape, str(text))


class VisibleStream:
    """A text stream that writes everything through :func:`visible` into `stream` (sys.stdout, sys.stderr)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(visible(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):  # flush, fileno, isatty, encoding…: the stream's own
        return getattr(self.stream, name)


def unfiltered(stream):
    """The stream under a :class:`VisibleStream`: for the kit's own control characters only (a progress bar's
    carriage return), never for text from a submission."""
    return stream.stream if isinstance(stream, VisibleStream) else stream


def install() -> None:
    """Make this process's sys.stdout and sys.stderr show control characters instead of sending them, and
    the log handlers that already write to either (a Dask worker's, made before the kit's code ran)."""
    wrapped = {}
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, VisibleStream):
            wrapped[id(stream)] = VisibleStream(stream)
            setattr(sys, name, wrapped[id(stream)])
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in wrapped:
                handler.stream = wrapped[id(handler.stream)]


def relay(fd: int, prefix: str, cap: int = 64 << 10) -> threading.Thread:
    """Read the pipe `fd` to its end (it is closed then) and show its first `cap` bytes on stderr, line by
    line, each after `prefix`, through :func:`visible`; what is over the cap is counted, not shown."""
    def run() -> None:
        shown, dropped, pending = 0, 0, b""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                room = max(cap - shown, 0)
                dropped += max(len(chunk) - room, 0)
                chunk = chunk[:room]
                shown += len(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    _show(prefix, line)
        if pending:
            _show(prefix, pending)
        if dropped:
            _show(prefix, f"... {dropped} more bytes of output not shown".encode())

    thread = threading.Thread(target=run, daemon=True, name=f"relay {prefix}")
    thread.start()
    return thread


def _show(prefix: str, line: bytes) -> None:
    try:
        sys.stderr.write(visible(prefix + line.decode("utf-8", "surrogateescape")) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: the output is dropped, the grading goes on
        pass
