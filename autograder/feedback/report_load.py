"""The class report's input: every kit report of one assignment in a course folder, read defensively.

A report (``<course>/reports/<assignment>/<student>.json``) is read without following links, without
blocking and with bounded size; a file that is not a kit report is listed as skipped with the reason, one
too large to read is listed as flagged (never dropped). Every string a report holds is made text any page
or file takes (a lone surrogate shown escaped).
"""
from __future__ import annotations

import errno
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from autograder.assignment import assignments
from autograder.course.folder import Course
from autograder.course.hostfs import shown_name
from autograder.course.late import Late, lateness

MAX_REPORT_BYTES = 4 * 1024 * 1024   # a kit report is a few KB; anything bigger is not one
SHOWN_CHARS = 400                    # a message is cut to this many characters on the page


class Unreadable(Exception):
    """A file in the reports folder that is not a kit report; the message says why."""


class TooLarge(Unreadable):
    """A report over the size limit: the kit bounds what it writes, so it is listed as flagged, not dropped."""


@dataclass
class Submission:
    student: str
    score: float
    points: float
    results: list[dict]          # {check, points, score, message, flags, details}, validated
    flags: list[str]
    error: str | None
    seconds: dict[str, float]
    isolation: str
    data: dict                   # the report JSON as read
    to_regrade: list[str] = field(default_factory=list)   # checks with no verdict yet, and why (not scored)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


@dataclass
class ClassReport:
    assignment: str
    submissions: list[Submission]
    skipped: list[tuple[str, str]]         # (file name, why it was not read)
    not_graded: list[str]                  # students with a submission and no kit report
    to_regrade: list[Submission] = field(default_factory=list)  # no verdict yet (the guard fired): kept apart
    feedback: dict[str, str] = field(default_factory=dict)   # student -> relative link to the feedback page
    unread: list[Submission] = field(default_factory=list)   # reports too large to read: flagged, not scored
    late: dict[str, Late] = field(default_factory=dict)      # student -> lateness and penalty, from the gradebook
    source: Path | None = None             # the assignments' folder: the checks' titles and which judge networks

    @property
    def points(self) -> float:
        return max((s.points for s in self.submissions), default=0.0)

    def flagged(self) -> list[tuple[Submission, list[str]]]:
        out = []
        for sub in self.submissions + self.unread:
            reasons = list(dict.fromkeys(sub.flags + [f for r in sub.results for f in r["flags"]]))
            if sub.error:
                reasons.insert(0, f"error: {sub.error}")
            if reasons:
                out.append((sub, reasons))
        return out


def read_report(path: Path, limit: int = MAX_REPORT_BYTES) -> dict:
    """A report file's JSON, read without following links, without blocking and with bounded size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unreadable("a symbolic link (not followed)") from None
        raise Unreadable(f"cannot open it: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file")
        if info.st_size > limit:
            raise TooLarge(f"{info.st_size:,} bytes, over the {limit:,}-byte limit for a report")
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise TooLarge(f"over the {limit:,}-byte limit for a report")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Unreadable(f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise Unreadable("not a JSON object")
    return data


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Unreadable(f"{what} is not a number")
    return float(value)


def text(value) -> str:
    """A report's string as text any page or file takes (a lone surrogate from the JSON shown escaped)."""
    return shown_name(value) if isinstance(value, str) else "" if value is None else json.dumps(value)[:SHOWN_CHARS]


def _texts(value) -> list[str]:
    return [text(v) for v in value] if isinstance(value, list) else []


