"""A Canvas gradebook CSV from nbgrader's gradebook: an nbgrader exporter plugin.

    nbgrader export --exporter=autograder.course.canvas.CanvasExporter --CanvasExporter.roster=roster.csv
    cnn-kit export --canvas --roster roster.csv --course DIR          (the same, with a printed summary)

The CSV has Canvas' gradebook columns: ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``,
``Section``, then one column per assignment named ``Name (Canvas id)``, one row per roster entry.

The roster (CSV, UTF-8, a spreadsheet's BOM accepted) maps nbgrader student ids to Canvas users:

=================  ==========  ===================================================================
column             required    meaning
=================  ==========  ===================================================================
``nbgrader_id``    yes         the student id in nbgrader (``submitted/<nbgrader_id>/...``)
``Student``        yes         the name as Canvas shows it (``Last, First``)
``ID``             yes         the Canvas user id
``SIS User ID``    no          copied as it is
``SIS Login ID``   no          copied as it is
``Section``        no          copied as it is
=================  ==========  ===================================================================

The first five columns of a Canvas gradebook export, with an ``nbgrader_id`` column added, are a roster.
Assignments map to Canvas columns in nbgrader's configuration (``nbgrader_config.py`` of the course)::

    c.CanvasExporter.assignments = {"a1_sizes_and_params": "Assignment 1 (48213)"}

the value being the assignment's column header in Canvas' own export (``Name (Canvas id)``). An
assignment without one gets a column named by its nbgrader id, and the summary says so.

Each score is nbgrader's after the late penalty autograde stored (:mod:`autograder.course.late`); the summary lists
every penalty taken off, so that the CSV's figures can be told from the class report's.

Nothing is dropped silently: students with submissions who are not in the roster, and roster entries
with no submission (their cell stays blank, which Canvas' import leaves unchanged), are listed in the
log, on screen with ``cnn-kit export`` and in ``<csv name>.summary.txt`` beside the CSV.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.plugins import ExportPlugin
from traitlets import Dict, Unicode

from autograder.course.folder import Course
from autograder.feedback import spreadsheet
from autograder.settings import Settings

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
ROSTER_REQUIRED = ["nbgrader_id", "Student", "ID"]
CANVAS_HEADER = re.compile(r".+ \(\d+\)$")
DEFAULT_CSV = Course(Path()).canvas_csv.name   # in the folder nbgrader runs in: the course's


class CanvasExportError(ValueError):
    """The roster or the configuration cannot make a Canvas CSV; the message says what to fix."""


@dataclass
class Roster:
    rows: list[dict]                           # in the roster's order, with every Canvas column
    problems: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [r["nbgrader_id"] for r in self.rows]


def read_roster(path: str | Path) -> Roster:
    path = Path(path)
    if not path.is_file():
        raise CanvasExportError(f"no roster at {path} (set CanvasExporter.roster / --roster)")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in ROSTER_REQUIRED if c not in header]
        if missing:
            raise CanvasExportError(f"the roster {path.name} lacks the column(s) {', '.join(missing)}; it needs "
                                    f"{', '.join(ROSTER_REQUIRED)} (optional: {', '.join(CANVAS_COLUMNS[2:])})")
        roster = Roster([])
        seen: dict[str, int] = {}
        for number, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
            if not row.get("nbgrader_id"):
                if any(row.values()):
                    roster.problems.append(f"roster line {number} has no nbgrader_id and is left out: {row}")
                continue
            if "points possible" in row.get("Student", "").lower():
                continue  # the second line of a Canvas export
            if row["nbgrader_id"] in seen:
                raise CanvasExportError(f"the roster lists nbgrader_id {row['nbgrader_id']!r} twice (lines "
                                        f"{seen[row['nbgrader_id']]} and {number})")
            seen[row["nbgrader_id"]] = number
            if not row.get("ID"):
                roster.problems.append(f"roster line {number} ({row['nbgrader_id']}) has no Canvas ID: Canvas "
                                       "will not match the row to a user")
            roster.rows.append({"nbgrader_id": row["nbgrader_id"], **{c: row.get(c, "") for c in CANVAS_COLUMNS}})
    return roster


@dataclass
class Summary:
    csv_path: Path
    rows: int = 0
    not_in_roster: dict[str, dict[str, float]] = field(default_factory=dict)   # student -> {assignment: score}
    no_submission: dict[str, list[str]] = field(default_factory=dict)         # roster student -> assignments
    unmapped: list[str] = field(default_factory=list)                          # assignments without Canvas column
    other: list[str] = field(default_factory=list)
    late: dict[str, dict[str, float]] = field(default_factory=dict)            # student -> {assignment: penalty}

    @property
    def clean(self) -> bool:
        return not (self.not_in_roster or self.no_submission or self.unmapped or self.other)

    def lines(self) -> list[str]:
        out = [f"Canvas CSV: {self.csv_path} ({self.rows} students)"]
        if self.not_in_roster:
            out.append(f"NOT IN THE ROSTER, not in the CSV ({len(self.not_in_roster)}): add them to the roster")
            out += [f"  {student}: " + ", ".join(f"{a} {s:g}" for a, s in scores.items())
                    for student, scores in sorted(self.not_in_roster.items())]
        if self.no_submission:
            out.append(f"IN THE ROSTER WITHOUT A SUBMISSION ({len(self.no_submission)}): their cells are blank")
            out += [f"  {student}: no submission of {', '.join(assignments)}"
                    for student, assignments in self.no_submission.items()]
        for assignment in self.unmapped:
            out.append(f"NO CANVAS COLUMN for {assignment}: the column is named {assignment!r}; set "
                       f"c.CanvasExporter.assignments = {{{assignment!r}: 'Name (Canvas id)'}} in nbgrader_config.py")
        out += [f"NOTE {line}" for line in self.other]
        if self.late:
            out.append(f"LATE PENALTIES taken off the scores above ({len(self.late)} students):")
            out += [f"  {student}: " + ", ".join(f"{a} -{p:g}" for a, p in penalties.items())
                    for student, penalties in sorted(self.late.items())]
        if self.clean:
            out.append("Every roster entry has every submission, and every submission a roster entry.")
        return out


def _score(value: float) -> str:
    return f"{round(value, 2):g}"


class CanvasExporter(ExportPlugin):
    """Canvas gradebook CSV (``Student, ID, SIS User ID, SIS Login ID, Section, Name (id)...``)."""

    roster = Unicode("", help="CSV mapping nbgrader student ids to Canvas users: nbgrader_id, Student, ID, "
                              "and optionally SIS User ID, SIS Login ID, Section").tag(config=True)
    assignments = Dict(Unicode(), default_value={},
                       help="nbgrader assignment id -> its Canvas column header, 'Name (Canvas id)'").tag(config=True)

    summary: Summary | None = None

    def export(self, gradebook: Gradebook) -> None:
        if not self.roster:
            raise CanvasExportError("no roster: pass --CanvasExporter.roster=ROSTER.csv (columns: "
                                    f"{', '.join(ROSTER_REQUIRED)})")
        roster = read_roster(self.roster)
        dest = Path(self.to or DEFAULT_CSV)
        summary = Summary(dest, other=list(roster.problems))
        wanted_students = {str(s) for s in self.student}
        assignments = [a for a in gradebook.assignments if not self.assignment or a.name in map(str, self.assignment)]
        columns = self._columns(assignments, summary)
        scores = _scores(gradebook, assignments, wanted_students, summary)

        in_roster = set(roster.ids)
        for student, by_assignment in scores.items():
            if student not in in_roster and (not wanted_students or student in wanted_students):
                summary.not_in_roster[student] = by_assignment
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "w", newline="", encoding="utf-8") as handle:
            writer = spreadsheet.writer(handle)  # no cell a formula, whichever separator
            writer.writerow(CANVAS_COLUMNS + columns)
            for row in roster.rows:
                student = row["nbgrader_id"]
                if wanted_students and student not in wanted_students:
                    continue
                mine = scores.get(student, {})
                missing = [a.name for a in assignments if a.name not in mine]
                if missing:
                    summary.no_submission[student] = missing
                writer.writerow([row[c] for c in CANVAS_COLUMNS]
                                + [_score(mine[a.name]) if a.name in mine else "" for a in assignments])
                summary.rows += 1
        summary_path = dest.with_name(dest.stem + ".summary.txt")
        summary_path.write_text("\n".join(summary.lines()) + "\n", encoding="utf-8")
        for line in summary.lines():
            (self.log.info if summary.clean else self.log.warning)(line)
        self.summary = summary

    def _columns(self, assignments, summary: Summary) -> list[str]:
        """Each assignment's Canvas column header ('Name (id)'), its own name where none is mapped (noted)."""
        columns = []
        for assignment in assignments:
            header = self.assignments.get(assignment.name)
            if not header:
                summary.unmapped.append(assignment.name)
                header = assignment.name
            elif not CANVAS_HEADER.match(header):
                summary.other.append(f"the Canvas column for {assignment.name}, {header!r}, is not 'Name (id)'")
            columns.append(header)
        return columns


