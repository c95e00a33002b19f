"""Whether a sandboxed process that ran out of wall-clock time was starved by the machine or at fault itself.

A probe's wall-clock limit protects the machine from an endless loop; on a busy machine an honest probe can
reach it too, waiting for a CPU while other processes run. Linux counts both for every thread
(``/proc/<pid>/task/<tid>/schedstat``: nanoseconds on a CPU, nanoseconds runnable but waiting for one), so
the grader can tell them apart from outside the sandbox, where the student cannot forge the figures:

- an endless loop runs: its CPU time is close to the wall time;
- a process that sleeps or waits on itself neither runs nor waits for a CPU;
- a starved process waited for a CPU longer than it ran, and ran for less than half the time.

Only the last is the machine's fault: that check is left to regrade instead of scored 0. A submission
that starts its own busy processes inside the sandbox runs them on the sandbox's account, so it looks
like what it is (CPU used), not like a starved one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Usage:
    """CPU and run-queue time of a set of processes, in seconds, since each started."""
    cpu: float
    waited: float

    def starved(self, wall: float) -> bool:
        """True when, over `wall` seconds, these processes waited for a CPU more than they ran and ran less
        than half the time: the machine, not the program, kept them from finishing."""
        return wall > 0 and self.waited > self.cpu and self.cpu < 0.5 * wall and self.waited >= 0.25 * wall

    def __sub__(self, earlier: "Usage") -> "Usage":
        return Usage(self.cpu - earlier.cpu, self.waited - earlier.waited)

    def describe(self, wall: float) -> str:
        return (f"in {wall:.0f} s it ran {self.cpu:.1f} s and waited {self.waited:.1f} s for a CPU "
                "(the grading machine was too busy)")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # the process ended, or its fields are not ours to read
        return None


def _parent(pid: int) -> int | None:
    stat = _read(PROC / str(pid) / "stat")
    if stat is None:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])  # after "pid (comm) state"


def _namespace(pid: int) -> str | None:
    try:
        return os.readlink(PROC / str(pid) / "ns" / "pid")
    except OSError:
        return None


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def members(root: int) -> list[int]:
    """The processes of the sandbox started as `root`: every process of the PID namespace its descendants
    are in (a process forked into it from the template is not a descendant), else its descendants."""
    pids = _pids()
    children: dict[int, list[int]] = {}
    for pid in pids:
        parent = _parent(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    ours = _namespace(os.getpid())
    spaces = {space for space in map(_namespace, tree) if space is not None and space != ours}
    if not spaces:
        return tree
    return [pid for pid in pids if _namespace(pid) in spaces]


def usage(pids: list[int]) -> Usage | None:
    """The summed CPU and run-queue times of every thread of `pids`; None where the kernel does not keep them."""
    cpu = waited = 0
    found = False
    for pid in pids:
        try:
            tasks = list((PROC / str(pid) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            fields = (_read(task / "schedstat") or "").split()
            if len(fields) >= 2:
                cpu, waited, found = cpu + int(fields[0]), waited + int(fields[1]), True
    return Usage(cpu / 1e9, waited / 1e9) if found else None


def starvation(root: int, wall: float) -> str | None:
    """Why the sandbox started as `root` did not finish in `wall` seconds, if the machine is to blame;
    None when its processes ran (an endless loop), slept, or cannot be measured."""
    measured = usage(members(root))
    if measured is None or not measured.starved(wall):
        return None
    return measured.describe(wall)
