"""Run student code in a separate, limited process and collect the probes' data.

This module runs the process: its limits, the state machine that follows its events against the
deadlines, and the retries. The bubblewrap policy it starts from is :mod:`autograder.sandbox.bwrap` (the
notebook's kernel uses it too); what the process sends back is read by :mod:`autograder.sandbox.channel`.

Isolation, strongest available first:
- bubblewrap (``bwrap``): a private filesystem view (the Python installation
  read-only, an empty writable home and /tmp on size-capped tmpfs, nothing of
  the course folder, the gradebook, other submissions or the grader), no
  network, own PID namespace;
- always: resource limits (address space, CPU seconds, file size, processes),
  a wall-clock deadline per probe, a cap on captured output, an environment
  with nothing but a few harmless variables, an empty temporary directory;
- as root: the code runs as ``nobody`` so that the process limit holds, and the process is forked
  into its fresh sandbox from the template that has imported torch (:mod:`autograder.sandbox.zygote`),
  instead of importing torch itself (the settings' ``sandbox_template`` off: a fresh Python).

A probe that hangs, crashes the process or blows a limit scores nothing; the
remaining probes run again in a fresh process, so one bad answer cannot take
the others down. An answer cell that ends the process or never finishes is
recorded as that cell's error, and the program runs again without it, as if
the cell had raised.

Nothing the student's process writes is trusted: its events are size-capped,
validated JSON lines (anything else is ignored), probe results travel in them
as torch.save bytes loaded with ``weights_only=True`` after a size check, the
whole run has a hard deadline that no event extends, and the grader never
opens a file the student's code could have replaced (a FIFO or a symlink in the
working directory). The settings' ``load_seconds`` and ``probe_seconds``
(``CNN_KIT_LOAD_SECONDS``, ``CNN_KIT_PROBE_SECONDS``) lower or raise the two
wall-clock limits (tests use them), and ``sandbox`` off (``CNN_KIT_SANDBOX=off``)
runs without bubblewrap: the caller passes both down (:meth:`Limits.from_settings`).
"""
from __future__ import annotations

import json
import logging
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import cpuwait
from autograder.sandbox import priority
from autograder.sandbox import zygote
from autograder.sandbox.bwrap import NOBODY, bwrap_base, isolation_available, student_uid, warn_once
from autograder.sandbox.channel import EventReader, decode

log = logging.getLogger(__name__)

PROBE_SCRIPT = Path(__file__).with_name("probe.py")
PROTOCOL = Path(__file__).with_name("protocol.py")  # shipped beside the probe, its only import from the kit


@dataclass(frozen=True)
class Limits:
    start_seconds: float = 120.0      # wall clock for Python and torch to start, before the first cell
    load_seconds: float = 60.0        # wall clock for running the program cells
    probe_seconds: float = 60.0       # wall clock for each probe
    cpu_seconds: int = 300            # CPU time for the whole process
    memory_bytes: int = 6 << 30       # address space (torch alone maps ~3 GiB)
    file_bytes: int = 64 << 20        # largest file the process may write, and largest probe result
    output_bytes: int = 64 << 10      # stdout+stderr kept for feedback
    processes: int = 64               # processes of the sandbox user
    home_bytes: int = 256 << 20       # the working directory (a tmpfs under bubblewrap)
    event_bytes: int = 512 << 20      # most bytes read from one process's event channel
    nice: int = priority.STUDENT_NICE  # CPU priority: below the grader's own training and judging

    def rlimits(self) -> dict[str, tuple[int, int]]:
        """The process's resource limits (soft, hard) by name; the CPU's hard limit 5 s later, so that
        SIGXCPU, not SIGKILL, says why it ended. Processes only as root: the process then runs as nobody."""
        limits = {"RLIMIT_AS": (self.memory_bytes, self.memory_bytes),
                  "RLIMIT_CPU": (self.cpu_seconds, self.cpu_seconds + 5),
                  "RLIMIT_FSIZE": (self.file_bytes, self.file_bytes), "RLIMIT_CORE": (0, 0)}
        if os.getuid() == 0:
            limits["RLIMIT_NPROC"] = (self.processes, self.processes)
        return limits

    @classmethod
    def from_settings(cls, settings) -> "Limits":
        """The defaults, with the wall-clock limits the settings set (``load_seconds``, ``probe_seconds``)."""
        return cls(**{name: getattr(settings, name) for name in ("load_seconds", "probe_seconds")
                      if getattr(settings, name) is not None})


@dataclass
class ProbeRun:
    """What came back for one probe: its data, or why there is none."""
    data: dict | None = None
    error: str | None = None
    patched: list[str] = field(default_factory=list)
    seconds: float = 0.0
    busy: str | None = None  # the machine, not the program, kept it from finishing: to regrade, not a verdict


