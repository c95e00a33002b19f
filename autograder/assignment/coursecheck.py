"""`cnn-kit check-course`: is the course repository releasable? One verdict per notebook, and an exit code.

For every assignment in source/:

- **drift**: the committed ``release/`` is what nbgrader ``generate_assignment`` makes from ``source/`` now,
  and ``solutions/`` is what ``cnn-kit release`` makes (cell types, sources and nbgrader metadata);
- **solutions**: each reference solution gets full marks from the grader (accuracy check included, with
  the chosen profile);
- **release**: each blank release notebook scores exactly zero (without training: a blank has no network).

Exit status 0 when every check holds, 1 when one does not, so CI can rely on it (``nbgrader validate``
exits 0 on failure, nbgrader #1908). The same comparisons as tests/test_release.py and
tests/test_solutions.py, from release.py and judge/grade.py.
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import paths
from autograder.assignment import release
from autograder.judge import Options
from autograder.settings import Settings


@dataclass
class Finding:
    ok: bool
    kind: str          # drift | solutions | release
    notebook: str      # shown relative to the folder it lives in
    message: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.kind:<9} {self.notebook}: {self.message}"


def _notebooks(assignment: str, source: Path) -> list[str]:
    return [p.name for p in sorted((source / assignment).glob("*.ipynb"))]


def _drift(assignment: str, name: str, committed: Path, expected, label: str) -> Finding:
    if not committed.is_file():
        return Finding(False, "drift", label, "missing: run `cnn-kit release`")
    old = release.comparable(nbformat.read(committed, as_version=4))
    new = release.comparable(expected)
    for index, (a, b) in enumerate(zip(old, new)):
        if a != b:
            return Finding(False, "drift", label, f"cell {index} differs from what source/ generates: "
                                                  "run `cnn-kit release`")
    if len(old) != len(new):
        return Finding(False, "drift", label, f"{len(old)} cells, source/ generates {len(new)}: run `cnn-kit release`")
    return Finding(True, "drift", label, "as generated from source/")


def _score(report) -> str:
    return f"{report.score:g}/{report.points:g}"


def check_course(assignments: list[str] | None = None, release_dir: Path | None = None,
                 solutions_dir: Path | None = None, settings: Settings | None = None,
                 on_finding=None) -> list[Finding]:
    from autograder.judge.grade import grade_notebook

    options = Options.of(settings or Settings.from_env())
    source = Path(options.settings.source)   # release/ and solutions/ beside it, as `cnn-kit release` writes them
    release_dir = Path(release_dir or source.parent / paths.RELEASE.name)
    solutions_dir = Path(solutions_dir or source.parent / paths.SOLUTIONS.name)
    names = assignments or release.assignments(source)
    findings: list[Finding] = []

    def add(finding: Finding) -> None:
        findings.append(finding)
        if on_finding:
            on_finding(finding)

    with tempfile.TemporaryDirectory(prefix="cnn-kit-check-") as tmp:
        fresh = release.generate_release(Path(tmp), names, source)
        for assignment in names:
            for name in _notebooks(assignment, source):
                add(_drift(assignment, name, release_dir / assignment / name,
                           nbformat.read(fresh / assignment / name, as_version=4), f"release/{assignment}/{name}"))
                written = nbformat.read(source / assignment / name, as_version=4)
                add(_drift(assignment, name, solutions_dir / assignment / name, release.solution_notebook(written),
                           f"solutions/{assignment}/{name}"))
    for assignment in names:
        for name in _notebooks(assignment, source):
            label = f"solutions/{assignment}/{name}"
            notebook = solutions_dir / assignment / name
            if notebook.is_file():
                report = grade_notebook(notebook, assignment, options)
                lost = [f"{r.check}: {r.message}" for r in report.results if not r.passed]
                add(Finding(not lost and report.error is None, "solutions", label,
                            f"{_score(report)}" + (" (full marks)" if not lost else "; " + " | ".join(lost)[:1500])))
            label = f"release/{assignment}/{name}"
            notebook = release_dir / assignment / name
            if notebook.is_file():
                report = grade_notebook(notebook, assignment, dataclasses.replace(options, accuracy=False))
                scored = [f"{r.check} {r.score:g}: {r.message}" for r in report.results if r.score > 0]
                add(Finding(not scored, "release", label, "0 (blank)" if not scored else
                            f"the blank notebook scores {_score(report)}: " + " | ".join(scored)[:1500]))
    return findings
