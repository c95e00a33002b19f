"""What the probes' process sends back, defined once (standard library only): one dataclass per event.

Each event is one JSON line ``{"event": EVENT, **fields}``, written by ``inside/emitter.py`` in the
sandbox (shipped there beside ``protocol.py``) and read by :mod:`autograder.sandbox.channel` in the
grader, which trusts none of it: every line becomes one of these with each field bounded and checked,
or is dropped. The order: ``cell`` before each program cell, ``loaded``, ``start`` and ``done`` for
each probe, ``end``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar


@dataclass(frozen=True)
class CellEvent:
    """Before each program cell: the grader knows which cell ran when the process died or hung."""
    EVENT: ClassVar[str] = "cell"
    id: str


@dataclass(frozen=True)
class LoadedEvent:
    """The program ran: each cell's error, and what of torch the program patched."""
    EVENT: ClassVar[str] = "loaded"
    errors: dict = field(default_factory=dict)
    patched: list = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class StartEvent:
    """A probe starts: its own deadline starts."""
    EVENT: ClassVar[str] = "start"
    probe: str


@dataclass(frozen=True)
class DoneEvent:
    """A probe ended: its error, or its data (torch.save bytes, base64); what was patched by then."""
    EVENT: ClassVar[str] = "done"
    probe: str
    error: str | None = None
    patched: list = field(default_factory=list)
    seconds: float = 0.0
    data: str | None = None


@dataclass(frozen=True)
class EndEvent:
    """Every probe ran."""
    EVENT: ClassVar[str] = "end"


EVENTS = {cls.EVENT: cls for cls in (CellEvent, LoadedEvent, StartEvent, DoneEvent, EndEvent)}


def event_fields(cls) -> tuple[str, ...]:
    """The names of an event's fields, in order (its line carries these and ``event``)."""
    return tuple(f.name for f in fields(cls))
