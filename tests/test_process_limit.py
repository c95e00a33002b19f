"""One submission's processes cannot use up what a classmate's sandbox may start (issue 23).

RLIMIT_NPROC counts the processes and threads of a user. When every sandbox ran as `nobody`, a notebook
that started processes up to the limit left a classmate's probe, graded beside it, unable to start a
thread: a crash, and points lost for what another student did. As root each sandbox now runs as a user
of its own (autograder.sandbox.bwrap.student_uid), so the limit is per sandbox.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import time

import pytest

from autograder.sandbox import bwrap
from autograder.sandbox import runner as sandbox

pytestmark = pytest.mark.skipif(os.getuid() != 0 or bwrap.student_uid() == bwrap.NOBODY,
                                reason="the per-sandbox user needs a root grader with spare uids mapped")

HOG = """
import json, subprocess
kids, error = [], None
try:
    while len(kids) < 500:
        kids.append(subprocess.Popen(["/bin/sleep", "40"]))
except OSError as exc:
    error = type(exc).__name__
import time
time.sleep(12)  # holds them while the classmate's sandbox runs
def report():
    return json.dumps({"started": len(kids), "error": error})
"""

CLASSMATE = """
import json, subprocess, threading
threads = [threading.Thread(target=lambda: None) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
done = subprocess.run(["/bin/true"]).returncode
def report():
    return json.dumps({"threads": len(threads), "true": done})
"""

REPORT = {"id": "p", "kind": "calls", "args": {"name": "report", "calls": [{}]}}


def _sleepers() -> int:
    count = 0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and open(f"/proc/{entry}/cmdline", "rb").read() == b"/bin/sleep\x0040\x00":
                count += 1
        except OSError:
            pass
    return count


def _answer(run: sandbox.SandboxRun) -> dict:
    outcome = run.probes["p"]
    assert outcome.error is None, outcome.error
    return json.loads(outcome.data["results"][0]["value"])


def test_a_sandbox_at_its_process_limit_leaves_a_classmate_free():
    limits = sandbox.Limits(load_seconds=60.0)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        hog = pool.submit(sandbox.run_probes, [{"id": "hog", "source": HOG}], [REPORT], limits)
        deadline = time.monotonic() + 90
        while _sleepers() < limits.processes - 8 and not hog.done() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _sleepers() >= limits.processes - 8, "the hog never reached its limit"
        classmate = pool.submit(sandbox.run_probes, [{"id": "work", "source": CLASSMATE}], [REPORT], limits)
        hogged, mine = _answer(hog.result()), _answer(classmate.result())
    assert hogged["error"] == "BlockingIOError" and hogged["started"] < limits.processes, hogged
    assert mine == {"threads": 16, "true": 0}
