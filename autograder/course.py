"""A course folder and the nbgrader steps over it: release, autograde, feedback, export.

Autograding is resumable: a submission counts as graded once the kit's report
(`<notebook>.kit.json`) sits beside its autograded notebook, newer than the
submission. Kill a batch and run it again: finished students are skipped,
a half-graded one is graded again from scratch, and nbgrader's gradebook keeps
exactly one grade per student and assignment.
"""
from __future__ import annotations

import csv
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from . import paths
from .grade import ASSIGNMENTS
from .nbgrader_hook import report_file

log = logging.getLogger(__name__)
CONFIG = "nbgrader_config.py"


def prepare_course(course: Path, names: list[str]) -> Path:
    """A course folder with the kit's source/ assignments and nbgrader configuration."""
    course = Path(course)
    (course / "source").mkdir(parents=True, exist_ok=True)
    shutil.copy(paths.KIT / CONFIG, course / CONFIG)
    for name in names:
        target = course / "source" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(paths.SOURCE / name, target)
    return course


def _tools_on_path() -> None:
    """nbgrader runs `alembic` and `jupyter` by name: make this interpreter's own ones found first."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def nbgrader_api(course: Path):
    """nbgrader's Python API on `course`, with its nbgrader_config.py."""
    _tools_on_path()
    logging.getLogger("traitlets").setLevel(logging.WARNING)
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG, path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    config.Exchange.root = str(course / "exchange")
    (course / "exchange").mkdir(exist_ok=True)  # unused by the kit; nbgrader checks that it can write there
    config.NbGraderAPI.log_level = "WARN"
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def report_path(course: Path, student: str, assignment: str) -> Path:
    return report_file(course, assignment, student)


def is_graded(course: Path, student: str, assignment: str) -> bool:
    report = report_path(course, student, assignment)
    submitted = course / "submitted" / student / assignment
    newest = max((p.stat().st_mtime for p in submitted.rglob("*") if p.is_file()), default=0)
    return report.exists() and report.stat().st_mtime >= newest


def students(course: Path, assignment: str) -> list[str]:
    return sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}") if p.is_dir())


def autograde(course: Path, assignment: str, *, progress: bool = True) -> dict[str, str]:
    """Autograde every submission not graded yet; returns student -> 'graded' | 'skipped' | error."""
    api = nbgrader_api(course)
    outcome = {}
    todo = students(course, assignment)
    bar = tqdm(todo, desc=f"autograde {assignment}", unit="submission", disable=not progress, file=sys.stderr)
    for student in bar:
        bar.set_postfix_str(student)
        if is_graded(course, student, assignment):
            outcome[student] = "skipped (already graded)"
            continue
        report_path(course, student, assignment).unlink(missing_ok=True)
        result = api.autograde(assignment, student, force=True, create=True)
        outcome[student] = "graded" if result["success"] else f"failed: {result.get('error', '')[-500:]}"
        if not result["success"]:
            log.error("autograde %s/%s failed:\n%s", student, assignment, result.get("log", "")[-2000:])
    return outcome


def feedback(course: Path, assignment: str) -> Path:
    result = nbgrader_api(course).generate_feedback(assignment, force=True)
    if not result["success"]:
        raise RuntimeError(f"generate_feedback {assignment} failed:\n{result.get('error')}")
    return course / "feedback"


def export(course: Path) -> Path:
    """nbgrader export: grades.csv in the course folder."""
    _tools_on_path()
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--log-level=WARN"], cwd=course, check=True)
    return course / "grades.csv"


@dataclass
class Row:
    student: str
    assignment: str
    score: float
    points: float
    flags: list[str]
    submitted: bool = True


def grade_rows(course: Path) -> list[Row]:
    """One row per student and assignment, from the exported CSV, the gradebook and the kit's reports.

    nbgrader's export lists every student under every assignment; a student with no submission of
    an assignment gets a row marked not submitted, not a flagged zero.
    """
    import json

    api = nbgrader_api(course)
    with api.gradebook as gradebook:
        submitted = {(submission.assignment.name, submission.student.id)
                     for assignment in gradebook.assignments
                     for submission in gradebook.assignment_submissions(assignment.name)}
    rows = []
    with open(course / "grades.csv", newline="") as handle:
        for line in csv.DictReader(handle):
            student, assignment = line["student_id"], line["assignment"]
            row = Row(student, assignment, float(line["score"] or 0), float(line["max_score"] or 0), [],
                      submitted=(assignment, student) in submitted)
            report = report_path(course, student, assignment)
            if row.submitted:
                row.flags = json.loads(report.read_text())["flags"] if report.exists() else \
                    ["graded without the kit's report (its checks did not run)"]
            rows.append(row)
    return rows


def _one_line(text: str, width: int = 110) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1] + "…"


def table(rows: list[Row]) -> str:
    width = max([len(r.student) for r in rows] + [7])
    lines = [f"{'student':<{width}}  {'assignment':<20}  score"]
    for r in sorted(rows, key=lambda r: (r.assignment, r.student)):
        if not r.submitted:
            lines.append(f"{r.student:<{width}}  {r.assignment:<20}  not submitted")
            continue
        flag = f"  FLAGGED: {_one_line(r.flags[0])}" + (f" (+{len(r.flags) - 1} more)" if len(r.flags) > 1 else "") \
            if r.flags else ""
        lines.append(f"{r.student:<{width}}  {r.assignment:<20}  {r.score:g}/{r.points:g}{flag}")
    return "\n".join(lines)
