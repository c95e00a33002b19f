"""The CPU priority of student processes: below the kit's own training and judging.

A notebook's kernel and the probes' process run at nice ``STUDENT_NICE`` (10: under the scheduler's
weights, a CPU-hogging student process gets about a tenth of a core that the grader's own process, at
nice 0, wants), inherited by every process they start; they cannot lower it back (no ``CAP_SYS_NICE``,
``RLIMIT_NICE`` 0). Where the kernel groups processes by session (``sched_autogroup_enabled``, the default
on most distributions), nice only orders processes within one session's group, and every sandbox starts a
session of its own: so the session's group gets the same nice (``/proc/<pid>/autogroup``), set by the
grader, as root where it runs as root. Both are best effort: where neither can be set, the grader says
nothing and grades as before. cgroups are not used: on the machines the kit was built on they are not
the grader's to create (a read-only hierarchy); see the README's "What is defended, and how".
"""
from __future__ import annotations

import os

STUDENT_NICE = 10


def lower(pid: int = 0, nice: int = STUDENT_NICE) -> None:
    """Give process `pid` (0: this one) and its session's scheduling group the student's nice; best effort."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError:
        pass
    try:
        with open(f"/proc/{pid or 'self'}/autogroup", "w") as handle:
            handle.write(str(nice))
    except OSError:  # no autogroups, or not allowed here
        pass


def nice_prefix(nice: int = STUDENT_NICE) -> list[str]:
    """A command prefix that starts a program (and so everything it starts) at `nice`."""
    return ["nice", "-n", str(nice)] if os.path.exists("/usr/bin/nice") or os.path.exists("/bin/nice") else []
