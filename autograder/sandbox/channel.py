"""The channel from the student's process to the grader: nothing it carries is trusted.

The probes' process (:mod:`autograder.sandbox.inside`, beside student code) writes JSON lines to a pipe. The
grader reads them with :class:`EventReader` (a cap per line and in all), reads each into its event of
``events.EVENTS`` with only the fields of its kind, each of the right type (:func:`validate`; anything
else is noise), and reads a
probe's result back with :func:`decode`: base64 of torch.save bytes, size-checked before
``torch.load(weights_only=True)``, then copied into plain values with a budget (:func:`clean`), so a
few kilobytes of shared pickled containers cannot expand into gigabytes. Every string that comes
back is capped and made printable: it ends up in messages and notebooks.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import math
import threading
import time
import zipfile

import torch

from autograder.sandbox import events

TEXT_CAP = 2000  # longest error or cell-error text taken from the student's process


def _safe(text: str, cap: int = TEXT_CAP) -> str:
    """Student-made text, capped and printable as UTF-8 (a lone surrogate becomes its escape)."""
    text = text[:cap]
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")[:cap]


def _text(value, default: str = "") -> str:
    return _safe(value) if isinstance(value, str) else default


def _names(value) -> list[str]:
    return [_safe(v, 200) for v in value[:200] if isinstance(v, str)] if isinstance(value, list) else []


MAX_NODES = 200_000     # values in one probe's data, counted as a tree (shared containers count each time)
MAX_DEPTH = 40          # containers nested in one probe's data
MAX_KEY = 300           # characters of a dictionary key


class TooLarge(ValueError):
    """A probe's data is bigger or deeper than any honest answer: refused before the grader uses it."""


def clean(value, budget: list[int] | None = None, depth: int = 0):
    """A probe's loaded data as a plain tree, every string made safe (they end up in messages and notebooks).

    Bounded: a few kilobytes of pickle can describe a structure of shared containers that expands to
    gigabytes as a tree, so values are counted as they are copied and the copy stops at the bound.
    """
    budget = [MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise TooLarge(f"more than {MAX_NODES:,} values")
    if depth > MAX_DEPTH:
        raise TooLarge(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        return _safe(value)
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            if isinstance(key, str) and len(key) > MAX_KEY:
                raise TooLarge(f"a key of {len(key):,} characters")
            cleaned[clean(key, budget, depth + 1)] = clean(item, budget, depth + 1)
        return cleaned
    if isinstance(value, (list, tuple)):
        return type(value)(clean(v, budget, depth + 1) for v in value)
    return value


class NoiseEvent:
    """A line that is not one of ``events.EVENTS`` with fields of the right types: ignored."""


def _seconds(value) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def _errors(value) -> dict[str, str]:
    return {_safe(k, 200): _text(v) for k, v in list(value.items())[:200]
            if isinstance(k, str) and isinstance(v, str)} if isinstance(value, dict) else {}


def validate(event):
    """The line as its ``events`` event, with only the fields of its kind, each of the right type, its
    strings capped and printable; None for anything else. ``DoneEvent.data`` stays as sent (checked by
    :func:`decode`)."""
    if not isinstance(event, dict):
        return None
    kind = event.get("event")
    if kind == events.CellEvent.EVENT and isinstance(event.get("id"), str):
        return events.CellEvent(event["id"])
    if kind == events.LoadedEvent.EVENT:
        return events.LoadedEvent(errors=_errors(event.get("errors")), patched=_names(event.get("patched")),
                                    seconds=_seconds(event.get("seconds")))
    if kind == events.StartEvent.EVENT and isinstance(event.get("probe"), str):
        return events.StartEvent(event["probe"])
    if kind == events.DoneEvent.EVENT and isinstance(event.get("probe"), str):
        error = event.get("error")
        error = None if error is None else _text(error, "a malformed error report")
        return events.DoneEvent(event["probe"], error=error,
                                patched=_names(event.get("patched")), seconds=_seconds(event.get("seconds")),
                                data=event.get("data"))
    if kind == events.EndEvent.EVENT:
        return events.EndEvent()
    return None


def decode(text, limit: int):
    """A probe's data from its `done` event: (data, None) or (None, why not)."""
    if not isinstance(text, str):
        return None, "no result came back with it"
    if len(text) > limit * 4 // 3 + 8:
        return None, "its result is over the size the grader reads back"
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None, "its result could not be read back (not base64)"
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:  # torch.save writes stored, uncompressed entries
            entries = archive.infolist()
            if any(e.compress_type != zipfile.ZIP_STORED for e in entries) or \
                    sum(e.file_size for e in entries) > limit:
                return None, "its result could not be read back (not packed as torch.save packs it)"
        data = clean(torch.load(io.BytesIO(raw), weights_only=True))
    except TooLarge as exc:
        return None, f"its result is too large for the grader to read back ({exc})"
    except Exception as exc:  # unreadable or forged (RecursionError included)
        return None, f"its result could not be read back ({type(exc).__name__})"
    if not isinstance(data, dict):
        return None, "its result could not be read back (not a probe's data)"
    return data, None


class EventReader:
    """JSON lines from the student's process, read in a thread, with a cap per line and in all."""

    def __init__(self, stream, max_line: int, max_total: int):
        self.stream = stream
        self.max_line, self.max_total = max_line, max_total
        self.lines: list[bytes | None] = []   # None: a line over the cap, dropped
        self.closed = False
        self.flooded = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        parts: list[bytes] = []
        size, total, overlong = 0, 0, False
        while True:
            try:
                chunk = self.stream.read(1 << 16)
            except (OSError, ValueError):
                chunk = b""
            total += len(chunk)
            done: list[bytes | None] = []
            start = 0
            while chunk:
                newline = chunk.find(b"\n", start)
                piece = chunk[start:] if newline < 0 else chunk[start:newline]
                if not overlong and size + len(piece) > self.max_line:
                    overlong, parts, size = True, [], 0
                if not overlong:
                    parts.append(piece)
                    size += len(piece)
                if newline < 0:
                    break
                done.append(None if overlong else b"".join(parts))
                parts, size, overlong, start = [], 0, False, newline + 1
            with self.cond:
                self.lines += done
                if not chunk or total > self.max_total:
                    self.flooded = total > self.max_total
                    self.closed = True
                    self.cond.notify()
                    return
                self.cond.notify()

    def next(self, deadline: float):
        """The next event (validated: a ``events`` event, or a NoiseEvent), or None: closed or too late."""
        with self.cond:
            while not self.lines:
                if self.closed:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)
            line = self.lines.pop(0)
        try:
            event = validate(json.loads(line)) if line is not None else None
        except (ValueError, RecursionError):
            event = None
        return event or NoiseEvent()

