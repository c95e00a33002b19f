"""The limits of a student's process: the probes' (wall clock, CPU, memory, files, processes, output,
priority) and the notebook kernel's (the same where they mean the same, and the submission's scratch copy)."""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from autograder.sandbox import priority


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



def apply_limits(limits: Limits):
    """The function the child runs before it starts (``preexec_fn``): its own session, its priority, its limits."""
    def apply() -> None:
        os.setsid()
        priority.lower(0, limits.nice)  # inherited by bubblewrap and everything in the sandbox
        for name, value in limits.rlimits().items():
            resource.setrlimit(getattr(resource, name), value)
    return apply


@dataclass(frozen=True)
class KernelLimits:
    """Limits of the notebook's kernel; the probe sandbox's values where they mean the same."""
    memory_bytes: int = 8 << 30                       # address space: torch, torchvision, matplotlib map ~4 GiB
    file_bytes: int = Limits.file_bytes               # largest file it may write (64 MB)
    disk_bytes: int = Limits.home_bytes               # its scratch folder, a tmpfs under bubblewrap (256 MB)
    processes: int = 96                               # processes and threads of its own user (as root)
    nice: int = Limits.nice                           # CPU priority: below the grader's own training and judging
    copy_file_bytes: int = 32 << 20                   # largest file of the submission copied in
    copy_total_bytes: int = 128 << 20                 # all files of the submission copied in
    copy_entries: int = 1000                          # most files and folders copied in
