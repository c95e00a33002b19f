"""A probe that runs out of wall-clock time because the machine is busy is "to regrade", not 0 (issue 23).

The figures come from the kernel's per-thread counters (time on a CPU, time waiting for one), read from
outside the sandbox. Linux adds a wait to them when it ends (the process gets a CPU), so the figures lag by
the current wait: a few milliseconds for any process the scheduler still runs. The real processes here are pinned to one CPU, so that the test sets how busy it is.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from autograder import paths
from autograder.sandbox import cpuwait
from autograder.sandbox import runner as sandbox
from autograder.judge import Options
from autograder.judge.grade import grade_notebook
from autograder.settings import Settings

LOOP = "while True: pass"
NEEDS_SCHEDSTAT = pytest.mark.skipif(cpuwait.usage([os.getpid()]) is None,
                                     reason="this kernel keeps no per-thread schedstat")


@pytest.mark.parametrize("cpu, waited, wall, starved", [
    (9.8, 0.1, 10.0, False),   # an endless loop on a quiet machine
    (2.0, 8.0, 10.0, True),    # an honest process on a busy one: it waited 8 s for a CPU
    (0.1, 0.0, 10.0, False),   # it slept, or waited on itself
    (19.0, 60.0, 10.0, False),  # its own 8 busy processes: it used two whole CPUs
    (0.5, 0.4, 10.0, False),   # it neither ran nor waited much: not the machine
    (4.0, 5.0, 10.0, True),
])
def test_what_counts_as_starved(cpu, waited, wall, starved):
    assert cpuwait.Usage(cpu, waited).starved(wall) is starved


def _pinned(code: str, nice: int, **popen) -> subprocess.Popen:
    def on_cpu0():
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        os.nice(nice)
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=on_cpu0, **popen)


def _measure(target: subprocess.Popen, seconds: float) -> tuple[cpuwait.Usage, float]:
    """The target's usage over `seconds` from now (not its start: a process pinned at nice 19 on a busy CPU
    may wait long before it first runs)."""
    before, started = cpuwait.usage([target.pid]), time.monotonic()
    time.sleep(seconds)
    return cpuwait.usage([target.pid]) - before, time.monotonic() - started


@NEEDS_SCHEDSTAT
def test_real_processes_starved_looping_and_sleeping():
    """On one CPU: a loop at the students' nice 10 beside two at nice 0 is starved (about 5 % of the CPU);
    a sleeper is not. (The kernel counts a wait when the waiting ends, so the target has started first.)"""
    hogs = [_pinned(LOOP, 0) for _ in range(2)]
    try:
        starved = _pinned("print(flush=True)\n" + LOOP, 10, stdout=subprocess.PIPE)
        starved.stdout.readline()
        usage, wall = _measure(starved, 3.0)
        starved.kill()
        assert usage.starved(wall), usage
    finally:
        for hog in hogs:
            hog.kill()
    sleeper = _pinned("import time; print(flush=True); time.sleep(60)", 10, stdout=subprocess.PIPE)
    sleeper.stdout.readline()  # it has started: from now on it only sleeps
    usage, wall = _measure(sleeper, 1.5)
    sleeper.kill()
    assert not usage.starved(wall), usage
    assert usage.cpu < 0.5


@NEEDS_SCHEDSTAT
def test_members_follow_a_process_tree():
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                               "time.sleep(60)"])
    try:
        deadline = time.monotonic() + 20
        while len(cpuwait.members(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(cpuwait.members(parent.pid)) == 2
    finally:
        for pid in cpuwait.members(parent.pid)[1:]:
            os.kill(pid, 9)
        parent.kill()


CELLS = [{"id": "work", "source": "total = 0\nwhile True:\n    total += 1\n", "answer": True}]


def test_a_starved_load_leaves_every_probe_to_regrade(monkeypatch):
    """The wiring: when the measure says 'starved', the cells are not skipped as the student's fault."""
    monkeypatch.setattr(cpuwait, "starvation", lambda root, wall: "in 3 s it ran 0.1 s and waited 2.9 s for a CPU")
    limits = sandbox.Limits(load_seconds=2.0, probe_seconds=2.0)
    run = sandbox.run_probes(CELLS, [{"id": "p", "kind": "calls", "args": {"name": "report", "calls": [{}]}}], limits, template=False)
    assert run.probes["p"].busy and "waited 2.9 s" in run.probes["p"].busy
    assert "work" not in run.skipped


def test_an_endless_loop_is_the_students_fault_when_it_ran():
    """Measured for real: the loop ran (this test runs on a machine that is not pinned): no 'busy'."""
    if cpuwait.usage([os.getpid()]) is None:
        pytest.skip("this kernel keeps no per-thread schedstat")
    if os.getloadavg()[0] >= (os.cpu_count() or 1):
        pytest.skip("the machine is busy: the loop may really wait for a CPU here")
    limits = sandbox.Limits(load_seconds=2.0, probe_seconds=2.0)
    run = sandbox.run_probes(CELLS, [{"id": "p", "kind": "calls", "args": {"name": "report", "calls": [{}]}}],
                             limits, template=False)
    assert run.probes["p"].busy is None
    assert "work" in run.skipped


def test_a_starved_probe_is_to_regrade_in_the_grade(monkeypatch, tmp_path):
    """A whole grading of assignment 1's solution on a machine the measure calls starved: every check
    "to regrade", the score 0 meanwhile, never full marks and never a verdict."""
    monkeypatch.setattr(cpuwait, "starvation", lambda root, wall: "in 2 s it ran 0.0 s and waited 2.0 s for a CPU")
    settings = Settings.from_env().replace(probe_seconds=0.001)
    solution = paths.SOLUTIONS / "a1_sizes_and_params" / "sizes_and_params.ipynb"
    report = grade_notebook(solution, "a1_sizes_and_params", Options.of(settings))
    assert report.score == 0
    assert report.to_regrade and all("waited 2.0 s for a CPU" in line for line in report.to_regrade)
    assert all(r.regrade for r in report.results)
