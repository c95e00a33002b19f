"""A course folder and the nbgrader steps over it: release, autograde, feedback, export.

Every student is graded exactly once. Student ids are folder names under ``submitted/``: a name
that is not a plain id, a submission folder or notebook that is a link, a FIFO or anything but a
real folder and a regular file, is refused with a message (and never stops the batch). Autograding
is resumable: a submission counts as graded when nbgrader's gradebook says so, never because some
file exists (a file an earlier student's run could have made): the gradebook holds the submission
with the timestamp now in ``submitted/``, and every autograded cell has its score. Before a
submission is graded its scores are cleared, so a run killed half-way grades it again from scratch,
and nbgrader's gradebook keeps exactly one grade per student and assignment.
"""
from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tqdm.auto import tqdm

from autograder import paths
from autograder.assignment import assignments
from autograder.course import hostfs
from autograder.course import late
from autograder.course.folder import Course
from autograder.course.nbgrader_api import nbgrader_api, tools_env, tools_path  # noqa: F401 (the steps' API)
from autograder.course.gradebook import (clear_scores, is_graded, needs_regrade, score_of,  # noqa: F401
                                         to_regrade)
from autograder.course.grades import Row, _one_line, grade_rows, table  # noqa: F401  (the course's steps, in one import)
from autograder.course.hostfs import UnsafePath, check_name, clean_folder, report_file
from autograder.feedback import terminal
from autograder.settings import Settings

log = logging.getLogger(__name__)
CONFIG = "nbgrader_config.py"   # the name nbgrader looks for: Course.config is where it is
_clear_scores = clear_scores    # the name the tests know


def prepare_course(course: Course | Path, names: list[str], source: Path, config: bool = True) -> Path:
    """A course folder with the named assignments of `source` and (`config`) the kit's nbgrader configuration.

    The course's source/ gets each assignment's notebook and files, never its grading files
    (checks, reference, mistakes): nbgrader releases that folder to students and copies it into
    every submission's folder when it autogrades. `source`: the assignments' folder (the settings').
    """
    course = Course.of(course)
    course.source.mkdir(parents=True, exist_ok=True)
    if config:
        shutil.copy(paths.KIT / CONFIG, course.config)
    for name in names:
        target = course.source_assignment(name)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(Path(source) / name, target, ignore=shutil.ignore_patterns(*assignments.GRADING_FILES))
    return course.root


def make_private(course: Path) -> str:
    """The course folder, made if missing, closed to other users (what it says about the mode).

    It holds the whole class's gradebook, submissions and feedback: on a course server, students read their
    own feedback through nbgrader's exchange, never here. Group permissions stay (a TA group may share it).
    """
    course = Path(course)
    course.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(os.stat(course).st_mode)
    if mode & 0o007:
        os.chmod(course, mode & ~0o007)
        return f"closed to other users: mode {mode:04o} -> {mode & ~0o007:04o}"
    return f"mode {mode:04o}: other users cannot enter it"


def report_path(course: Course | Path, student: str, assignment: str) -> Path:
    return report_file(course, assignment, student)


def check_submission(course: Course | Path, student: str, assignment: str, source: Path) -> None:
    """UnsafePath unless `submitted/<student>/<assignment>/` is a real folder whose notebooks are regular files."""
    check_name("student id", student)
    check_name("assignment", assignment)
    submitted = Course.of(course).submitted
    folder = hostfs.real_folder(submitted.parent, submitted.name, student, assignment)
    spec = assignments.get(assignment, source)
    notebook = spec.notebook if spec else None
    for entry in os.scandir(folder):
        if entry.name.endswith(".ipynb") or entry.name == notebook:
            info = os.lstat(entry.path)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                raise UnsafePath(f"submitted/{student}/{assignment}/{entry.name} is "
                                 f"{hostfs._what(info.st_mode) if not stat.S_ISREG(info.st_mode) else 'a hard link'}"
                                 ", not a regular file: not graded, check the submission")


def students(course: Course | Path, assignment: str) -> list[str]:
    """Every name under submitted/ with this assignment, valid or not (autograde refuses the invalid ones)."""
    submitted = Course.of(course).submitted
    if not submitted.is_dir():
        return []
    return sorted(name for name in os.listdir(submitted)
                  if os.path.lexists(os.path.join(submitted, name, assignment)))


def _refuse(course: Course | Path, student: str, assignment: str, reason: str, source: Path) -> str:
    """The outcome of a refused submission; its report says why (when its id can name a file)."""
    log.error("%s/%s refused: %s", hostfs.shown_name(student), assignment, reason)
    try:
        check_name("student id", student)
        spec = assignments.get(assignment, source)
        hostfs.write_report(course, assignment, student, {
            "assignment": assignment, "score": 0, "points": spec.total_points if spec else 0,
            "results": [], "flags": [f"not graded: {reason}"]})
    except (UnsafePath, OSError):
        pass
    return f"refused: {reason}"


