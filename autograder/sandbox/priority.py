"""The CPU priority of student processes: below the kit's own training and judging.

A notebook's kernel and the probes' process run at nice ``STUDENT_NICE`` (10: under the scheduler's
weights, a CPU-hogging student process gets about a tenth of a core that the grader's own process, at
nice 0, wants), inherited by every process they start; they cannot lower it back (no ``CAP_SYS_NICE``,
``RLIMIT_NICE`` 0). Where the kernel groups processes by session (``sched_autogroup_enabled``, the default
on most distributions), every sandbox starts a session of its own and so a scheduling group of its own,
which already holds a hogging sandbox to one group's share of the CPU, however many processes it starts.
That group is not lowered further (``/proc/<pid>/autogroup``): tried, it starved the probes' process
against every unrelated job of a busy machine, and the probes' wall clocks would then decide grades.
Best effort: where the nice cannot be set, the grader grades as before. cgroups are not used: on the
machines the kit was built on they are not the grader's to create (a read-only hierarchy).
"""
from __future__ import annotations

import os

STUDENT_NICE = 10


def lower(pid: int = 0, nice: int = STUDENT_NICE) -> None:
    """Give process `pid` (0: this one) the student's nice, inherited by what it starts; best effort."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError:
        pass


def nice_prefix(nice: int = STUDENT_NICE) -> list[str]:
    """A command prefix that starts a program (and so everything it starts) at `nice`."""
    return ["nice", "-n", str(nice)] if os.path.exists("/usr/bin/nice") or os.path.exists("/bin/nice") else []
