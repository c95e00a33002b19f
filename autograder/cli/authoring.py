"""The commands of a course's author: `grade` one notebook, `release`, `check-course`, `ci-template`, `stage-data`."""
from __future__ import annotations

import sys
from pathlib import Path

CI_TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "course-ci.yml"


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
    release, solutions = source.parent / "release", source.parent / "solutions"
    names = args.assignments or None   # None: every assignment of the source folder
    for name, assignment in assignments.discover(source).items():
        if (names is None or name in names) and write_comments(assignment):
            print(f"{name}: the graded cells' comments regenerated from the points and checks")
    generate_release(release, names, source=source)
    print(f"release/ regenerated with nbgrader generate_assignment: {release}")
    write_student_files(release)
    print("release/requirements-student.txt and student-setup.sh regenerated from the notebooks' imports")
    if not args.no_solutions:
        generate_solutions(solutions, names, source=source, settings=args.settings)
        print(f"solutions/ regenerated and executed (quick mode): {solutions}")
    return 0


def cmd_check_course(args) -> int:
    from autograder.assignment.coursecheck import check_course
    from autograder.assignment.release import assignments

    known = assignments(args.settings.source)
    unknown = sorted(set(args.assignments) - set(known))
    if unknown:
        print(f"no such assignment in {args.settings.source}: {', '.join(unknown)} (known: {', '.join(known)})",
              file=sys.stderr)
        return 2
    findings = check_course(args.settings, args.assignments or None, release_dir=args.release and args.release.resolve(),
                            solutions_dir=args.solutions and args.solutions.resolve(),
                            on_finding=lambda f: print(f.line(), flush=True))
    failed = [f for f in findings if not f.ok]
    print(f"{len(findings) - len(failed)} of {len(findings)} checks hold" + (f"; {len(failed)} FAIL" if failed else ""))
    return 1 if failed or not findings else 0


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


def add_commands(commands, common) -> None:
    """grade, check-course, ci-template, release and stage-data, with their options."""
    p = commands.add_parser("grade", help="grade one notebook directly")
    common(p)
    p.add_argument("notebook")
    p.add_argument("--assignment", help="assignment id (default: from the notebook's name)")
    p.add_argument("--json", help="where to write the JSON report (default: <notebook>.grade.json here)")
    p.add_argument("--no-accuracy", action="store_true", help="skip the MNIST accuracy check")
    p.set_defaults(run=cmd_grade)

    p = commands.add_parser("check-course", help="solutions full marks, blank release zero, no drift; "
                            "exit 1 if not")
    common(p)
    p.add_argument("assignments", nargs="*", help="default: all in source/")
    p.add_argument("--release", type=Path, help="release folder to check (default: release/ beside source/)")
    p.add_argument("--solutions", type=Path, help="solutions folder to check (default: solutions/ beside source/)")
    p.set_defaults(run=cmd_check_course)

    p = commands.add_parser("ci-template", help="write .github/workflows/course-ci.yml into a course repository")
    p.add_argument("directory", nargs="?", default=".", help="the repository's root (default: here)")
    p.add_argument("--force", action="store_true", help="replace an existing course-ci.yml")
    p.set_defaults(run=cmd_ci_template, mnist=None, profile=None)

    p = commands.add_parser("release", help="regenerate release/ and solutions/ from source/")
    common(p)
    p.add_argument("--no-solutions", action="store_true")
    p.add_argument("assignments", nargs="*", help="default: all in the source folder")
    p.set_defaults(run=cmd_release)

    p = commands.add_parser("stage-data", help="stage MNIST for offline use")
    common(p)
    p.set_defaults(run=cmd_stage_data)
