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

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from autograder import paths
from autograder.assignment import assignments
from autograder.course import hostfs
from autograder.course import late
from autograder.feedback import terminal
from autograder.course.hostfs import UnsafePath, check_name, clean_folder, report_file

log = logging.getLogger(__name__)
CONFIG = "nbgrader_config.py"


def prepare_course(course: Path, names: list[str], source: Path = paths.SOURCE, config: bool = True) -> Path:
    """A course folder with the named assignments of `source` and (`config`) the kit's nbgrader configuration.

    The course's source/ gets each assignment's notebook and files, never its grading files
    (checks, reference, mistakes): nbgrader releases that folder to students and copies it into
    every submission's folder when it autogrades.
    """
    course = Path(course)
    (course / "source").mkdir(parents=True, exist_ok=True)
    if config:
        shutil.copy(paths.KIT / CONFIG, course / CONFIG)
    for name in names:
        target = course / "source" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(Path(source) / name, target, ignore=shutil.ignore_patterns(*assignments.GRADING_FILES))
    return course


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

    api = api or nbgrader_api(course)
    folder = Path(course) / "submitted" / student / assignment
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


def _clear_scores(api, student: str, assignment: str) -> None:
    """Mark a submission as not graded yet: a run killed before nbgrader saves its scores grades it again."""
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        submission = _submission(gb, student, assignment)
        if submission is not None:
            for grade in _autograded_grades(submission):
                grade.auto_score = None
            gb.db.commit()


def check_submission(course: Path, student: str, assignment: str, source: Path = paths.SOURCE) -> None:
    """UnsafePath unless `submitted/<student>/<assignment>/` is a real folder whose notebooks are regular files."""
    check_name("student id", student)
    check_name("assignment", assignment)
    folder = hostfs.real_folder(Path(course), "submitted", student, assignment)
    spec = assignments.get(assignment, source)
    notebook = spec.notebook if spec else None
    for entry in os.scandir(folder):
        if entry.name.endswith(".ipynb") or entry.name == notebook:
            info = os.lstat(entry.path)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                raise UnsafePath(f"submitted/{student}/{assignment}/{entry.name} is "
                                 f"{hostfs._what(info.st_mode) if not stat.S_ISREG(info.st_mode) else 'a hard link'}"
                                 ", not a regular file: not graded, check the submission")


def students(course: Path, assignment: str) -> list[str]:
    """Every name under submitted/ with this assignment, valid or not (autograde refuses the invalid ones)."""
    submitted = Path(course) / "submitted"
    if not submitted.is_dir():
        return []
    return sorted(name for name in os.listdir(submitted)
                  if os.path.lexists(os.path.join(submitted, name, assignment)))


def _refuse(course: Path, student: str, assignment: str, reason: str, source: Path = paths.SOURCE) -> str:
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


def _kit_report(course: Path, student: str, assignment: str) -> dict | None:
    try:
        data = json.loads(report_path(course, student, assignment).read_text())
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
    api = api or nbgrader_api(course)
    if is_graded(course, student, assignment, api):
        return False
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        attempted = _submission(gb, student, assignment) is not None
    return attempted or report_path(course, student, assignment).is_file()


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


def _grade_one(api, course: Path, student: str, assignment: str) -> str:
    """nbgrader autograde of one submission, from scratch: 'graded' or 'failed: why'."""
    _clear_scores(api, student, assignment)
    try:
        report_path(course, student, assignment).unlink(missing_ok=True)
    except OSError:
        pass
    result = api.autograde(assignment, student, force=True, create=True)
    if not result["success"]:
        log.error("autograde %s/%s failed:\n%s", student, assignment, result.get("log", "")[-2000:])
    removed = clean_folder(Path(course) / "autograded" / student / assignment)
    hostfs.add_report_flags(course, assignment, student,
                            [f"removed from the autograded folder: {line}" for line in removed])
    return "graded" if result["success"] else f"failed: {result.get('error', '')[-500:]}"


def autograde(course: Path, assignment: str, *, progress: bool = True, source: Path = paths.SOURCE,
              regrade: bool = False, retry: bool = True) -> dict[str, str]:
    """Autograde every submission not graded yet; student -> 'graded' | 'skipped (already graded)' |
    'to regrade: why' | why not.

    `regrade`: grade again exactly the submissions flagged "to regrade" or failed (the others are skipped).
    `retry`: a submission whose grading had no verdict for a reason that is not the student's (the machine's
    wall-clock guard) is graded once more at the end, after the others; still without one, it is 'to regrade'.
    `source`: the assignments' folder (the settings'), for the notebook's name and the points of a refusal.
    """
    check_name("assignment", assignment)
    api = nbgrader_api(course)
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


def feedback(course: Path, assignment: str) -> Path:
    """nbgrader generate_feedback, after every autograded folder is emptied of links and special files."""
    check_name("assignment", assignment)
    autograded = Path(course) / "autograded"
    for student in sorted(os.listdir(autograded)) if autograded.is_dir() else []:
        folder = autograded / student / assignment
        if os.path.lexists(folder):
            removed = clean_folder(folder)
            hostfs.add_report_flags(course, assignment, student,
                                    [f"removed before feedback: {line}" for line in removed])
    result = nbgrader_api(course).generate_feedback(assignment, force=True)
    if not result["success"]:
        raise RuntimeError(f"generate_feedback {assignment} failed:\n{result.get('error')}")
    return course / "feedback"


def export(course: Path) -> Path:
    """nbgrader export: grades.csv in the course folder."""
    _tools_on_path()
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--log-level=WARN",
                    "--exporter=autograder.course.grades_export.GradesExporter"], cwd=course, check=True)
    return course / "grades.csv"


@dataclass
class Row:
    student: str
    assignment: str
    score: float
    points: float
    flags: list[str]
    submitted: bool = True
    late_penalty: float = 0.0    # already taken off `score`


def grade_rows(course: Path) -> list[Row]:
    """One row per student and assignment, from the gradebook (the scores grades.csv holds) and the kit's reports.

    Like nbgrader's export, every student is listed under every assignment; a student with no submission of
    an assignment gets a row marked not submitted, not a flagged zero. Read from the gradebook, not from
    grades.csv, whose cells are made safe for a spreadsheet (an id may start with '-').
    """
    from nbgrader.api import MissingEntry

    rows = []
    with nbgrader_api(course).gradebook as gradebook:
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
                report = report_path(course, student.id, assignment.name)
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
