"""A class run's gradebook rows as plain data: what a task brings back, and how the collector stores it.

Only nbgrader's own ``Gradebook`` API is used (``update_or_create_student``, ``update_or_create_submission``),
setting the columns nbgrader's ``SaveAutoGrades`` and ``AssignLatePenalties`` set.
"""
from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

from autograder.course.folder import Course
from autograder.settings import Settings

GRADE_COLUMNS = ("auto_score", "manual_score", "extra_credit", "needs_manual_grade")
COMMENT_COLUMNS = ("auto_comment", "manual_comment")
NOTEBOOK_COLUMNS = ("flagged", "late_submission_penalty")
STUDENT_COLUMNS = ("first_name", "last_name", "email", "lms_user_id")


def is_sqlite(db_url: str) -> bool:
    return db_url.startswith("sqlite")


def db_url_of(settings: Settings) -> str:
    return settings.db_url or f"sqlite:///{Course.of(settings.course).gradebook}"


def dump_submission(gb, assignment: str, student: str) -> dict:
    """A submission's gradebook rows as plain data (what nbgrader autograde wrote)."""
    sub = gb.find_submission(assignment, student)
    return {
        "student": {c: getattr(sub.student, c) for c in STUDENT_COLUMNS},
        "timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
        "extension": sub.extension.total_seconds() if sub.extension is not None else None,
        "notebooks": {nb.name: {
            **{c: getattr(nb, c) for c in NOTEBOOK_COLUMNS},
            "grades": {g.name: {c: getattr(g, c) for c in GRADE_COLUMNS} for g in nb.grades},
            "comments": {m.name: {c: getattr(m, c) for c in COMMENT_COLUMNS} for m in nb.comments},
        } for nb in sub.notebooks},
    }


def _submission_rows(gb, assignment: str, student: str, student_columns: dict | None = None, **submission):
    """nbgrader's submission of `student` (made if missing, with its notebooks, grades and comments).

    nbgrader's ``add_submission`` links each new row to its parents before it adds the row to the session;
    SQLAlchemy 2 then autoflushes half-made rows on the next query and warns "Object of type <...> not in
    session" (three SAWarnings per new submission, on the instructor's terminal). With autoflush off while
    nbgrader builds them, its own add and commit write them whole.
    """
    with gb.db.no_autoflush:
        gb.update_or_create_student(student, **(student_columns or {}))
        return gb.update_or_create_submission(assignment, student, **submission)


def store_submission(gb, assignment: str, student: str, rows: dict) -> None:
    """Write `rows` (from dump_submission) as nbgrader autograde writes them, in one transaction."""
    timestamp = rows["timestamp"]
    submission = _submission_rows(gb, assignment, student, {k: v for k, v in rows["student"].items() if v is not None},
                                  **({"timestamp": timestamp} if timestamp else {}))
    submission.extension = (datetime.timedelta(seconds=rows["extension"])
                            if rows["extension"] is not None else submission.extension)
    for nb in submission.notebooks:
        stored = rows["notebooks"].get(nb.name)
        if stored is None:
            continue
        for column in NOTEBOOK_COLUMNS:
            setattr(nb, column, stored[column])
        for grade in nb.grades:
            for column, value in stored["grades"].get(grade.name, {}).items():
                setattr(grade, column, value)
        for comment in nb.comments:
            for column, value in stored["comments"].get(comment.name, {}).items():
                setattr(comment, column, value)
    gb.db.commit()


def extensions(db_url: str, assignment: str) -> dict[str, float]:
    """student -> seconds of extension the gradebook grants on `assignment` (nbgrader's grant_extension)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            submissions = gb.assignment_submissions(assignment)
        except MissingEntry:
            return {}
        return {sub.student.id: sub.extension.total_seconds() for sub in submissions if sub.extension is not None}


def grant_extension(db_url: str, assignment: str, student: str, seconds: float) -> None:
    """The scratch gradebook's submission of `student` with the class gradebook's extension, before autograde."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        submission = _submission_rows(gb, assignment, student)
        submission.extension = datetime.timedelta(seconds=seconds)
        gb.db.commit()


def gradebook_scores(db_url: str, assignment: str) -> dict[str, dict]:
    """student -> {"total": score, "cells": {notebook/cell: score}}: what the tests compare."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(db_url) as gb:
        for sub in gb.assignment_submissions(assignment):
            out[sub.student.id] = {
                "total": sub.score,
                "cells": {f"{nb.name}/{g.name}": (g.auto_score, g.manual_score, g.extra_credit,
                                                  g.needs_manual_grade)
                          for nb in sub.notebooks for g in nb.grades},
            }
    return out


def scored_submissions(db_url: str, assignment: str) -> set[str]:
    """Students whose submission of `assignment` is in the gradebook with every autograded cell scored."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            submissions = gb.assignment_submissions(assignment)
        except MissingEntry:
            return set()
        return {sub.student.id for sub in submissions
                if all(g.auto_score is not None for nb in sub.notebooks for g in nb.grades if g.cell.cell_type == "code")}


def empty_gradebook(db_url: str, target: Path) -> bytes:
    """A copy of the SQLite gradebook with its assignments and no students: the template a task grades into."""
    from nbgrader.api import Gradebook

    source = db_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    with Gradebook(f"sqlite:///{target}") as gb:
        for student in list(gb.students):
            gb.remove_student(student.id)
    return Path(target).read_bytes()
