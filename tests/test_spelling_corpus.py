"""The spelling corpus (tests/spelling_corpus.py), graded: each case loses exactly the checks it names.

A case replaces whole answer cells of the source notebook; the notebook's set-up cells and every other answer
(the reference's) run in order, as in a student's kernel. Judged in process, accuracy off (the grader's
training is covered by test_spellings.py's slow tests).
"""
from __future__ import annotations

import nbformat
import pytest

from autograder import paths
from autograder.assignments import kit
from autograder.judge.grade import judge_in_process
from autograder.notebook import is_answer, is_setup, nbgrader_meta, source_text
from autograder.release import solution_source

from spelling_corpus import A1, A2, CASES

UNTRAINED = {A1: None, A2: {c.id for c in kit()[A2].checks} - {"accuracy"}}


def answered(assignment: str, cells: dict[str, str]) -> dict:
    """The namespace of the notebook run in order: set-up cells, then each answer cell, the one in `cells`
    where it has one, else the reference's."""
    spec = kit()[assignment]
    nb = nbformat.read(paths.source_notebook(assignment, spec.notebook), as_version=4)
    ns = {"__name__": "__main__"}
    known = set()
    for cell in nb.cells:
        if is_setup(cell):
            exec(source_text(cell), ns)
        elif is_answer(cell):
            gid = nbgrader_meta(cell)["grade_id"]
            known.add(gid)
            exec(cells.get(gid, solution_source(source_text(cell))), ns)
    assert set(cells) <= known, f"no answer cells {set(cells) - known} in {assignment}"
    return ns


def verdicts(assignment: str, cells: dict[str, str]) -> dict:
    results = judge_in_process(assignment, answered(assignment, cells), UNTRAINED[assignment])
    return {r.check: r for r in results}


def assert_loses_exactly(results: dict, losing: set, label: str = "") -> None:
    """Every check outside `losing` keeps all its points; every check in it loses some."""
    lost = {k for k, r in results.items() if r.score < r.points}
    messages = {k: f"{r.score}/{r.points}: {r.message}" for k, r in results.items() if k in lost | set(losing)}
    assert lost == set(losing), f"{label} lost {sorted(lost)}, expected {sorted(losing)}: {messages}"


def test_corpus_is_large_and_cited():
    assert len(CASES) >= 40
    assert all(case.source for case in CASES.values())
    assert sum(not case.loses for case in CASES.values()) >= 20        # correct spellings
    assert sum(bool(case.loses) for case in CASES.values()) >= 15      # single mistakes
    for name, case in CASES.items():
        assert not case.loses or case.why, f"{name}: a mistake says the lecture's reason"


@pytest.mark.parametrize("name", CASES)
def test_corpus_case(name):
    case = CASES[name]
    results = verdicts(case.assignment, case.cells())
    checks = UNTRAINED[case.assignment] or {c.id for c in kit()[case.assignment].checks}
    assert set(results) == checks
    assert case.loses <= checks, f"unknown checks {case.loses - checks}"
    assert_loses_exactly(results, case.loses, name)
