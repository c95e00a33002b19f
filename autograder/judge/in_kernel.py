"""The grading side of the hidden test cells' ``grade_cell(assignment, grade_id)`` on an instructor's kernel.

The cells import ``grade_cell`` from ``autograder.student.cells``, which a graded submission's
kernel can see; under ``nbgrader autograde`` it only says the verdict comes from outside. Anywhere
else (an instructor running the source notebook) it calls :func:`grade_in_kernel`, which grades the
checks of this cell on the kernel's own definitions, with the same probes and judges.
"""
from __future__ import annotations

import sys
from pathlib import Path

from autograder.assignment import assignments
from autograder.settings import Settings
from autograder.judge import Options


def grade_in_kernel(assignment: str, grade_id: str):
    from autograder.judge.grade import judge_in_process

    # The kernel is an edge: its settings from its environment, once. The notebook may be run in
    # its own assignment folder (a source folder other than the kit's, as a new assignment is written).
    settings = Settings.build()
    here = Path.cwd()
    source = here.parent if here.name == assignment and (here / assignments.CHECKS_FILE).is_file() else settings.source
    spec = assignments.find(assignment, source)
    ids = {check.id for check in spec.cells[grade_id]}
    results = judge_in_process(spec, sys.modules["__main__"].__dict__, ids, Options.of(settings),
                               raise_grader_errors=False)  # a grader bug: 0 with the reason, the cell goes on
    for result in results:
        print(f"{'✓' if result.passed else '✗'} {result.message} ({result.score:g}/{result.points:g})")
    score, points = sum(r.score for r in results), sum(r.points for r in results)
    if score <= 0:
        raise AssertionError(next(r.message for r in results if not r.passed))
    return score if score < points else None
