"""Run student code in a separate, limited process and collect the probes' data.

Isolation, strongest available first:
- bubblewrap (``bwrap``): a private filesystem view (the Python installation
  read-only, an empty writable home, nothing of the course folder, the
  gradebook, other submissions or the grader), no network, own PID namespace;
- always: resource limits (address space, CPU seconds, file size, processes),
  a wall-clock deadline per probe, a cap on captured output, an environment
  with nothing but a few harmless variables, an empty temporary directory;
- as root: the code runs as ``nobody`` so that the process limit holds.

A probe that hangs, crashes the process or blows a limit scores nothing; the
remaining probes run again in a fresh process, so one bad answer cannot take
the others down.
"""
from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PROBE_SCRIPT = Path(__file__).with_name("probe.py")
NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    load_seconds: float = 60.0        # wall clock for running the program cells
    probe_seconds: float = 60.0       # wall clock for each probe
    cpu_seconds: int = 300            # CPU time for the whole process
    memory_bytes: int = 6 << 30       # address space (torch alone maps ~3 GiB)
    file_bytes: int = 64 << 20        # largest file the process may write
    output_bytes: int = 64 << 10      # stdout+stderr kept for feedback
    processes: int = 64               # processes of the sandbox user


@dataclass
class ProbeRun:
    """What came back for one probe: its data, or why there is none."""
    data: dict | None = None
    error: str | None = None
    patched: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class SandboxRun:
    probes: dict[str, ProbeRun]
    cell_errors: dict[str, str]
    output: str
    isolation: str
    seconds: float
    patched: list[str] = field(default_factory=list)


_warned = False


def isolation_available() -> str:
    """'bwrap' when bubblewrap works here, else 'limits only'."""
    if shutil.which("bwrap") is None or os.environ.get("CNN_KIT_SANDBOX") == "off":
        return "limits only"
    return "bwrap"


def _warn_once(isolation: str) -> None:
    global _warned
    if isolation != "bwrap" and not _warned:
        _warned = True
        log.warning("No bubblewrap sandbox on this machine (apt-get install bubblewrap): "
                    "student code runs with resource limits, a clean environment and an "
                    "empty directory, but can read files and reach the network.")


def _bind_with_parents(path: Path, args: list[str], made: set[str]) -> None:
    for parent in reversed(path.parents):
        p = str(parent)
        if p != "/" and p not in made:
            args += ["--perms", "0755", "--dir", p]
            made.add(p)
    args += ["--ro-bind", str(path), str(path)]
    made.add(str(path))


def _bwrap_command(home: Path, python: list[str]) -> list[str]:
    args = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
            "--ro-bind", "/usr", "/usr"]
    for link in ("lib", "lib64", "bin", "sbin"):
        if os.path.islink(f"/{link}"):
            args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            args += ["--ro-bind", f"/{link}", f"/{link}"]
    if os.getuid() != 0:
        args.insert(1, "--unshare-user")
    made: set[str] = {"/usr", "/proc", "/dev"}
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(os.path.realpath(sys.executable)).parent.parent}
    roots |= {Path(p).resolve() for p in sys.path if "site-packages" in p and os.path.isdir(p)}
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if not any(str(root).startswith(m + "/") or str(root) == m for m in made):
            _bind_with_parents(root, args, made)
    for venv_root in {Path(sys.prefix)}:  # the venv's own path, unresolved, for pyvenv.cfg
        if str(venv_root) not in made:
            _bind_with_parents(venv_root, args, made)
    args += ["--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/tmp",
             "--perms", "0755", "--dir", "/home",
             "--bind", str(home), "/home/student", "--chdir", "/home/student", "--"]
    return args + python


def _limits(limits: Limits):
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if os.getuid() == 0:  # the child drops to nobody, whose processes this counts
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
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


