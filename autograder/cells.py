"""What the hidden test cells call: ``grade_cell(assignment, grade_id)``.

Under ``nbgrader autograde`` with the kit's configuration the verdict for a
graded cell is written by the kit's preprocessor from outside the student's
kernel (see ``nbgrader_hook``), and this call only says so. Anywhere else (an
instructor running the source notebook) it grades the checks of this cell on
the kernel's own definitions, with the same probes and judges.
"""
from __future__ import annotations

import os
import sys

VERDICTS_VAR = "CNN_KIT_VERDICTS"


def grade_cell(assignment: str, grade_id: str):
    if os.environ.get(VERDICTS_VAR) == "outside":
        print("Graded outside this notebook's kernel by the course kit.")
        return None
    from .grade import ASSIGNMENTS, judge_in_process

    ids = {check.id for check in ASSIGNMENTS[assignment].cells[grade_id]}
    results = judge_in_process(assignment, sys.modules["__main__"].__dict__, ids)
    for result in results:
        print(f"{'✓' if result.passed else '✗'} {result.message} ({result.score:g}/{result.points:g})")
    score, points = sum(r.score for r in results), sum(r.points for r in results)
    if score <= 0:
        raise AssertionError(next(r.message for r in results if not r.passed))
    return score if score < points else None
