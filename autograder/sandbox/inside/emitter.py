"""The event stream from the probes' process to the grader: typed events out, as JSON lines.

Everything it needs is bound when it is made, before any student code runs: a student who rebinds
``json``, ``os``, ``torch.save`` or the event classes afterwards changes neither what it writes nor the
integrity report it adds to each event that carries one.
"""
import base64
import io
import json
import os

from .. import events


class Channel:
    """The event stream to the grader, with every function it needs bound at creation."""

    def __init__(self, fd, result_bytes, changed):
        import torch

        self.fd = fd
        self._changed = changed       # the integrity check's report, bound (Integrity.changed)
        self._layout = {cls: (cls.EVENT, events.event_fields(cls)) for cls in events.EVENTS.values()}
        self._type, self._getattr = type, getattr
        self.result_bytes = result_bytes
        self._write = os.write
        self._encode = json.JSONEncoder(ensure_ascii=True).encode
        self._b64 = base64.b64encode
        self._save = torch.save
        self._buffer = io.BytesIO
        self._len = len

    def send(self, event):
        """Write one event of ``events.EVENTS`` as a line; its ``patched`` is the integrity check's, now."""
        tag, names = self._layout[self._type(event)]
        line = {"event": tag}
        for name in names:
            line[name] = self._changed() if name == "patched" else self._getattr(event, name)
        view = memoryview((self._encode(line) + "\n").encode("ascii"))
        while view:
            view = view[self._write(self.fd, view):]

    def pack(self, data):
        """The probe's data as text for the `done` event; raises if it is too large."""
        buffer = self._buffer()
        self._save(data, buffer)
        raw = buffer.getvalue()
        if self._len(raw) > self.result_bytes:
            raise OverflowError(f"the result is {self._len(raw) >> 20} MB, over the "
                                f"{self.result_bytes >> 20} MB the grader reads back")
        return self._b64(raw).decode("ascii")

