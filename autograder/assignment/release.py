"""Generate what is derived from source/: the graded cells' comments, the student release and the solutions.

Each graded cell opens with a comment saying what its hidden tests check and for how many points,
generated from the notebook's metadata (the points) and the assignment's checks (their titles and
weights), and written back into the source notebook, so the points are written once. A visible test's
``GRADER_MINIMUM = {...}`` line is generated the same way, from the accuracy profiles' calibrated
thresholds (``source/<a>/calibration/``), so the notebook states the minimum it is graded against.

``release/`` is nbgrader's own ``generate_assignment`` output; ``solutions/`` is
the source with the hidden tests and the solution markers removed (cell ids kept,
so `cnn-kit grade` gives it full marks), executed in quick mode so it shows its
outputs and plots. Both are committed, and a test
regenerates them and fails on any difference.
"""
from __future__ import annotations

import ast
import copy
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder import paths
from autograder.assignment.assignments import CHECKS_FILE
from autograder.course.folder import Course
from autograder.judge import Assignment
from autograder.judge.notebook import MARKER, STUB_AFTER_SOLUTION, nbgrader_meta, solution_source, source_text  # noqa: F401 (re-exported)
from autograder.settings import Settings

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)


MINIMUM_LINE = re.compile(r"^GRADER_MINIMUM = .*$", re.MULTILINE)
MINIMUM_COMMENT = "  # percent, per grading profile: written by `cnn-kit release` from the assignment's calibration/"
COMMENT = re.compile(r"\A# Graded cell \([^)]*\)\. Hidden tests check:\n(?:#   - .*\n)*")


def assignments(source: Path) -> list[str]:
    """The assignments of the source folder (the settings' ``source``): its folders with a checks.py."""
    return sorted(p.name for p in Path(source).iterdir() if (p / CHECKS_FILE).is_file())


def _points(value: float) -> str:
    return f"{value:g} point{'' if value == 1 else 's'}"


def cell_comment(points: float, checks) -> str:
    """What a graded cell's hidden tests check, for how many points: the comment it opens with."""
    lines = [f"# Graded cell ({points:g} points). Hidden tests check:"]
    lines += [f"#   - {check.title} ({_points(check.points)})" for check in checks]
    return "\n".join(lines) + "\n"


def minimum_line(profiles: dict) -> str:
    """The visible tests' ``GRADER_MINIMUM`` line: each profile's calibrated minimum accuracy, in percent
    (`profiles`: the assignment's accuracy recipe, ``checks.ACCURACY``)."""
    values = ", ".join(f"{name!r}: {profile.threshold:g}" for name, profile in sorted(profiles.items()))
    return f"GRADER_MINIMUM = {{{values}}}{MINIMUM_COMMENT}"


def with_comments(nb, assignment: Assignment) -> nbformat.NotebookNode:
    """`nb` with each graded cell's comment generated from its points and its checks (and its
    ``GRADER_MINIMUM`` line, if it has one, from the calibrated profiles)."""
    nb = copy.deepcopy(nb)
    cells = assignment.cells
    profiles = getattr(assignment.module, "ACCURACY", None) or {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and meta.get("grade_id") in cells:
            text = COMMENT.sub("", source_text(cell), count=1)
            if MINIMUM_LINE.search(text) and profiles:
                text = MINIMUM_LINE.sub(lambda _: minimum_line(profiles), text)
            cell.source = cell_comment(float(meta.get("points") or 0), cells[meta["grade_id"]]) + text
    return nb


def write_comments(assignment: Assignment) -> bool:
    """Regenerate the graded cells' comments in the source notebook; True where it changed."""
    path = assignment.source_notebook
    nb = nbformat.read(path, as_version=4)
    commented = with_comments(nb, assignment)
    if [source_text(c) for c in commented.cells] == [source_text(c) for c in nb.cells]:
        return False
    nbformat.write(commented, path)
    return True


def generate_release(out_dir: Path, names: list[str] | None = None, *, source: Path) -> Path:
    """Run nbgrader generate_assignment in a scratch course; copy release/<a> to out_dir/<a>."""
    from autograder.course import steps as course

    names = names or assignments(source)
    with tempfile.TemporaryDirectory(prefix="cnn-kit-release-") as tmp:
        scratch = course.prepare_course(Path(tmp) / "course", names, source)
        api = course.nbgrader_api(scratch)
        for name in names:
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{result.get('error')}")
            target = Path(out_dir) / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(Course.of(scratch).release_assignment(name), target)
    return Path(out_dir)




def solution_notebook(source_nb) -> nbformat.NotebookNode:
    nb = copy.deepcopy(source_nb)
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        text = source_text(cell)
        if meta.get("solution"):
            cell.source = solution_source(text)
        elif meta.get("grade") and "BEGIN HIDDEN TESTS" in text:
            cell.source = HIDDEN.sub("", text).rstrip() + "\n# (hidden tests run when the notebook is graded)"
    return nb  # nbgrader metadata kept: the grader finds answers by grade_id, so solutions/ grades in full


def generate_solutions(out_dir: Path, names: list[str] | None = None, execute: bool = True, *,
                       source: Path, settings: Settings) -> Path:
    """solutions/<a>/<notebook> from `source`, each executed (`execute`) in the sandboxed kernel with `settings`."""
    from nbclient import NotebookClient
    from traitlets.config import Config

    from autograder.sandbox.kernel import SandboxedKernelManager

    for name in names or assignments(source):
        for source_path in sorted((Path(source) / name).glob("*.ipynb")):
            nb = solution_notebook(nbformat.read(source_path, as_version=4))
            target = Path(out_dir) / name / source_path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if execute:
                with tempfile.TemporaryDirectory() as run_dir:
                    # The kernel a submission runs in under grading (sandboxed, Unix sockets), in the
                    # notebook's quick mode; no execution timestamps, so a regeneration differs only
                    # where the content does. The client makes (and so shuts down) its kernel manager:
                    # one handed in as km= it would leave running, its channels open, until exit.
                    config = Config({"SandboxedKernelManager": {"settings": settings}})
                    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                                   kernel_manager_class=SandboxedKernelManager, config=config,
                                   resources={"metadata": {"path": run_dir}}).execute(
                        env={**os.environ, "CNN_KIT_QUICK": "1"})  # the kernel's own environment: a child's
            nbformat.write(nb, target)
    return Path(out_dir)