def _scores(gradebook, assignments, wanted_students: set, summary: Summary) -> dict[str, dict[str, float]]:
    """student -> assignment -> score after the late penalty (the penalties noted in the summary)."""
    scores: dict[str, dict[str, float]] = {}
    for assignment in assignments:
        for submission in gradebook.assignment_submissions(assignment.name):
            penalty = submission.late_submission_penalty or 0.0
            scores.setdefault(submission.student.id, {})[assignment.name] = max(0.0, submission.score - penalty)
            if penalty > 0 and (not wanted_students or submission.student.id in wanted_students):
                summary.late.setdefault(submission.student.id, {})[assignment.name] = penalty
    return scores


def export_canvas(course: Course | Path, roster: Path, to: Path | None = None, assignments: dict | None = None,
                  settings: Settings | None = None) -> Summary:
    """The exporter run on a course folder with its nbgrader_config.py (`cnn-kit export --canvas`); `settings`:
    the edge's, for the gradebook's place (:func:`autograder.course.steps.nbgrader_api`)."""
    from autograder.course import steps as course_module

    course = Course.of(course)
    api = course_module.nbgrader_api(course, settings)
    config = api.config.copy()
    config.CanvasExporter.roster = str(roster)
    config.CanvasExporter.to = str(to or course.canvas_csv)
    if assignments:
        config.CanvasExporter.assignments = {**config.CanvasExporter.get("assignments", {}), **assignments}
    exporter = CanvasExporter(config=config)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        exporter.export(gradebook)
    return exporter.summary

