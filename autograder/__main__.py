"""The kit's command line: `cnn-kit <command>` (or `python -m autograder <command>`).

  demo       the main job: stage MNIST, release, sample submissions, autograde,
             feedback, export, and the grade table
  new-course a course folder for a real class: source/ and the kit's nbgrader_config.py
  grade      grade one notebook directly: a table on screen, JSON on disk
  autograde  autograde every submission of a course folder (resumable)
  report     the class report of a graded assignment (HTML + CSV)
  integrity  the pairs of submissions whose answers are suspiciously alike (HTML)
  export     grades.csv, or a Canvas gradebook CSV with --canvas
  check-course  solutions get full marks, blank release zero, release/ = source/ (exit 1 if not)
  ci-template   write the GitHub Actions workflow for a course repository
  release    regenerate the committed release/ and solutions/ from source/
  stage-data stage MNIST for offline use and say where it is
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from autograder.feedback import terminal
from autograder.course.hostfs import shown_name
from autograder.settings import Settings, SettingsError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mnist", metavar="DIR", help="folder with the four MNIST files "
                        "(default: $CNN_KIT_MNIST, then the kit's cache)")
    parser.add_argument("--profile", choices=["cpu", "gpu"], help="accuracy profile (default: gpu "
                        "when CUDA is available, else cpu)")


def _settings(args) -> Settings:
    """The settings, built once here: command line first, then CNN_KIT_*, every path made absolute.

    Commands pass them down as an argument. They are also exported as absolute CNN_KIT_* variables,
    for what reads them at an edge of its own: nbgrader's configuration file (which nbgrader loads in
    this process) and the processes it starts, the notebook's kernel among them (a relative path would
    change meaning in another folder).
    """
    settings = Settings.build(os.environ, Path.cwd(), mnist=args.mnist, profile=args.profile,
                              course=getattr(args, "course", None), lecture=getattr(args, "lecture", None),
                              integrity_threshold=getattr(args, "threshold", None))
    os.environ.update(settings.to_env())
    return settings


def cmd_stage_data(args) -> int:
    from autograder.data import MNISTCorrupt, MNISTNotFound, stage

    try:
        root = stage(args.settings, args.mnist)
    except (MNISTNotFound, MNISTCorrupt) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"MNIST staged at {root}/MNIST/raw (torchvision layout)")
    return 0


def cmd_grade(args) -> int:
    from autograder.judge import Options
    from autograder.judge.grade import grade_notebook

    notebook = Path(args.notebook).resolve()  # paths typed here are taken from here, once
    report = grade_notebook(notebook, args.assignment, Options.of(args.settings, accuracy=not args.no_accuracy))
    print(report.table())
    out = Path(args.json or notebook.with_suffix(".grade.json").name).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    report.write_json(out)
    print(f"JSON: {out}")
    return 0 if report.error is None else 1


def cmd_release(args) -> int:
    from autograder.assignment import assignments
    from autograder.assignment.release import generate_release, generate_solutions, write_comments, write_student_files

    source = args.settings.source  # release/ and solutions/ are made beside it (the kit's own by default)
    names = args.assignments or None   # None: every assignment of the source folder
    for name, assignment in assignments.discover(source).items():
        if (names is None or name in names) and write_comments(assignment):
            print(f"{name}: the graded cells' comments regenerated from the points and checks")
    generate_release(source.parent / "release", names, source=source)
    print(f"release/ regenerated with nbgrader generate_assignment: {source.parent / 'release'}")
    write_student_files(source.parent / "release")
    print("release/requirements-student.txt and student-setup.sh regenerated from the notebooks' imports")
    if not args.no_solutions:
        generate_solutions(source.parent / "solutions", names, source=source)
        print(f"solutions/ regenerated and executed (quick mode): {source.parent / 'solutions'}")
    return 0


def cmd_autograde(args) -> int:
    from autograder.course import steps as course
    from autograder.feedback.report import write_class_report

    root = args.settings.course
    if args.workers or args.scheduler:
        return _autograde_class(args)
    for assignment in args.assignments:
        before = _scores(root, assignment) if args.regrade else {}
        outcomes = course.autograde(root, assignment, source=args.settings.source, regrade=args.regrade)
        for student, outcome in outcomes.items():
            print(f"{assignment}  {shown_name(student)}: {outcome}")
        _print_changes(root, assignment, before, outcomes)
        html_path, _ = write_class_report(root, assignment, args.settings.source, args.settings)
        print(f"{assignment}  class report: {html_path}")
    return 0


def _scores(root: Path, assignment: str) -> dict[str, str]:
    from autograder.course import steps as course

    return {student: course.score_of(root, student, assignment) for student in course.students(root, assignment)}


def _print_changes(root: Path, assignment: str, before: dict[str, str], outcomes: dict[str, str]) -> None:
    """--regrade: each regraded student's score before and after (old → new)."""
    from autograder.course import steps as course

    regraded = [s for s in before if not outcomes.get(s, "").startswith("skipped")]
    if not before:
        return
    print(f"{assignment}: regraded {len(regraded)} submission(s)")
    for student in regraded:
        print(f"  {shown_name(student)}: {before[student]} → {course.score_of(root, student, assignment)}")


