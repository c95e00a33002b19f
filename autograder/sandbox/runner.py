"""Run student code in a separate, limited process and collect the probes' data.

This module runs the probes to the end: the retries, and why a process that stopped early stopped. One
process is :mod:`autograder.sandbox.attempt` (the state machine that follows its events against the
deadlines), started by :mod:`autograder.sandbox.launch` within :mod:`autograder.sandbox.limits`; the
bubblewrap policy it starts from is :mod:`autograder.sandbox.bwrap` (the notebook's kernel uses it too);
what the process sends back is read by :mod:`autograder.sandbox.channel`; what runs in it is
:mod:`autograder.sandbox.inside`, and both sides speak :mod:`autograder.sandbox.protocol`.

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

import signal
import time
from dataclasses import dataclass, field

from autograder.sandbox import protocol
from autograder.sandbox import zygote
from autograder.sandbox.attempt import Attempt, ProbeRun, run_once
from autograder.sandbox.bwrap import isolation_available, warn_once
from autograder.sandbox.limits import Limits

__all__ = ["Limits", "ProbeRun", "SandboxRun", "isolation_available", "run_probes"]


@dataclass
class SandboxRun:
    probes: dict[str, ProbeRun]
    cell_errors: dict[str, str]
    output: str
    isolation: str
    seconds: float
    patched: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # answer cells run without: why



def _signal_name(attempt: Attempt) -> str | None:
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


def _why(attempt: Attempt, limits: Limits, where: str) -> str:
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


def _cell_error(attempt: Attempt, limits: Limits) -> str:
    """The error recorded for an answer cell that ended or stalled the process while it ran."""
    kind = "TimeoutError" if attempt.timed_out else "ProcessError"
    return (f"{kind}: {_why(attempt, limits, 'running this cell')}; "
            "the grader ran the rest of the program without this cell")


def run_probes(cells: list[dict], probes: list, limits: Limits | None = None, *,
               bwrap: bool = True, template: bool = True) -> SandboxRun:
    """Execute `cells` in a sandbox and answer each probe; never raises for student faults.

    `limits` default to :class:`Limits`'; `bwrap` False runs without bubblewrap (limits only); `template`
    False starts the process as a fresh Python, never from the pre-imported template.
    Cells marked ``"answer": True`` (the student's) may be skipped: if one ends the process or never
    finishes while the program loads, that becomes its error and the program runs again without it.
    Over 50 lines on purpose: the retry loop and its stopping rules are one decision, kept together.
    """
    limits = limits or Limits()
    probes = [protocol.Probe.of(probe) for probe in probes]  # a check's dict, typed (and checked) here
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
        attempt = run_once(program, pending, limits, isolation, outputs,
                            template=zygote.usable(isolation, template))
        attempt.cell_errors = {k: v for k, v in attempt.cell_errors.items() if k in known}
        if attempt.loaded:
            results.update(attempt.done)
            cell_errors = {**attempt.cell_errors, **skipped}
            patched_at_load |= attempt.patched
        else:
            culprit = attempt.current_cell
            if not attempt.starved and culprit in skippable and culprit not in skipped:
                skipped[culprit] = _cell_error(attempt, limits)
                continue  # the program itself never finished: again, without that cell
            # The program never loaded: no verdict for anything pending (to regrade if the machine was to blame).
            cell_errors = {**attempt.cell_errors, **skipped}
            reason = _why(attempt, limits, "running your cells")
            for probe in pending:
                results.setdefault(probe.id, ProbeRun(error=reason, busy=attempt.starved))
            break
        if attempt.current_probe is not None and attempt.current_probe not in results:
            results[attempt.current_probe] = ProbeRun(error=_why(attempt, limits, "checking it"),
                                                      busy=attempt.starved)
        remaining = [p for p in pending if p.id not in results]
        if len(remaining) == len(pending):  # no progress at all: do not loop
            for probe in remaining:
                results[probe.id] = ProbeRun(error=_why(attempt, limits, "checking it"), busy=attempt.starved)
            break
        pending = remaining
    return SandboxRun(probes=results, cell_errors=cell_errors, output="".join(outputs),
                      isolation=isolation, seconds=time.perf_counter() - started,
                      patched=sorted(patched_at_load), skipped=skipped)

