"""What the hidden test cells call: ``grade_cell(assignment, grade_id)``.

Under ``nbgrader autograde`` with the kit's configuration the verdict for a
graded cell is written by the kit's preprocessor from outside the student's
kernel (see ``nbgrader_hook``), and this call only says so. Anywhere else (an
instructor running the source notebook) it grades the checks of this cell on
the kernel's own definitions, with the same judges.
"""
from __future__ import annotations

import os
import sys

VERDICTS_VAR = "CNN_KIT_VERDICTS"


def grade_cell(assignment: str, grade_id: str):
    if os.environ.get(VERDICTS_VAR) == "outside":
        print("Graded outside this notebook's kernel by the course kit.")
        return None
    from . import probe
    from .checks import Failed, Options
    from .grade import ASSIGNMENTS

    spec = ASSIGNMENTS[assignment]
    checks = spec.cells[grade_id]
    namespace = sys.modules["__main__"].__dict__
    requests = {p["id"]: p for p in spec.probes(0)}
    total = points = 0.0
    problems = []
    for check in checks:
        request = requests[check.probes[0]]
        points += check.points
        try:
            data = probe.PROBES[request["kind"]](namespace, request["args"])
            check.judge(data, request["args"], Options())
            total += check.points
            print(f"✓ {check.title}")
        except Failed as failed:
            total += min(failed.score, check.points)
            problems.append(f"✗ {check.title}: {failed}")
        except Exception as exc:
            problems.append(f"✗ {check.title}: {type(exc).__name__}: {exc}")
    if problems and total == 0:
        raise AssertionError("\n".join(problems))
    print("\n".join(problems))
    return total if total < points else None
