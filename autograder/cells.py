"""The grading side of the hidden test cells' ``grade_cell(assignment, grade_id)``.

The cells import ``grade_cell`` from ``autograder.student.cells``, which a graded submission's
kernel can see; under ``nbgrader autograde`` it only says the verdict comes from outside. Anywhere
else (an instructor running the source notebook) it calls :func:`grade_in_kernel`, which grades the
checks of this cell on the kernel's own definitions, with the same probes and judges.
"""
from __future__ import annotations

import sys

from .student.cells import VERDICTS_VAR, grade_cell

__all__ = ["VERDICTS_VAR", "grade_cell", "grade_in_kernel"]


def grade_in_kernel(assignment: str, grade_id: str):
    from .grade import ASSIGNMENTS, judge_in_process

    ids = {check.id for check in ASSIGNMENTS[assignment].cells[grade_id]}
    results = judge_in_process(assignment, sys.modules["__main__"].__dict__, ids)
    for result in results:
        print(f"{'✓' if result.passed else '✗'} {result.message} ({result.score:g}/{result.points:g})")
    score, points = sum(r.score for r in results), sum(r.points for r in results)
    if score <= 0:
        raise AssertionError(next(r.message for r in results if not r.passed))
    return score if score < points else None
