"""Whether a submission is graded: nbgrader's gradebook holds it, as submitted now, with every autograded cell
scored (never because some file exists); whether the kit's report flags it "to regrade"; its score as shown."""
from __future__ import annotations

import json
from pathlib import Path

from autograder.course.folder import Course
from autograder.course.hostfs import UnsafePath, report_file


def _submission(gb, student: str, assignment: str):
    from nbgrader.api import MissingEntry

    try:
        return gb.find_submission(assignment, student)
    except MissingEntry:
        return None


def _autograded_grades(submission) -> list:
    return [grade for notebook in submission.notebooks for grade in notebook.grades
            if grade.cell.cell_type == "code"]


def is_graded(course: Path, student: str, assignment: str, api=None) -> bool:
    """Whether the gradebook holds this submission, as submitted now, with every autograded cell scored."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    from autograder.course.nbgrader_api import nbgrader_api

    api = api or nbgrader_api(course)
    folder = Course.of(course).submission(student, assignment)
    submitted = api.coursedir.get_existing_timestamp(str(folder))
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        submission = _submission(gb, student, assignment)
        if submission is None:
            return False
        stored = submission.timestamp
        if (stored is None) != (submitted is None) or \
                (stored is not None and parse_utc(stored) != parse_utc(submitted)):
            return False  # submitted again since it was graded
        grades = _autograded_grades(submission)
        return bool(grades) and all(grade.auto_score is not None for grade in grades)


def clear_scores(api, student: str, assignment: str) -> None:
    """Mark a submission as not graded yet: a run killed before nbgrader saves its scores grades it again."""
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        submission = _submission(gb, student, assignment)
        if submission is not None:
            for grade in _autograded_grades(submission):
                grade.auto_score = None
            gb.db.commit()


def _kit_report(course: Path, student: str, assignment: str) -> dict | None:
    try:
        data = json.loads(report_file(course, assignment, student).read_text())
    except (OSError, ValueError, UnsafePath):
        return None
    return data if isinstance(data, dict) else None


def to_regrade(course: Path, student: str, assignment: str) -> list[str]:
    """Why the kit's report says this submission has no verdict yet (a check the machine's guard stopped), or []."""
    data = _kit_report(course, student, assignment)
    reasons = data.get("to_regrade") if data else None
    return [str(reason) for reason in reasons] if isinstance(reasons, list) else []


def needs_regrade(course: Path, student: str, assignment: str, api=None) -> bool:
    """Flagged "to regrade", or failed: graded before (its report or gradebook entry is there) but not scored."""
    if to_regrade(course, student, assignment):
        return True
    from autograder.course.nbgrader_api import nbgrader_api

    api = api or nbgrader_api(course)
    if is_graded(course, student, assignment, api):
        return False
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        attempted = _submission(gb, student, assignment) is not None
    return attempted or report_file(course, assignment, student).is_file()


def score_of(course: Path, student: str, assignment: str) -> str:
    """The kit's score of a submission as a student reads it: '13/17', '13/17 (to regrade)' or 'not graded'."""
    data = _kit_report(course, student, assignment)
    if data is None or data.get("error"):
        return "not graded"
    try:
        text = f"{float(data.get('score', 0)):g}/{float(data.get('points', 0)):g}"
    except (TypeError, ValueError):
        return "not graded"
    return text + " (to regrade)" if data.get("to_regrade") else text