def _autograde_class(args) -> int:
    """--workers N / --scheduler ADDRESS: the whole class at once on Dask (autograder.course.classgrade)."""
    from autograder.course import classgrade
    from autograder.course import steps as course
    from autograder.feedback.report import write_class_report

    root = args.settings.course
    security = None
    if args.scheduler:
        try:
            security = classgrade.remote_security(args.scheduler, args.tls_ca_file, args.tls_cert, args.tls_key)
        except ValueError as exc:
            print(f"cnn-kit autograde: {exc}", file=sys.stderr)
            return 2
    summaries, changes = [], []
    try:
        for assignment in args.assignments:
            before = _scores(root, assignment) if args.regrade else {}
            summaries.append(classgrade.grade_class(args.settings, assignment, workers=args.workers,
                                                    scheduler=args.scheduler, retries=args.retries,
                                                    security=security, dashboard=args.dashboard,
                                                    regrade=args.regrade))
            changes.append((assignment, before, summaries[-1].outcomes))
            html_path, _ = write_class_report(root, assignment, args.settings.source, args.settings)
            print(f"{assignment}  class report: {html_path}")
    except KeyboardInterrupt:
        print("interrupted: what was collected is graded; the same command grades the rest", file=sys.stderr)
        return 130
    course.export(root)
    rows = [r for r in course.grade_rows(root) if r.assignment in args.assignments]
    print(course.table(rows))
    for summary in summaries:
        print("\n".join(summary.lines()))
    for assignment, before, outcomes in changes:
        _print_changes(root, assignment, before, outcomes)
    return 1 if any(s.failed for s in summaries) else 0


def cmd_report(args) -> int:
    from autograder.feedback.report import reports_folder, write_class_report

    root = args.settings.course
    status = 0
    for assignment in args.assignments:
        if not reports_folder(root, assignment).is_dir():
            print(f"{assignment}: no reports in {root / 'reports' / assignment} (run cnn-kit autograde first)",
                  file=sys.stderr)
            status = 1
            continue
        html_path, csv_path = write_class_report(root, assignment, args.settings.source, args.settings)
        print(f"{assignment}: {html_path}\n{' ' * len(assignment)}  {csv_path}")
    return status


def cmd_integrity(args) -> int:
    from autograder.feedback.integrity import check_assignment, write_page

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


def cmd_export(args) -> int:
    from autograder.course import steps as course

    root = args.settings.course
    if not args.canvas:
        if args.roster or args.column:
            print("--roster and --column belong to --canvas", file=sys.stderr)
            return 2
        print(f"grades exported: {course.export(root)}")
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
        summary = export_canvas(root, Path(args.roster).resolve(), Path(args.to).resolve() if args.to else None,
                                columns)
    except CanvasExportError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    print(f"Summary: {summary.csv_path.with_name(summary.csv_path.stem + '.summary.txt')}")
    return 0


def cmd_check_course(args) -> int:
    from autograder.assignment.coursecheck import check_course
    from autograder.assignment.release import assignments

    known = assignments(args.settings.source)
    unknown = sorted(set(args.assignments) - set(known))
    if unknown:
        print(f"no such assignment in source/: {', '.join(unknown)} (known: {', '.join(known)})",
              file=sys.stderr)
        return 2
    findings = check_course(args.assignments or None, release_dir=args.release and args.release.resolve(),
                            solutions_dir=args.solutions and args.solutions.resolve(),
                            settings=args.settings, on_finding=lambda f: print(f.line(), flush=True))
    failed = [f for f in findings if not f.ok]
    print(f"{len(findings) - len(failed)} of {len(findings)} checks hold" + (f"; {len(failed)} FAIL" if failed else ""))
    return 1 if failed or not findings else 0


