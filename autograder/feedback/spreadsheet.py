"""CSV files an instructor opens in a spreadsheet: every cell shown as text, none run as a formula.

A spreadsheet starts a formula at a cell beginning with ``=``, ``+``, ``-`` or ``@`` (and some at a tab or a
carriage return). Which characters end a cell depends on the machine: ``,`` in most of the English-speaking
world, ``;`` in most of Europe, and a CSV opened with the other separator is split where the writer never
meant. So :func:`cell` looks at every piece of a value between ``,``, ``;`` and line breaks, and puts a
``'`` in front of each piece that would start a formula; a number the kit wrote is left as it is.
:func:`writer` is the only CSV writer the kit uses (class report, Canvas export): every cell passes it.
"""
from __future__ import annotations

import csv
import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PIECES = re.compile(r"([,;\r\n])")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def cell(value) -> str:
    """`value` as a CSV cell that no spreadsheet runs, whichever of ',' and ';' it splits on."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a number the kit wrote
    text = str(value)
    if _NUMBER.fullmatch(text):
        return text
    pieces = _PIECES.split(text)
    for i in range(0, len(pieces), 2):  # the separators are at odd positions
        if pieces[i].lstrip(' "').startswith(FORMULA_START) or pieces[i].startswith(FORMULA_START):
            pieces[i] = "'" + pieces[i]
    return "".join(pieces)


class _Writer:
    def __init__(self, handle):
        self._csv = csv.writer(handle)

    def writerow(self, row) -> None:
        self._csv.writerow([cell(value) for value in row])


def writer(handle) -> _Writer:
    """A csv.writer over `handle` whose every cell passes :func:`cell`."""
    return _Writer(handle)


GRADES_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                  "raw_score", "late_submission_penalty", "score", "max_score"]


def write_grades(gradebook, dest, assignments=(), students=()) -> None:
    """grades.csv as nbgrader's CSV export writes it (its columns, one row per assignment and student, 0 without
    a submission), each cell through :func:`cell` and quoted where it must be (nbgrader's own joins with ',')."""
    from nbgrader.api import MissingEntry

    with open(dest, "w", newline="", encoding="utf-8") as handle:
        out = writer(handle)
        out.writerow(GRADES_COLUMNS)
        for assignment in gradebook.assignments:
            if assignments and assignment.name not in assignments:
                continue
            for student in gradebook.students:
                if students and student.id not in students:
                    continue
                try:
                    submission = gradebook.find_submission(assignment.name, student.id)
                    penalty = submission.late_submission_penalty
                    scores = [submission.timestamp, submission.score, penalty,
                              max(0.0, submission.score - penalty)]
                except MissingEntry:
                    scores = ["", 0.0, 0.0, 0.0]
                row = [assignment.name, assignment.duedate, scores[0], student.id, student.last_name,
                       student.first_name, student.email, *scores[1:], assignment.max_score]
                out.writerow(["" if value is None else value for value in row])