def comparable(nb) -> list[tuple]:
    """What must not drift: each cell's type, source and nbgrader metadata."""
    return [(c.cell_type, source_text(c), nbgrader_meta(c)) for c in nb.cells]


# The student install: the packages a release notebook imports, as their distributions on PyPI, with the
# kit's own lower bounds; then the tools a student works in (JupyterLab, and nbgrader for its Validate
# button). Nothing of the kit: the notebooks' data cell falls back to torchvision's download without it.
DISTRIBUTIONS = {"IPython": "ipython>=8", "matplotlib": "matplotlib>=3.8", "torch": "torch>=2.3",
                 "torchinfo": "torchinfo>=1.8", "torchvision": "torchvision>=0.18", "tqdm": "tqdm>=4.66"}
STUDENT_TOOLS = ("jupyterlab>=4", "nbgrader>=0.9")
REQUIREMENTS_FILE = "requirements-student.txt"
GUESSED = "# the import's name: check that it is the PyPI name, and add it to release.DISTRIBUTIONS"
# nbgrader's instructor extensions, off for students as nbgrader's installation guide describes (the
# Validate button and the assignment list stay).
INSTRUCTOR_LAB_EXTENSIONS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                             "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")


def _optional(node: ast.Try) -> bool:
    """A `try:` whose handler catches ImportError: what it imports is optional (the kit's MNIST staging)."""
    names = set()
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {k.id for k in kinds if isinstance(k, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def imported_modules(code: str) -> set[str]:
    """The top-level modules `code` imports, less the standard library and the optional imports."""
    found: set[str] = set()

    def visit(node):
        if isinstance(node, ast.Try) and _optional(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(code))
    return found - set(sys.stdlib_module_names)


def notebook_imports(release_dir: Path = paths.RELEASE) -> set[str]:
    """What the release notebooks' code cells import, beyond the standard library."""
    found: set[str] = set()
    for path in sorted(Path(release_dir).glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                found |= imported_modules(source_text(cell))
    return found


def student_requirements(release_dir: Path = paths.RELEASE) -> str:
    """requirements-student.txt: exactly what the release notebooks import, then JupyterLab and nbgrader."""
    modules = notebook_imports(release_dir)
    lines = ["# A student's install for the release notebooks: generated by `cnn-kit release`, do not edit.",
             "# python3 -m venv cnn-course && cnn-course/bin/pip install -r requirements-student.txt",
             "# then nbgrader's instructor extensions off (student-setup.sh does all three steps).",
             "# What the notebooks import:"]
    lines += [DISTRIBUTIONS.get(m) or f"{m}  {GUESSED}" for m in sorted(modules, key=str.lower)]
    lines += ["# Where a student works: JupyterLab, and nbgrader for its Validate button:", *STUDENT_TOOLS]
    return "\n".join(lines) + "\n"


def student_setup_script() -> str:
    """student-setup.sh: the one command a student runs (a virtual environment, the packages, extensions off)."""
    return "\n".join([
        "#!/bin/sh",
        "# A student's environment for the course notebooks: generated by `cnn-kit release`, do not edit.",
        "# Usage: sh student-setup.sh [folder]   (default: ./cnn-course), then: cnn-course/bin/jupyter lab",
        "set -e",
        'venv="${1:-cnn-course}"',
        'here="$(dirname "$0")"',
        'python3 -m venv "$venv"',
        f'"$venv/bin/pip" install -r "$here/{REQUIREMENTS_FILE}"',
        "# nbgrader's instructor tools (Formgrader, Create Assignment, the course list) are not a student's:",
        f'"$venv/bin/jupyter" labextension disable --level=sys_prefix {" ".join(INSTRUCTOR_LAB_EXTENSIONS)}',
        *[f'"$venv/bin/jupyter" server extension disable --sys-prefix {name}'
          for name in INSTRUCTOR_SERVER_EXTENSIONS],
        'echo "Ready: $venv/bin/jupyter lab"',
    ]) + "\n"


def student_files(release_dir: Path = paths.RELEASE) -> dict[str, str]:
    """The files of the release beside the notebooks, by name."""
    return {REQUIREMENTS_FILE: student_requirements(release_dir), "student-setup.sh": student_setup_script()}


def write_student_files(release_dir: Path = paths.RELEASE) -> None:
    for name, text in student_files(release_dir).items():
        (Path(release_dir) / name).write_text(text)
