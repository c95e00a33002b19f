"""The commands over a course folder: `demo`, `new-course`, `autograde` (one by one or a class at once), `export`."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from autograder.course.folder import Course
from autograder.course.hostfs import shown_name
from autograder.settings import Settings

COURSE_HELP = "course folder (default: $CNN_KIT_COURSE or ./course)"


def cmd_new_course(args) -> int:
    from autograder.assignment import release
    from autograder.course import steps

    source = args.settings.source
    known = release.assignments(source)
    unknown = sorted(set(args.assignments) - set(known))
    if unknown:
        print(f"no such assignment in {source}: {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    course = Course.of(args.settings.course)
    kept = course.config.exists()
    private = steps.make_private(course.root)
    steps.prepare_course(course, args.assignments or known, source, config=not kept)
    print(f"course folder: {course.root} ({private})\n  source/: {', '.join(args.assignments or known)}\n  "
          f"{course.config.name}: " + ("kept (yours)" if kept else "the kit's") + "\nnext, in that folder: nbgrader "
          "generate_assignment ASSIGNMENT, then nbgrader release_assignment ASSIGNMENT (docs/weekly-cycle.md)")
    return 0


def cmd_demo(args) -> int:
    """Every step of the weekly cycle on the sample submissions, each announced as it ends."""
    from autograder.assignment import release, samples
    from autograder.course import steps
    from autograder.data import MNISTCorrupt, MNISTNotFound, stage

    settings, started = args.settings, time.perf_counter()
    try:
        print(f"1/6 MNIST staged at {stage(settings)}")
    except (MNISTNotFound, MNISTCorrupt) as exc:
        print(exc, file=sys.stderr)
        return 2
    course = Course.of(settings.course)
    if course.root.exists() and not args.resume:
        import shutil

        shutil.rmtree(course.root)
    names = args.assignments or release.assignments(settings.source)
    steps.prepare_course(course, names, settings.source)
    api = steps.nbgrader_api(course, settings)
    for name in names:
        result = api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            print(result.get("error"), file=sys.stderr)
            return 1
    print(f"2/6 released with nbgrader generate_assignment: {course.release}")
    for name in names if not args.resume else []:
        print(f"3/6 sample submissions for {name}: {', '.join(samples.write_samples(course, name, settings.source))}")
    _demo_grade(course, names, settings)
    print(f"\nDone in {time.perf_counter() - started:.0f} s. Per-check messages: "
          f"{course.reports}/<assignment>/<student>.json")
    return 0


def _demo_grade(course: Course, names: list[str], settings: Settings) -> None:
    """The demo's steps 4 to 6: autograde, feedback and the class reports, export and the table."""
    from autograder.course import steps
    from autograder.feedback.report import write_class_report

    for name in names:
        for student, outcome in steps.autograde(course, name, source=settings.source, settings=settings).items():
            if outcome != "graded":
                print(f"    {name} {student}: {outcome}")
    print("4/6 autograded (nbgrader autograde, verdicts from the kit's sandboxed checks)")
    for name in names:
        steps.feedback(course, name, settings)
    print(f"5/6 feedback: {course.feedback}/<student>/<assignment>/*.html")
    for name in names:
        print(f"    class report: {write_class_report(course.root, name, settings)[0]}")
    csv_path = steps.export(course, settings)
    print(f"6/6 grades exported: {csv_path}\n")
    print(steps.table(steps.grade_rows(course, settings)))


def cmd_autograde(args) -> int:
    from autograder.course import steps
    from autograder.feedback.report import write_class_report

    settings = args.settings
    if args.workers or args.scheduler:
        return _autograde_class(args)
    for assignment in args.assignments:
        before = _scores(settings.course, assignment) if args.regrade else {}
        outcomes = steps.autograde(settings.course, assignment, source=settings.source, settings=settings,
                                   regrade=args.regrade)
        for student, outcome in outcomes.items():
            print(f"{assignment}  {shown_name(student)}: {outcome}")
        _print_changes(settings.course, assignment, before, outcomes)
        html_path, _ = write_class_report(settings.course, assignment, settings)
        print(f"{assignment}  class report: {html_path}")
    return 0


def _scores(root: Path, assignment: str) -> dict[str, str]:
    from autograder.course import steps

    return {student: steps.score_of(root, student, assignment) for student in steps.students(root, assignment)}


def _print_changes(root: Path, assignment: str, before: dict[str, str], outcomes: dict[str, str]) -> None:
    """--regrade: each regraded student's score before and after (old → new)."""
    from autograder.course import steps

    regraded = [s for s in before if not outcomes.get(s, "").startswith("skipped")]
    if not before:
        return
    print(f"{assignment}: regraded {len(regraded)} submission(s)")
    for student in regraded:
        print(f"  {shown_name(student)}: {before[student]} → {steps.score_of(root, student, assignment)}")


