"""What the hidden test cells call: ``grade_cell(assignment, grade_id)``.

Under ``nbgrader autograde`` with the kit's configuration the verdict for a graded cell is
written by the kit's preprocessor from outside the student's kernel (see ``nbgrader_hook``),
and this call only says so: the kernel has no grader to import. Anywhere else (an instructor
running the source notebook with the whole kit installed) it grades the checks of this cell
on the kernel's own definitions, with the same probes and judges (``autograder.judge.in_kernel``).
"""
from __future__ import annotations

import os

VERDICTS_VAR = "CNN_KIT_VERDICTS"


def grade_cell(assignment: str, grade_id: str):
    if os.environ.get(VERDICTS_VAR) == "outside":
        print("Graded outside this notebook's kernel by the course kit.")
        return None
    from autograder.judge.in_kernel import grade_in_kernel  # the grader: absent from a graded submission's kernel

    return grade_in_kernel(assignment, grade_id)
