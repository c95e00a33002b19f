"""Sample submissions for demos and end-to-end tests.

Each sample is the release notebook with some answer cells filled in: the
reference answers from source/, optionally with a typical mistake edited in
(the assignment's ``mistakes.py``). Every edit must apply exactly as written,
so samples cannot drift silently from the source.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from autograder import paths
from autograder.assignment import assignments
from autograder.course.folder import Course
from autograder.judge import Assignment
from autograder.judge.notebook import is_answer, nbgrader_meta, source_text
from autograder.judge.notebook import solution_source


def _assignment(assignment: str | Assignment, source: Path) -> Assignment:
    return assignment if isinstance(assignment, Assignment) else assignments.find(assignment, source)


def sample_names(assignment: str | Assignment, source: Path) -> list[str]:
    return ["reference", "blank", *_assignment(assignment, source).mistakes]


def _apply(text: str, edits: list[tuple[str, str]], where: str) -> str:
    for old, new in edits:
        if old not in text:
            raise ValueError(f"sample edit for {where} no longer applies: {old!r} is not in the source")
        text = text.replace(old, new, 1)
    return text


def make_sample(assignment: str | Assignment, name: str, release_nb,
                source: Path | None = None) -> nbformat.NotebookNode:
    """The release notebook answered as the sample `name` would answer it.

    `assignment` is best given as the ``Assignment`` of the settings' source; a name alone (the tests') is one of
    `source`, or of the kit's own ``source/`` where none is given."""
    nb = copy.deepcopy(release_nb)
    if name == "blank":
        return nb
    spec = _assignment(assignment, source or paths.SOURCE)
    reference = nbformat.read(spec.source_notebook, as_version=4)
    answers = {nbgrader_meta(c)["grade_id"]: solution_source(source_text(c)) for c in reference.cells if is_answer(c)}
    edits = {} if name == "reference" else spec.mistakes[name]
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if is_answer(cell) and grade_id in answers:
            cell.source = _apply(answers[grade_id], edits.get(grade_id, []), f"{name}/{grade_id}")
    return nb


def write_samples(course: Course | Path, assignment: str | Assignment, source: Path) -> list[str]:
    """submitted/<sample>/<assignment>/<notebook> for every sample; returns the student ids."""
    course = Course.of(course)
    spec = _assignment(assignment, source)
    release_nb = nbformat.read(course.release_assignment(spec.name) / spec.notebook, as_version=4)
    names = sample_names(spec, source)
    for name in names:
        target = course.submission(name, spec.name) / spec.notebook
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make_sample(spec, name, release_nb), target)
    return names