@dataclass
class SandboxRun:
    probes: dict[str, ProbeRun]
    cell_errors: dict[str, str]
    output: str
    isolation: str
    seconds: float
    patched: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # answer cells run without: why



def _bwrap_command(home: Path, python: list[str], limits: Limits) -> list[str]:
    # The working directory is a size-capped tmpfs that vanishes with the sandbox: nothing the
    # student writes reaches the grader's disk, and the grader never opens a file from it.
    args = bwrap_base() + [
        "--perms", "0755", "--dir", "/home",
        "--perms", "0777", "--size", str(limits.home_bytes), "--tmpfs", "/home/student",
        "--ro-bind", str(home / "_probe.py"), "/home/student/_probe.py",
        "--ro-bind", str(home / "_protocol.py"), "/home/student/_protocol.py",
        "--ro-bind", str(home / "_request.json"), "/home/student/_request.json",
        "--chdir", "/home/student", "--"]
    return args + python


def _limits(limits: Limits):
    def apply() -> None:
        os.setsid()
        priority.lower(0, limits.nice)  # inherited by bubblewrap and everything in the sandbox
        for name, value in limits.rlimits().items():
            resource.setrlimit(getattr(resource, name), value)
    return apply


CLEAN_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/student",
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "CUDA_VISIBLE_DEVICES": "",
    "OMP_NUM_THREADS": "1",
}


class _Output:
    """Reads a stream to the end, keeping only the first `cap` bytes."""

    def __init__(self, stream, cap: int):
        self.kept = bytearray()
        self.dropped = 0
        self.thread = threading.Thread(target=self._read, args=(stream, cap), daemon=True)
        self.thread.start()

    def _read(self, stream, cap: int) -> None:
        while chunk := stream.read(65536):
            room = cap - len(self.kept)
            self.kept += chunk[:max(room, 0)]
            self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        self.thread.join(timeout=2)
        text = self.kept.decode("utf-8", "replace")
        return text + (f"\n... {self.dropped} more bytes of output dropped ..." if self.dropped else "")


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()



def _from_template(home: Path, limits: Limits, events_fd: int):
    """The probe process forked from the template into a fresh sandbox: (holder, output, started), or None.

    The sandbox is the one :func:`_bwrap_command` makes, holding a shell that says it is ready and waits;
    the probe joins it with the same argv, environment, limits and descriptors as a fresh Python gets.
    """
    found = zygote.current()
    if found is None:
        return None
    out_r, out_w = os.pipe()
    ready_r, ready_w = os.pipe()
    process = subprocess.Popen(_bwrap_command(home, ["/bin/sh", "-c", 'echo > "/dev/fd/$0" && exec sleep infinity',
                                                     str(ready_w)], limits),
                               cwd=home, env=dict(CLEAN_ENV), stdin=subprocess.DEVNULL, stdout=out_w,
                               stderr=subprocess.STDOUT, pass_fds=(ready_w,), preexec_fn=_limits(limits))
    os.close(ready_w)
    output = _Output(os.fdopen(out_r, "rb"), limits.output_bytes)
    try:
        deadline = time.monotonic() + limits.start_seconds
        with os.fdopen(ready_r, "rb") as ready:
            readable = select.select([ready], [], [], limits.start_seconds)[0]
            if not readable or not ready.read(1):
                raise zygote.TemplateError("the sandbox did not start")
        started = zygote.start(found[0], zygote.holder_pid(process.pid, deadline),
                               argv=[sys.executable, "-I", "/home/student/_probe.py", "/home/student/_request.json",
                                     "3"],
                               env=dict(CLEAN_ENV), cwd="/home/student", uid=None, limits=limits.rlimits(),
                               nice=limits.nice,
                               fds={1: out_w, 2: out_w, 3: events_fd})
    except zygote.TemplateError as exc:
        log.warning("the probes' process starts as a fresh Python: %s", exc)
        os.close(out_w)
        _kill(process)
        output.text()
        return None
    os.close(out_w)
    return process, output, started


# --- one process --------------------------------------------------------------------------------

@dataclass
class _Attempt:
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