def _autograde_class(args) -> int:
    """--workers N / --scheduler ADDRESS: the whole class at once on Dask (autograder.course.classgrade)."""
    from autograder.course import classgrade, steps
    from autograder.feedback.report import write_class_report

    settings, security = args.settings, None
    if args.scheduler:
        try:
            security = classgrade.remote_security(args.scheduler, args.tls_ca_file, args.tls_cert, args.tls_key)
        except ValueError as exc:
            print(f"cnn-kit autograde: {exc}", file=sys.stderr)
            return 2
    summaries, changes = [], []
    try:
        for assignment in args.assignments:
            before = _scores(settings.course, assignment) if args.regrade else {}
            summaries.append(classgrade.grade_class(settings, assignment, workers=args.workers,
                                                    scheduler=args.scheduler, retries=args.retries,
                                                    security=security, dashboard=args.dashboard,
                                                    regrade=args.regrade))
            changes.append((assignment, before, summaries[-1].outcomes))
            html_path, _ = write_class_report(settings.course, assignment, settings)
            print(f"{assignment}  class report: {html_path}")
    except KeyboardInterrupt:
        print("interrupted: what was collected is graded; the same command grades the rest", file=sys.stderr)
        return 130
    steps.export(settings.course, settings)
    print(steps.table([r for r in steps.grade_rows(settings.course, settings) if r.assignment in args.assignments]))
    for summary in summaries:
        print("\n".join(summary.lines()))
    for assignment, before, outcomes in changes:
        _print_changes(settings.course, assignment, before, outcomes)
    return 1 if any(s.failed for s in summaries) else 0


def cmd_export(args) -> int:
    from autograder.course import steps

    if not args.canvas:
        if args.roster or args.column:
            print("--roster and --column belong to --canvas", file=sys.stderr)
            return 2
        print(f"grades exported: {steps.export(args.settings.course, args.settings)}")
        return 0
    from autograder.course.canvas import CanvasExportError, export_canvas

    if not args.roster:
        print("--canvas needs --roster ROSTER.csv (columns: nbgrader_id, Student, ID, "
              "SIS User ID, SIS Login ID, Section)", file=sys.stderr)
        return 2
    columns = {}
    for item in args.column or []:
        assignment, sep, header = item.partition("=")
        if not sep or not assignment or not header:
            print(f"--column {item!r}: expected ASSIGNMENT='Name (Canvas id)'", file=sys.stderr)
            return 2
        columns[assignment] = header
    try:
        summary = export_canvas(args.settings.course, Path(args.roster).resolve(),
                                Path(args.to).resolve() if args.to else None, columns, args.settings)
    except CanvasExportError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    print(f"Summary: {summary.csv_path.with_name(summary.csv_path.stem + '.summary.txt')}")
    return 0


def add_commands(commands, common) -> None:
    """demo, new-course, autograde and export, with their options."""
    p = commands.add_parser("demo", help="the main job, end to end, on sample submissions")
    common(p)
    p.add_argument("--course", help=COURSE_HELP)
    p.add_argument("--assignments", nargs="*", help="default: all in source/")
    p.add_argument("--resume", action="store_true", help="keep the course folder and grade what is left")
    p.set_defaults(run=cmd_demo)

    p = commands.add_parser("new-course", help="a course folder for a real class (source/, nbgrader_config.py)")
    common(p)
    p.add_argument("assignments", nargs="*", help="default: all in source/")
    p.add_argument("--course", help=COURSE_HELP)
    p.set_defaults(run=cmd_new_course)

    _add_autograde(commands, common)

    p = commands.add_parser("export", help="grades.csv (nbgrader export), or a Canvas gradebook CSV")
    common(p)
    p.add_argument("--course", help=COURSE_HELP)
    p.add_argument("--canvas", action="store_true", help="Canvas gradebook CSV (autograder.course.canvas.CanvasExporter)")
    p.add_argument("--roster", help="CSV: nbgrader_id, Student, ID[, SIS User ID, SIS Login ID, Section]")
    p.add_argument("--column", action="append", metavar="ASSIGNMENT='NAME (ID)'",
                   help="the Canvas column of an assignment (else c.CanvasExporter.assignments in "
                        "nbgrader_config.py); repeatable")
    p.add_argument("--to", help="the CSV to write (default: <course>/canvas_grades.csv)")
    p.set_defaults(run=cmd_export)


def _add_autograde(commands, common) -> None:
    p = commands.add_parser("autograde", help="autograde a course folder's submissions (resumable)")
    common(p)
    p.add_argument("assignments", nargs="+")
    p.add_argument("--course", help=COURSE_HELP)
    p.add_argument("--workers", type=int, metavar="N", help="grade the class at once on a local Dask cluster "
                   "of N single-threaded worker processes (see 'Grading a whole class' in the README)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="grade the class at once on an existing Dask "
                   "cluster over TLS, e.g. tls://10.0.0.5:8786, with --tls-ca-file, --tls-cert and --tls-key")
    p.add_argument("--tls-ca-file", metavar="FILE", help="with --scheduler: the CA certificate the cluster's "
                   "certificates are signed with")
    p.add_argument("--tls-cert", metavar="FILE", help="with --scheduler: this client's certificate")
    p.add_argument("--tls-key", metavar="FILE", help="with --scheduler: this client's private key (chmod 600)")
    p.add_argument("--dashboard", action="store_true", help="with --workers: start the local cluster's Dask "
                   "dashboard, on 127.0.0.1 (any user of this machine can open it)")
    p.add_argument("--retries", type=int, default=2, help="with --workers/--scheduler: how often a student "
                   "whose worker or grading process died is tried again (default 2)")
    p.add_argument("--regrade", action="store_true", help="grade again exactly the submissions flagged "
                   "'to regrade' (no verdict: the machine's wall-clock guard fired) or failed, and show "
                   "each one's score before and after")
    p.set_defaults(run=cmd_autograde)