def _run_once(cells, probes, limits: Limits, isolation: str, events_out: list, output_parts: list):
    """One sandboxed process; returns the events it managed to send."""
    with tempfile.TemporaryDirectory(prefix="cnn-kit-") as tmp:
        home = Path(tmp)
        shutil.copy(PROBE_SCRIPT, home / "_probe.py")
        uid = NOBODY if os.getuid() == 0 else None
        request = {"cells": cells, "probes": probes, "uid": uid, "threads": 1}
        (home / "_request.json").write_text(json.dumps(request))
        if uid is not None:
            os.chown(home, uid, uid)
        read_fd, write_fd = os.pipe()
        if isolation == "bwrap":
            command = _bwrap_command(home, [sys.executable, "-I", "/home/student/_probe.py",
                                            "/home/student/_request.json", str(write_fd)])
        else:
            command = [sys.executable, "-I", str(home / "_probe.py"), str(home / "_request.json"),
                       str(write_fd)]
        process = subprocess.Popen(command, cwd=home, env=dict(CLEAN_ENV), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   pass_fds=(write_fd,), preexec_fn=_limits(limits))
        os.close(write_fd)
        output = _Output(process.stdout, limits.output_bytes)
        events = os.fdopen(read_fd, "rb", buffering=0)
        lines = _EventReader(events)
        deadline = time.monotonic() + limits.load_seconds
        current = None
        finished = False
        while True:
            event = lines.next(deadline)
            if event is None:  # deadline passed, or the process ended without a word
                break
            events_out.append(event)
            if event["event"] == "loaded":
                deadline = time.monotonic() + limits.probe_seconds
            elif event["event"] == "start":
                current = event["probe"]
                deadline = time.monotonic() + limits.probe_seconds
            elif event["event"] == "done":
                current = None
                if event["error"] is None:
                    path = home / "out" / (event["probe"] + ".pt")
                    try:
                        event["data"] = torch.load(path, weights_only=True)
                    except Exception as exc:  # unreadable or forged file
                        event["error"] = f"its result could not be read back ({type(exc).__name__})"
            elif event["event"] == "end":
                finished = True
                break
        timed_out = not finished and not lines.closed
        _kill(process)
        events.close()
        output_parts.append(output.text())
        return current, timed_out, process.returncode


class _EventReader:
    def __init__(self, stream):
        self.stream = stream
        self.buffer = b""
        self.lines: list[bytes] = []
        self.closed = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.stream.read(65536)
            except (OSError, ValueError):
                chunk = b""
            with self.cond:
                if not chunk:
                    self.closed = True
                    self.cond.notify()
                    return
                self.buffer += chunk
                *done, self.buffer = self.buffer.split(b"\n")
                self.lines += done
                self.cond.notify()

    def next(self, deadline: float):
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
            event = json.loads(line)
            return event if isinstance(event, dict) and "event" in event else {"event": "noise"}
        except ValueError:
            return {"event": "noise"}


def _why(returncode: int | None, timed_out: bool, limits: Limits, where: str) -> str:
    if timed_out:
        seconds = limits.load_seconds if where == "loading" else limits.probe_seconds
        return f"stopped after {seconds:.0f} s without finishing ({where}): an endless loop?"
    if returncode is not None and returncode < 0:
        sig = signal.Signals(-returncode).name
        hint = {"SIGXCPU": "CPU time limit reached", "SIGXFSZ": "wrote a file over the size limit",
                "SIGKILL": "killed (memory or time limit)", "SIGSEGV": "crashed"}.get(sig, "")
        return f"the process died ({sig}{': ' + hint if hint else ''}) while {where}"
    return f"the process ended early (exit code {returncode}) while {where}: os._exit or sys.exit?"


def run_probes(cells: list[dict], probes: list[dict], limits: Limits | None = None) -> SandboxRun:
    """Execute `cells` in a sandbox and answer each probe; never raises for student faults."""
    limits = limits or Limits()
    isolation = isolation_available()
    _warn_once(isolation)
    started = time.perf_counter()
    results: dict[str, ProbeRun] = {}
    cell_errors: dict[str, str] = {}
    outputs: list[str] = []
    patched_at_load: list[str] = []
    pending = list(probes)
    while pending:
        events: list[dict] = []
        current, timed_out, returncode = _run_once(cells, pending, limits, isolation, events, outputs)
        loaded = False
        for event in events:
            if event["event"] == "loaded":
                loaded = True
                cell_errors = event.get("errors") or {}
                patched_at_load = list(event.get("patched") or [])
            elif event["event"] == "done" and event.get("probe") in {p["id"] for p in pending}:
                results[event["probe"]] = ProbeRun(data=event.get("data"), error=event.get("error"),
                                                   patched=list(event.get("patched") or []),
                                                   seconds=float(event.get("seconds", 0)))
        if not loaded:  # the program itself never finished: every probe fails the same way
            reason = _why(returncode, timed_out, limits, "running your cells")
            for probe in pending:
                results.setdefault(probe["id"], ProbeRun(error=reason))
            break
        if current is not None:
            results[current] = ProbeRun(error=_why(returncode, timed_out, limits, "checking it"))
        remaining = [p for p in pending if p["id"] not in results]
        if len(remaining) == len(pending):  # no progress at all: do not loop
            for probe in remaining:
                results[probe["id"]] = ProbeRun(error=_why(returncode, timed_out, limits, "checking it"))
            break
        pending = remaining
    return SandboxRun(probes=results, cell_errors=cell_errors, output="".join(outputs),
                      isolation=isolation, seconds=time.perf_counter() - started,
                      patched=patched_at_load)