def _run_once(cells, probes, limits: Limits, isolation: str, output_parts: list, template: bool = False) -> _Attempt:
    """One sandboxed process running `cells` and then `probes`: a fresh Python, or (`template`) one forked
    from the pre-imported template into the sandbox (:mod:`autograder.sandbox.zygote`); a fresh one if that fails."""
    attempt = _Attempt(bwrap=isolation == "bwrap")
    wanted = {p["id"] for p in probes}
    started_probes: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="cnn-kit-") as tmp:
        home = Path(tmp)
        shutil.copy(PROBE_SCRIPT, home / "_probe.py")
        shutil.copy(PROTOCOL, home / "_protocol.py")
        # Under bubblewrap the Python installation is bound readable for `nobody`; without it, a root
        # grader's interpreter may live where `nobody` cannot read (e.g. under /root), so it stays.
        uid = student_uid() if os.getuid() == 0 and isolation == "bwrap" else None
        request = {"cells": [{"id": c["id"], "source": c["source"]} for c in cells], "probes": probes,
                   "uid": uid, "threads": 1, "result_bytes": limits.file_bytes}
        (home / "_request.json").write_text(json.dumps(request))
        if uid is not None and isolation != "bwrap":  # without bubblewrap it is the working directory
            os.chown(home, uid, uid)
        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        forked = _from_template(home, limits, write_fd) if template and isolation == "bwrap" else None
        if forked is not None:
            process, output, from_template = forked
        else:
            if isolation == "bwrap":
                command = _bwrap_command(home, [sys.executable, "-I", "/home/student/_probe.py",
                                                "/home/student/_request.json", str(write_fd)], limits)
            else:
                command = [sys.executable, "-I", str(home / "_probe.py"), str(home / "_request.json"),
                           str(write_fd)]
            process = subprocess.Popen(command, cwd=home, env=dict(CLEAN_ENV), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       pass_fds=(write_fd,), preexec_fn=_limits(limits))
            output, from_template = _Output(process.stdout, limits.output_bytes), None
        os.close(write_fd)
        events = os.fdopen(read_fd, "rb", buffering=0)
        lines = EventReader(events, max_line=limits.file_bytes * 4 // 3 + (1 << 20),
                             max_total=limits.event_bytes)
        # No event moves this one: start-up, the cells, and every probe with one probe's time to spare.
        hard_deadline = started + limits.start_seconds + limits.load_seconds + \
            limits.probe_seconds * (len(probes) + 1)
        deadline = started + limits.start_seconds  # no student code runs before the first cell
        starting = True
        while True:
            event = lines.next(min(deadline, hard_deadline))
            if event is None:  # deadline passed, the channel closed, or it was flooded
                break
            kind, now = event["event"], time.monotonic()
            if kind == "cell" and not attempt.loaded:
                if starting:  # the cells' clock starts with the first one
                    starting, deadline = False, now + limits.load_seconds
                attempt.current_cell = event["id"]
            elif kind == "loaded":
                if not attempt.loaded:  # a second `loaded` (forged) extends nothing
                    attempt.loaded = True
                    deadline = now + limits.probe_seconds
                attempt.cell_errors.update(event["errors"])
                attempt.patched.update(event["patched"])  # a forged report cannot hide the real one
            elif kind == "start" and attempt.loaded and event["probe"] in wanted - started_probes - set(attempt.done):
                started_probes.add(event["probe"])
                attempt.current_probe = event["probe"]
                deadline = now + limits.probe_seconds
            elif kind == "done" and attempt.loaded and event["probe"] in wanted:
                probe_id = event["probe"]
                if probe_id in attempt.done:  # a second report for the probe: keep what it says was patched
                    known = attempt.done[probe_id]
                    known.patched = sorted(set(known.patched) | set(event["patched"]))
                    continue
                data, error = None, event["error"]
                if error is None:
                    data, error = decode(event["data"], limits.file_bytes)
                attempt.done[probe_id] = ProbeRun(data=data, error=error, patched=event["patched"],
                                                  seconds=event["seconds"])
                if attempt.current_probe == probe_id:
                    attempt.current_probe = None
                    deadline = time.monotonic() + limits.probe_seconds  # until the next `start`
            elif kind == "end":
                attempt.finished = True
                break
        attempt.flooded = lines.flooded
        if lines.closed and not attempt.finished and not attempt.flooded:
            try:  # the process closed its channel or ended: learn how
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                attempt.channel_closed = True
        elif not lines.closed and not attempt.finished:
            attempt.timed_out = True
            attempt.hard_timeout = time.monotonic() >= hard_deadline
            attempt.starved = _starved(attempt, process.pid, limits, time.monotonic() - started)
        attempt.returncode = process.poll()
        if from_template is not None:
            if attempt.returncode is not None:  # it ended by itself: the probe process's status, not its holder's
                code = from_template.exit_status(timeout=5)
                attempt.returncode = 128 - code if code is not None and code < 0 else code
            from_template.close()
        _kill(process)
        events.close()
        output_parts.append(output.text())
    return attempt


def _starved(attempt: _Attempt, root: int, limits: Limits, wall: float) -> str | None:
    """Why a timed-out process is the machine's fault, if it is: it never reached the first cell (no student
    code had run), or its processes waited for a CPU more than they ran (:mod:`autograder.sandbox.cpuwait`)."""
    if attempt.current_cell is None and not attempt.loaded:
        return f"Python and torch did not start within {limits.start_seconds:.0f} s (the grading machine was too busy)"
    return cpuwait.starvation(root, wall)