def _grade_one(api, course: Course | Path, student: str, assignment: str) -> str:
    """nbgrader autograde of one submission, from scratch: 'graded' or 'failed: why'."""
    clear_scores(api, student, assignment)
    try:
        report_path(course, student, assignment).unlink(missing_ok=True)
    except OSError:
        pass
    result = api.autograde(assignment, student, force=True, create=True)
    if not result["success"]:
        log.error("autograde %s/%s failed:\n%s", student, assignment, result.get("log", "")[-2000:])
    removed = clean_folder(Course.of(course).autograded_submission(student, assignment))
    hostfs.add_report_flags(course, assignment, student,
                            [f"removed from the autograded folder: {line}" for line in removed])
    return "graded" if result["success"] else f"failed: {result.get('error', '')[-500:]}"


def autograde(course: Course | Path, assignment: str, *, source: Path, settings: Settings | None = None,
              progress: bool = True, regrade: bool = False, retry: bool = True) -> dict[str, str]:
    """Autograde every submission not graded yet; student -> 'graded' | 'skipped (already graded)' |
    'to regrade: why' | why not.

    `regrade`: grade again exactly the submissions flagged "to regrade" or failed (the others are skipped).
    `retry`: a submission whose grading had no verdict for a reason that is not the student's (the machine's
    wall-clock guard) is graded once more at the end, after the others; still without one, it is 'to regrade'.
    `source`: the assignments' folder (the settings'), for the notebook's name and the points of a refusal.
    `settings`: the edge's, for nbgrader's run (:func:`nbgrader_api`); None: those nbgrader_config.py builds.
    """
    check_name("assignment", assignment)
    api = nbgrader_api(course, settings)
    late.policy_of(api.config)  # LateSettingsError now, not a failed grading per student
    outcome = {}
    todo = students(course, assignment)
    bar = tqdm(todo, desc=f"autograde {assignment}", unit="submission", disable=not progress,
               file=terminal.unfiltered(sys.stderr))  # its own carriage returns; the student's id made visible
    for student in bar:
        bar.set_postfix_str(terminal.visible(student[:40]))
        try:
            check_submission(course, student, assignment, source)
        except UnsafePath as exc:
            outcome[student] = _refuse(course, student, assignment, str(exc), source)
            continue
        except OSError as exc:
            outcome[student] = _refuse(course, student, assignment, f"its folder cannot be read ({exc})", source)
            continue
        if regrade and not needs_regrade(course, student, assignment, api):
            outcome[student] = "skipped (nothing to regrade)"
            continue
        if not regrade and is_graded(course, student, assignment, api):
            outcome[student] = "skipped (already graded)"
            continue
        outcome[student] = _grade_one(api, course, student, assignment)
    if retry:
        again = [s for s, status in outcome.items() if status == "graded" and to_regrade(course, s, assignment)]
        for student in again:  # the class's other work is done: the machine is as quiet as it gets in this run
            log.warning("%s/%s had no verdict (%s): graded again", student, assignment,
                        to_regrade(course, student, assignment)[0])
            outcome[student] = _grade_one(api, course, student, assignment)
            if outcome[student] == "graded" and to_regrade(course, student, assignment):
                outcome[student] = "to regrade: " + "; ".join(to_regrade(course, student, assignment))
    return outcome


def feedback(course: Course | Path, assignment: str, settings: Settings | None = None) -> Path:
    """nbgrader generate_feedback, after every autograded folder is emptied of links and special files."""
    check_name("assignment", assignment)
    course = Course.of(course)
    autograded = course.autograded
    for student in sorted(os.listdir(autograded)) if autograded.is_dir() else []:
        folder = course.autograded_submission(student, assignment)
        if os.path.lexists(folder):
            removed = clean_folder(folder)
            hostfs.add_report_flags(course, assignment, student,
                                    [f"removed before feedback: {line}" for line in removed])
    result = nbgrader_api(course, settings).generate_feedback(assignment, force=True)
    if not result["success"]:
        raise RuntimeError(f"generate_feedback {assignment} failed:\n{result.get('error')}")
    return course.feedback


def export(course: Course | Path, settings: Settings | None = None) -> Path:
    """nbgrader export: grades.csv in the course folder (`settings`: the edge's, given to nbgrader's process)."""
    course = Course.of(course)
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--log-level=WARN",
                    "--exporter=autograder.course.grades_export.GradesExporter"], cwd=course.root, check=True,
                   env=tools_env(os.environ, settings))
    return course.grades_csv


