"""The commands that read a graded course: `report` (the class report) and `integrity` (similar answers)."""
from __future__ import annotations

import sys

from autograder.course.folder import Course

COURSE_HELP = "course folder (default: $CNN_KIT_COURSE or ./course)"


def cmd_report(args) -> int:
    from autograder.feedback.report import write_class_report

    settings, status = args.settings, 0
    course = Course.of(settings.course)
    for assignment in args.assignments:
        if not course.report_folder(assignment).is_dir():
            print(f"{assignment}: no reports in {course.report_folder(assignment)} (run cnn-kit autograde first)",
                  file=sys.stderr)
            status = 1
            continue
        html_path, csv_path = write_class_report(course.root, assignment, settings)
        print(f"{assignment}: {html_path}\n{' ' * len(assignment)}  {csv_path}")
    return status


def cmd_integrity(args) -> int:
    from autograder.feedback.integrity import check_assignment
    from autograder.feedback.integrity_page import write_page

    settings, status = args.settings, 0
    for assignment in args.assignments:
        try:
            result = check_assignment(settings.course, assignment, settings.integrity_threshold, settings.source,
                                      settings.lecture)
        except ValueError as exc:  # an unknown assignment
            print(f"{assignment}: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{assignment}: {write_page(settings.course, assignment, settings, settings.source, result)}  "
              f"({len(result.pairs)} pairs at or over {settings.integrity_threshold:g})")
        for pair in result.pairs if args.list else []:
            print(f"  {pair.score:4.0%}  {pair.left} — {pair.right}  ({', '.join(m.cell for m in pair.cells)})")
    return status


def add_commands(commands, common) -> None:
    """report and integrity, with their options."""
    p = commands.add_parser("report", help="the class report of graded assignments: HTML and CSV")
    common(p)
    p.add_argument("assignments", nargs="+")
    p.add_argument("--course", help=COURSE_HELP)
    p.set_defaults(run=cmd_report)

    p = commands.add_parser("integrity", help="the pairs of submissions whose answers are suspiciously alike "
                            "(reports/<assignment>/integrity.html; cnn-kit report writes it too)")
    common(p)
    p.add_argument("assignments", nargs="+")
    p.add_argument("--course", help=COURSE_HELP)
    p.add_argument("--threshold", help="the score (0-1) from which a pair is listed "
                   "(default: $CNN_KIT_INTEGRITY_THRESHOLD or 0.9)")
    p.add_argument("--lecture", metavar="DIR", help="the lecture's code, boilerplate that never counts "
                   "(default: $CNN_KIT_LECTURE)")
    p.add_argument("--list", action="store_true", help="also print the listed pairs")
    p.set_defaults(run=cmd_integrity)