def _signal_name(attempt: _Attempt) -> str | None:
    code = attempt.returncode
    if code is None:
        return None
    number = -code if code < 0 else (code - 128 if attempt.bwrap and 128 < code < 128 + 65 else None)
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _why(attempt: _Attempt, limits: Limits, where: str) -> str:
    if attempt.flooded:
        return f"sent more than {limits.event_bytes >> 20} MB to the grader's channel while {where}"
    if attempt.timed_out:
        if attempt.hard_timeout:
            return f"stopped at the whole run's time limit without finishing ({where}): an endless loop?"
        if attempt.current_cell is None and not attempt.loaded:
            return (f"Python and torch did not start within {limits.start_seconds:.0f} s "
                    "(the grading machine is overloaded?)")
        seconds = limits.probe_seconds if attempt.loaded else limits.load_seconds
        return f"stopped after {seconds:.0f} s without finishing ({where}): an endless loop?"
    if attempt.channel_closed:
        return f"closed the grader's channel while {where}"
    sig = _signal_name(attempt)
    if sig:
        hint = {"SIGXCPU": "CPU time limit reached", "SIGXFSZ": "wrote a file over the size limit",
                "SIGKILL": "killed (memory or time limit)", "SIGSEGV": "crashed"}.get(sig, "")
        return f"the process died ({sig}{': ' + hint if hint else ''}) while {where}"
    return f"the process ended early (exit code {attempt.returncode}) while {where}: os._exit or sys.exit?"


def _cell_error(attempt: _Attempt, limits: Limits) -> str:
    """The error recorded for an answer cell that ended or stalled the process while it ran."""
    kind = "TimeoutError" if attempt.timed_out else "ProcessError"
    return (f"{kind}: {_why(attempt, limits, 'running this cell')}; "
            "the grader ran the rest of the program without this cell")


def run_probes(cells: list[dict], probes: list[dict], limits: Limits | None = None, *,
               bwrap: bool = True, template: bool = True) -> SandboxRun:
    """Execute `cells` in a sandbox and answer each probe; never raises for student faults.

    `limits` default to :class:`Limits`'; `bwrap` False runs without bubblewrap (limits only); `template`
    False starts the process as a fresh Python, never from the pre-imported template.
    Cells marked ``"answer": True`` (the student's) may be skipped: if one ends the process or never
    finishes while the program loads, that becomes its error and the program runs again without it.
    """
    limits = limits or Limits()
    isolation = isolation_available(bwrap)
    warn_once(isolation)
    started = time.perf_counter()
    results: dict[str, ProbeRun] = {}
    skipped: dict[str, str] = {}
    cell_errors: dict[str, str] = {}
    outputs: list[str] = []
    patched_at_load: set[str] = set()
    skippable = {c["id"] for c in cells if c.get("answer")}
    known = {c["id"] for c in cells}
    pending = list(probes)
    while pending:
        program = [c for c in cells if c["id"] not in skipped]
        attempt = _run_once(program, pending, limits, isolation, outputs,
                            template=zygote.usable(isolation, template))
        attempt.cell_errors = {k: v for k, v in attempt.cell_errors.items() if k in known}
        if attempt.loaded:
            results.update(attempt.done)
            cell_errors = {**attempt.cell_errors, **skipped}
            patched_at_load |= attempt.patched
        elif attempt.starved:  # the machine kept the program from loading: no verdict for anything pending
            cell_errors = {**attempt.cell_errors, **skipped}
            reason = _why(attempt, limits, "running your cells")
            for probe in pending:
                results.setdefault(probe["id"], ProbeRun(error=reason, busy=attempt.starved))
            break
        else:  # the program itself never finished
            culprit = attempt.current_cell
            if culprit in skippable and culprit not in skipped:
                skipped[culprit] = _cell_error(attempt, limits)
                continue  # again, without that cell
            cell_errors = {**attempt.cell_errors, **skipped}
            reason = _why(attempt, limits, "running your cells")
            for probe in pending:
                results.setdefault(probe["id"], ProbeRun(error=reason))
            break
        if attempt.current_probe is not None and attempt.current_probe not in results:
            results[attempt.current_probe] = ProbeRun(error=_why(attempt, limits, "checking it"),
                                                      busy=attempt.starved)
        remaining = [p for p in pending if p["id"] not in results]
        if len(remaining) == len(pending):  # no progress at all: do not loop
            for probe in remaining:
                results[probe["id"]] = ProbeRun(error=_why(attempt, limits, "checking it"), busy=attempt.starved)
            break
        pending = remaining
    return SandboxRun(probes=results, cell_errors=cell_errors, output="".join(outputs),
                      isolation=isolation, seconds=time.perf_counter() - started,
                      patched=sorted(patched_at_load), skipped=skipped)
