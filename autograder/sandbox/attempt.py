"""One sandboxed process: the program and the probes it is asked, followed event by event against the
deadlines; what it managed to say, and how it ended."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import cpuwait
from autograder.sandbox import events
from autograder.sandbox import launch
from autograder.sandbox import protocol
from autograder.sandbox.bwrap import student_uid
from autograder.sandbox.channel import EventReader, decode
from autograder.sandbox.limits import Limits


@dataclass
class ProbeRun:
    """What came back for one probe: its data, or why there is none."""
    data: dict | None = None
    error: str | None = None
    patched: list[str] = field(default_factory=list)
    seconds: float = 0.0
    busy: str | None = None  # the machine, not the program, kept it from finishing: to regrade, not a verdict



@dataclass
class Attempt:
    """What one sandboxed process managed to say, and how it ended."""
    loaded: bool = False
    finished: bool = False
    cell_errors: dict = field(default_factory=dict)
    patched: set = field(default_factory=set)
    done: dict = field(default_factory=dict)          # probe id -> ProbeRun
    current_cell: str | None = None                    # the cell running when loading stopped
    current_probe: str | None = None                   # the probe running when the process stopped
    timed_out: bool = False
    hard_timeout: bool = False
    starved: str | None = None                         # timed out waiting for a CPU (autograder.sandbox.cpuwait)
    flooded: bool = False
    channel_closed: bool = False                       # closed its channel but went on running
    returncode: int | None = None
    bwrap: bool = False



class Follower:
    """The grader's side of the protocol for one process: each event moves its state and its deadline."""

    def __init__(self, attempt: Attempt, probes: list[protocol.Probe], limits: Limits, started: float):
        self.attempt, self.limits = attempt, limits
        self.wanted = {p.id for p in probes}
        self.started_probes: set[str] = set()
        # No event moves this one: start-up, the cells, and every probe with one probe's time to spare.
        self.hard_deadline = started + limits.start_seconds + limits.load_seconds + \
            limits.probe_seconds * (len(probes) + 1)
        self.deadline = started + limits.start_seconds  # no student code runs before the first cell
        self.starting = True

    def follow(self, lines: EventReader) -> None:
        """Read events until the end, a deadline, the channel's close or a flood."""
        while True:
            event = lines.next(min(self.deadline, self.hard_deadline))
            if event is None:  # deadline passed, the channel closed, or it was flooded
                return
            if isinstance(event, events.EndEvent):
                self.attempt.finished = True
                return
            self.take(event, time.monotonic())

    def take(self, event, now: float) -> None:
        attempt, limits = self.attempt, self.limits
        if isinstance(event, events.CellEvent) and not attempt.loaded:
            if self.starting:  # the cells' clock starts with the first one
                self.starting, self.deadline = False, now + limits.load_seconds
            attempt.current_cell = event.id
        elif isinstance(event, events.LoadedEvent):
            if not attempt.loaded:  # a second `loaded` (forged) extends nothing
                attempt.loaded = True
                self.deadline = now + limits.probe_seconds
            attempt.cell_errors.update(event.errors)
            attempt.patched.update(event.patched)  # a forged report cannot hide the real one
        elif isinstance(event, events.StartEvent) and attempt.loaded and \
                event.probe in self.wanted - self.started_probes - set(attempt.done):
            self.started_probes.add(event.probe)
            attempt.current_probe = event.probe
            self.deadline = now + limits.probe_seconds
        elif isinstance(event, events.DoneEvent) and attempt.loaded and event.probe in self.wanted:
            self.done(event)

    def done(self, event: events.DoneEvent) -> None:
        attempt = self.attempt
        if event.probe in attempt.done:  # a second report for the probe: keep what it says was patched
            known = attempt.done[event.probe]
            known.patched = sorted(set(known.patched) | set(event.patched))
            return
        data, error = None, event.error
        if error is None:
            data, error = decode(event.data, self.limits.file_bytes)
        attempt.done[event.probe] = ProbeRun(data=data, error=error, patched=list(event.patched),
                                             seconds=event.seconds)
        if attempt.current_probe == event.probe:
            attempt.current_probe = None
            self.deadline = time.monotonic() + self.limits.probe_seconds  # until the next `start`


def run_once(cells, probes: list[protocol.Probe], limits: Limits, isolation: str, output_parts: list,
             template: bool = False) -> Attempt:
    """One sandboxed process running `cells` and then `probes`: a fresh Python, or (`template`) one forked
    from the pre-imported template into the sandbox (:mod:`autograder.sandbox.zygote`); a fresh one if that fails."""
    attempt = Attempt(bwrap=isolation == "bwrap")
    with tempfile.TemporaryDirectory(prefix="cnn-kit-") as tmp:
        home = Path(tmp)
        launch.ship_kit(home)
        # Under bubblewrap the Python installation is bound readable for `nobody`; without it, a root
        # grader's interpreter may live where `nobody` cannot read (e.g. under /root), so it stays.
        uid = student_uid() if os.getuid() == 0 and isolation == "bwrap" else None
        launch.write_request(home, cells, probes, uid, limits.file_bytes)
        if uid is not None and isolation != "bwrap":  # without bubblewrap it is the working directory
            os.chown(home, uid, uid)
        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        process, output, from_template = launch.start(home, limits, isolation, template, write_fd)
        os.close(write_fd)
        events = os.fdopen(read_fd, "rb", buffering=0)
        lines = EventReader(events, max_line=limits.file_bytes * 4 // 3 + (1 << 20),
                             max_total=limits.event_bytes)
        follower = Follower(attempt, probes, limits, started)
        follower.follow(lines)
        _how_it_ended(attempt, lines, process, limits, started, follower.hard_deadline)
        if from_template is not None:
            if attempt.returncode is not None:  # it ended by itself: the probe process's status, not its holder's
                code = from_template.exit_status(timeout=5)
                attempt.returncode = 128 - code if code is not None and code < 0 else code
            from_template.close()
        launch.kill(process)
        events.close()
        output_parts.append(output.text())
    return attempt


def _how_it_ended(attempt: Attempt, lines: EventReader, process: subprocess.Popen, limits: Limits,
                  started: float, hard_deadline: float) -> None:
    attempt.flooded = lines.flooded
    if lines.closed and not attempt.finished and not attempt.flooded:
        try:  # the process closed its channel or ended: learn how
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            attempt.channel_closed = True
    elif not lines.closed and not attempt.finished:
        attempt.timed_out = True
        attempt.hard_timeout = time.monotonic() >= hard_deadline
        attempt.starved = starved(attempt, process.pid, limits, time.monotonic() - started)
    attempt.returncode = process.poll()


def starved(attempt: Attempt, root: int, limits: Limits, wall: float) -> str | None:
    """Why a timed-out process is the machine's fault, if it is: it never reached the first cell (no student
    code had run), or its processes waited for a CPU more than they ran (:mod:`autograder.sandbox.cpuwait`)."""
    if attempt.current_cell is None and not attempt.loaded:
        return f"Python and torch did not start within {limits.start_seconds:.0f} s (the grading machine was too busy)"
    return cpuwait.starvation(root, wall)