CI_TEMPLATE = Path(__file__).parent / "templates" / "course-ci.yml"


def cmd_ci_template(args) -> int:
    target = Path(args.directory).resolve() / ".github" / "workflows" / "course-ci.yml"
    if target.exists() and not args.force:
        print(f"{target} exists; --force replaces it", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(CI_TEMPLATE.read_text())
    print(f"GitHub Actions workflow written: {target}\n"
          "The gpu job runs on a self-hosted runner: keep the repository private (see the README).")
    return 0


def cmd_new_course(args) -> int:
    from autograder.course import steps as course
    from autograder.assignment import release

    source = args.settings.source
    known = release.assignments(source)
    unknown = sorted(set(args.assignments) - set(known))
    if unknown:
        print(f"no such assignment in {source}: {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    root = args.settings.course
    kept = (root / course.CONFIG).exists()
    private = course.make_private(root)
    course.prepare_course(root, args.assignments or known, source, config=not kept)
    print(f"course folder: {root} ({private})\n  source/: {', '.join(args.assignments or known)}\n  {course.CONFIG}: "
          + ("kept (yours)" if kept else "the kit's") + "\nnext, in that folder: nbgrader generate_assignment "
          "ASSIGNMENT, then nbgrader release_assignment ASSIGNMENT (docs/weekly-cycle.md)")
    return 0


def cmd_demo(args) -> int:
    from autograder.course import steps as course
    from autograder.assignment import release
    from autograder.assignment import samples
    from autograder.data import MNISTCorrupt, MNISTNotFound, stage

    started = time.perf_counter()
    try:
        print(f"1/6 MNIST staged at {stage(args.settings)}")
    except (MNISTNotFound, MNISTCorrupt) as exc:
        print(exc, file=sys.stderr)
        return 2
    root = args.settings.course
    if root.exists() and not args.resume:
        import shutil

        shutil.rmtree(root)
    source = args.settings.source
    names = args.assignments or release.assignments(source)
    course.prepare_course(root, names, source)
    api = course.nbgrader_api(root)
    for name in names:
        result = api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            print(result.get("error"), file=sys.stderr)
            return 1
    print(f"2/6 released with nbgrader generate_assignment: {root / 'release'}")
    for name in names:
        if not args.resume:
            students = samples.write_samples(root, name, source)
            print(f"3/6 sample submissions for {name}: {', '.join(students)}")
    for name in names:
        for student, outcome in course.autograde(root, name, source=source).items():
            if outcome != "graded":
                print(f"    {name} {student}: {outcome}")
    print("4/6 autograded (nbgrader autograde, verdicts from the kit's sandboxed checks)")
    for name in names:
        course.feedback(root, name)
    print(f"5/6 feedback: {root / 'feedback'}/<student>/<assignment>/*.html")
    from autograder.feedback.report import write_class_report

    for name in names:
        print(f"    class report: {write_class_report(root, name, source, args.settings)[0]}")
    csv_path = course.export(root)
    print(f"6/6 grades exported: {csv_path}\n")
    print(course.table(course.grade_rows(root)))
    print(f"\nDone in {time.perf_counter() - started:.0f} s. Per-check messages: "
          f"{root / 'reports'}/<assignment>/<student>.json")
    return 0


def _never_unencodable() -> None:
    """The terminal gets text it cannot encode (a file name's non-UTF-8 bytes) escaped, never an exception
    that stops a class run half-way; names are shown escaped first (hostfs.shown_name), this is the net."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):  # replaced by a test's capture, or closed
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cnn-kit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="the main job, end to end, on sample submissions")
    _common(p)
    p.add_argument("--course", help="course folder (default: $CNN_KIT_COURSE or ./course)")
    p.add_argument("--assignments", nargs="*", help="default: all in source/")
    p.add_argument("--resume", action="store_true", help="keep the course folder and grade what is left")
    p.set_defaults(run=cmd_demo)

    p = commands.add_parser("new-course", help="a course folder for a real class (source/, nbgrader_config.py)")
    _common(p)
    p.add_argument("assignments", nargs="*", help="default: all in source/")
    p.add_argument("--course", help="course folder (default: $CNN_KIT_COURSE or ./course)")
    p.set_defaults(run=cmd_new_course)

    p = commands.add_parser("grade", help="grade one notebook directly")
    _common(p)
    p.add_argument("notebook")
    p.add_argument("--assignment", help="assignment id (default: from the notebook's name)")
    p.add_argument("--json", help="where to write the JSON report (default: <notebook>.grade.json here)")
    p.add_argument("--no-accuracy", action="store_true", help="skip the MNIST accuracy check")
    p.set_defaults(run=cmd_grade)

    p = commands.add_parser("autograde", help="autograde a course folder's submissions (resumable)")
    _common(p)
    p.add_argument("assignments", nargs="+")
    p.add_argument("--course", help="course folder (default: $CNN_KIT_COURSE or ./course)")
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

    p = commands.add_parser("report", help="the class report of graded assignments: HTML and CSV")
    _common(p)
    p.add_argument("assignments", nargs="+")
    p.add_argument("--course", help="course folder (default: $CNN_KIT_COURSE or ./course)")
    p.set_defaults(run=cmd_report)

    p = commands.add_parser("integrity", help="the pairs of submissions whose answers are suspiciously alike "
                            "(reports/<assignment>/integrity.html; cnn-kit report writes it too)")
    _common(p)
    p.add_argument("assignments", nargs="+")
    p.add_argument("--course", help="course folder (default: $CNN_KIT_COURSE or ./course)")
    p.add_argument("--threshold", help="the score (0-1) from which a pair is listed "
                   "(default: $CNN_KIT_INTEGRITY_THRESHOLD or 0.9)")
    p.add_argument("--lecture", metavar="DIR", help="the lecture's code, boilerplate that never counts "
                   "(default: $CNN_KIT_LECTURE)")
    p.add_argument("--list", action="store_true", help="also print the listed pairs")
    p.set_defaults(run=cmd_integrity)

    p = commands.add_parser("export", help="grades.csv (nbgrader export), or a Canvas gradebook CSV")
    _common(p)
    p.add_argument("--course", help="course folder (default: $CNN_KIT_COURSE or ./course)")
    p.add_argument("--canvas", action="store_true", help="Canvas gradebook CSV (autograder.course.canvas.CanvasExporter)")
    p.add_argument("--roster", help="CSV: nbgrader_id, Student, ID[, SIS User ID, SIS Login ID, Section]")
    p.add_argument("--column", action="append", metavar="ASSIGNMENT='NAME (ID)'",
                   help="the Canvas column of an assignment (else c.CanvasExporter.assignments in "
                        "nbgrader_config.py); repeatable")
    p.add_argument("--to", help="the CSV to write (default: <course>/canvas_grades.csv)")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("check-course", help="solutions full marks, blank release zero, no drift; "
                            "exit 1 if not")
    _common(p)
    p.add_argument("assignments", nargs="*", help="default: all in source/")
    p.add_argument("--release", type=Path, help="release folder to check (default: the kit's release/)")
    p.add_argument("--solutions", type=Path, help="solutions folder to check (default: the kit's solutions/)")
    p.set_defaults(run=cmd_check_course)

    p = commands.add_parser("ci-template", help="write .github/workflows/course-ci.yml into a course repository")
    p.add_argument("directory", nargs="?", default=".", help="the repository's root (default: here)")
    p.add_argument("--force", action="store_true", help="replace an existing course-ci.yml")
    p.set_defaults(run=cmd_ci_template, mnist=None, profile=None)

    p = commands.add_parser("release", help="regenerate release/ and solutions/ from source/")
    _common(p)
    p.add_argument("assignments", nargs="*", help="default: all in source/")
    p.add_argument("--no-solutions", action="store_true")
    p.set_defaults(run=cmd_release)

    p = commands.add_parser("stage-data", help="stage MNIST for offline use")
    _common(p)
    p.set_defaults(run=cmd_stage_data)

    args = parser.parse_args(argv)
    _never_unencodable()
    terminal.install()  # before logging's handler takes sys.stderr: every line the kit prints passes the filter
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.settings = _settings(args)
    except SettingsError as exc:
        parser.error(str(exc))
    try:
        return args.run(args)
    except SettingsError as exc:  # one read later, at its own edge: nbgrader_config.py's late penalty
        print(f"cnn-kit {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