def parse_submission(student: str, data: dict) -> Submission:
    """A validated Submission from a report's JSON (grade.Report.to_json()); Unreadable if it is not one."""
    results = data.get("results")
    if not isinstance(results, list):
        raise Unreadable("no list of results")
    clean = []
    for r in results:
        if not isinstance(r, dict) or not isinstance(r.get("check"), str):
            raise Unreadable("a result without a check name")
        clean.append({"check": r["check"], "points": _number(r.get("points"), f"{r['check']} points"),
                      "score": _number(r.get("score"), f"{r['check']} score"), "message": text(r.get("message")),
                      "flags": _texts(r.get("flags")),
                      "details": r.get("details") if isinstance(r.get("details"), dict) else {}})
    seconds = data.get("seconds") if isinstance(data.get("seconds"), dict) else {}
    seconds = {str(k): float(v) for k, v in seconds.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0}
    return Submission(student=student, score=round(sum(r["score"] for r in clean), 3),
                      points=sum(r["points"] for r in clean), results=clean, flags=_texts(data.get("flags")),
                      error=text(data["error"]) if data.get("error") is not None else None,
                      seconds=seconds, isolation=text(data.get("isolation")), data=data,
                      to_regrade=_texts(data.get("to_regrade")))


def too_large(student: str, why: str) -> Submission:
    """A submission whose report is too large to read: flagged in the page and the CSV (never dropped), and
    left out of the scores, which it would only distort."""
    return Submission(student=student, score=0.0, points=0.0, results=[], flags=[], seconds={}, isolation="",
                      error=f"report too large to read ({why}): its grade is in the gradebook; look at it by hand",
                      data={})


def reports_folder(course: Course | Path, assignment: str) -> Path:
    return Course.of(course).report_folder(assignment)


def _read_folder(folder: Path) -> tuple[list[Submission], list[tuple[str, str]], list[Submission]]:
    """The reports of one folder: (read, skipped with the reason, too large to read)."""
    submissions, skipped, unread = [], [], []
    if not folder.is_dir() or folder.is_symlink():
        return submissions, skipped, unread
    for path in sorted(folder.iterdir()):
        if path.suffix != ".json":
            continue
        try:
            submissions.append(parse_submission(shown_name(path.stem), read_report(path)))
        except Unreadable as exc:
            skipped.append((shown_name(path.name), str(exc)))
            if isinstance(exc, TooLarge):
                unread.append(too_large(shown_name(path.stem), str(exc)))
    return submissions, skipped, unread


def load(course: Course | Path, assignment: str, source: Path) -> ClassReport:
    """Every kit report of `assignment` in the course folder, the files skipped with the reason, the
    submissions that have no report, and each student's feedback page (`source`: the assignments' folder)."""
    course = Course.of(course)
    submissions, skipped, unread = _read_folder(course.report_folder(assignment))
    graded = {s.student for s in submissions} | {Path(name).stem for name, _ in skipped}
    submitted = sorted(p.parent.name for p in course.submitted.glob(f"*/{assignment}") if p.is_dir()) \
        if course.submitted.is_dir() else []
    report = ClassReport(assignment, [s for s in submissions if not s.to_regrade], skipped,
                         [shown_name(s) for s in submitted if shown_name(s) not in graded], unread=unread,
                         to_regrade=[s for s in submissions if s.to_regrade], source=Path(source))
    page = feedback_page(assignment, source)
    for sub in submissions if page else []:
        if stat.S_ISREG(_lstat_mode(course.feedback_folder(sub.student, assignment) / page)):
            report.feedback[sub.student] = "/".join(quote(part, errors="surrogateescape") for part in
                                                    ("..", "..", "feedback", sub.student, assignment, page))
    return report


def load_lateness(course: Course | Path, assignment: str, db_url: str | None = None) -> dict[str, Late]:
    """The late submissions of `assignment` in the course's gradebook (`db_url`; default its SQLite file, if any)."""
    from nbgrader.api import Gradebook

    if db_url is None:
        path = Course.of(course).gradebook
        if not path.is_file():
            return {}
        db_url = f"sqlite:///{path}"
    with Gradebook(db_url) as gradebook:
        return lateness(gradebook, assignment)


def feedback_page(assignment: str, source: Path) -> str | None:
    """The file name of the feedback page nbgrader writes for the assignment's notebook; None if unknown.

    The only page of a student's feedback folder the report links to: nbgrader copies every other file of
    the submission there too (a student's own ``0-index.html``, whose script would run in the instructor's
    browser), and those are never linked.
    """
    spec = assignments.get(assignment, source)
    return Path(spec.notebook).stem + ".html" if spec is not None else None


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0
