"""The class report: one assignment's graded submissions, seen together by the instructor.

``cnn-kit report ASSIGNMENT --course DIR`` (and ``cnn-kit autograde`` at its end) reads the kit's
per-submission reports, ``<course>/reports/<assignment>/<student>.json`` (:mod:`.report_load`), and writes beside them

- ``class-report.html`` (:mod:`.report_page`): the score distribution; per check the pass rate and the most
  common failure messages with counts (:mod:`.report_stats`); the flagged submissions with their reasons; the
  distinct networks found across the class, with counts and scores; the grading time per submission;
- ``class-report.csv`` (here): one row per submission (score, each check's score, flags, network group,
  grading time, and for a late submission its seconds late, penalty and score after it), for a spreadsheet;
- ``integrity.html`` (:mod:`autograder.feedback.integrity`), which the page links to.

Scores are the kit's verdicts; a late submission's penalty (nbgrader's, stored in the gradebook by autograde:
:mod:`autograder.course.late`) is shown beside them in the rows, with the score it leaves. Every CSV cell passes
:func:`autograder.feedback.spreadsheet.cell` (no formula, whether the spreadsheet splits on ',' or ';').
"""
from __future__ import annotations

from pathlib import Path

from autograder.course.folder import Course
from autograder.course.late import Late
from autograder.feedback import integrity_page
from autograder.feedback import spreadsheet
from autograder.feedback.inert import CSP_META  # noqa: F401  (tests read the page's policy here)
from autograder.feedback.report_load import (MAX_REPORT_BYTES, ClassReport, Submission, TooLarge,  # noqa: F401
                                             Unreadable, feedback_page, load, load_lateness, parse_submission,
                                             read_report, reports_folder)
from autograder.feedback.report_page import SECTIONS, num, render_html  # noqa: F401
from autograder.feedback.report_stats import (check_stats, describe_signature, network_signature,  # noqa: F401
                                              networks, normalise)
from autograder.settings import Settings

REPORT_HTML = "class-report.html"
REPORT_CSV = "class-report.csv"


def _late_columns(late: Late | None) -> list[str]:
    return ["", "", ""] if late is None else [f"{late.seconds_late:g}", num(late.penalty), num(late.score)]


def write_csv(report: ClassReport, path: Path) -> Path:
    checks = [s.check for s in check_stats(report)]
    group = {s: n.number for n in networks(report) for s in n.students}
    flagged = dict((sub.student, reasons) for sub, reasons in report.flagged())
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = spreadsheet.writer(handle)  # every cell safe in a spreadsheet (',' or ';')
        writer.writerow(["student", "score", "points", *checks, "network_group", "seconds", "flagged", "flags",
                         "messages_of_failed_checks", "to_regrade", "seconds_late", "late_penalty",
                         "score_after_late_penalty"])
        for sub in sorted(report.submissions + report.unread, key=lambda s: s.student):
            by_check = {r["check"]: r for r in sub.results}
            failed = [f"{r['check']}: {r['message']}" for r in sub.results if r["score"] < r["points"]]
            writer.writerow([sub.student, num(sub.score), num(sub.points),
                             *(num(by_check[c]["score"]) if c in by_check else "" for c in checks),
                             group.get(sub.student, ""), f"{sub.total_seconds:.2f}",
                             "yes" if sub.student in flagged else "no",
                             " | ".join(flagged.get(sub.student, [])), " | ".join(failed), "",
                             *_late_columns(report.late.get(sub.student))])
        for sub in sorted(report.to_regrade, key=lambda s: s.student):  # no score until regraded
            writer.writerow([sub.student, "", num(sub.points), *("" for _ in checks), "",
                             f"{sub.total_seconds:.2f}", "no", "", "", " | ".join(sub.to_regrade),
                             *_late_columns(report.late.get(sub.student))])
    return Path(path)


def write_class_report(course: Course | Path, assignment: str, settings: Settings) -> tuple[Path, Path]:
    """Write class-report.html and class-report.csv into <course>/reports/<assignment>/, and the integrity page
    it links to; return the first two. `settings`: the assignments' folder (``source``), the gradebook the late
    penalties are read from (``db_url``; None: the course's SQLite file), the integrity page's threshold and
    lecture."""
    course = Course.of(course)
    report = load(course, assignment, settings.source)
    report.late = load_lateness(course, assignment, settings.db_url)
    folder = course.report_folder(assignment)
    folder.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = folder / REPORT_HTML, folder / REPORT_CSV
    for path in (html_path, csv_path):
        path.unlink(missing_ok=True)  # written anew, never through a link left in their place
    html_path.write_text(render_html(report), encoding="utf-8", errors="backslashreplace")  # never half-written
    write_csv(report, csv_path)
    integrity_page.write_page(course.root, assignment, settings, settings.source)
    return html_path, csv_path
