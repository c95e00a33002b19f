"""The class's grades as the instructor reads them: one row per student and assignment, and the table printed."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from autograder.course import hostfs
from autograder.course.folder import Course
from autograder.course.gradebook import to_regrade
from autograder.course.hostfs import report_file
from autograder.settings import Settings


@dataclass
class Row:
    student: str
    assignment: str
    score: float
    points: float
    flags: list[str]
    submitted: bool = True
    late_penalty: float = 0.0    # already taken off `score`


def grade_rows(course: Course | Path, settings: Settings | None = None) -> list[Row]:
    """One row per student and assignment, from the gradebook (the scores grades.csv holds) and the kit's reports.

    Like nbgrader's export, every student is listed under every assignment; a student with no submission of
    an assignment gets a row marked not submitted, not a flagged zero. Read from the gradebook, not from
    grades.csv, whose cells are made safe for a spreadsheet (an id may start with '-'). `settings`: the gradebook's
    (:func:`autograder.course.steps.nbgrader_api`).
    """
    from nbgrader.api import MissingEntry

    from autograder.course.nbgrader_api import nbgrader_api

    rows = []
    with nbgrader_api(course, settings).gradebook as gradebook:
        for assignment in gradebook.assignments:
            for student in gradebook.students:
                try:
                    submission = gradebook.find_submission(assignment.name, student.id)
                except MissingEntry:
                    rows.append(Row(student.id, assignment.name, 0.0, float(assignment.max_score or 0), [],
                                    submitted=False))
                    continue
                penalty = submission.late_submission_penalty or 0.0
                score = max(0.0, submission.score - penalty)
                row = Row(student.id, assignment.name, score, float(assignment.max_score or 0), [],
                          late_penalty=penalty)
                report = report_file(course, assignment.name, student.id)
                row.flags = json.loads(report.read_text())["flags"] if report.exists() else \
                    ["graded without the kit's report (its checks did not run)"]
                row.flags = [f"to regrade: {why}" for why in to_regrade(course, student.id, assignment.name)] \
                    + row.flags
                rows.append(row)
    return rows


def _one_line(text: str, width: int = 110) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1] + "…"


def table(rows: list[Row]) -> str:
    width = max([len(hostfs.shown_name(r.student)) for r in rows] + [7])
    lines = [f"{'student':<{width}}  {'assignment':<20}  score"]
    for r in sorted(rows, key=lambda r: (r.assignment, r.student)):
        if not r.submitted:
            lines.append(f"{hostfs.shown_name(r.student):<{width}}  {r.assignment:<20}  not submitted")
            continue
        flag = f"  FLAGGED: {_one_line(hostfs.shown_name(r.flags[0]))}" \
            + (f" (+{len(r.flags) - 1} more)" if len(r.flags) > 1 else "") if r.flags else ""
        late = f" (late: -{r.late_penalty:g})" if r.late_penalty else ""
        lines.append(f"{hostfs.shown_name(r.student):<{width}}  {r.assignment:<20}  {r.score:g}/{r.points:g}{late}"
                     f"{flag}")
    return "\n".join(lines)
