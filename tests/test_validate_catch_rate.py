"""How many mistakes a student learns about before submitting: the share of the kit's one-property mistakes
that Validate flags, and the correct spellings it flags (none).

Every mistake of the kit (the spelling corpus's wrong cases, each assignment's `mistakes.py`, the generated
one-property mutations of tests/test_generated_spellings.py, and the issue's named ones) is put into the
release notebook; the notebook's visible tests run as `nbgrader validate` runs them (every code cell in order,
errors kept, a graded cell that raises fails), in this process. Assignment 2's data, training and plotting
cells are left out (the accuracy cell's visible test in quick mode only asks that they ran); the real
`nbgrader validate` runs a few of them end to end below, and agrees.

Which mistakes cost points is the grader's verdict, asserted for each of them by its own test (the corpus's
`loses` in test_spelling_corpus.py, the mutations' in test_generated_spellings.py, the samples' scores in
test_first_run.py); the issue's own mistake that no other test grades (a missing nn.Flatten) is graded here.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import paths
from autograder.assignment.assignments import kit
from autograder.judge.notebook import is_answer, nbgrader_meta, source_text
from autograder.judge.notebook import solution_source
from autograder.assignment.samples import make_sample

import test_generated_spellings as generated
from spelling_corpus import A1, A2, CASES, CNN

TARGET_CATCH_RATE = 0.80
# Assignment 2's cells that load MNIST, train, plot, or need the training (the accuracy cell): not run here.
NOT_RUN = {A2: {"data", "train_run", "loss_plot", "test_run", "confusion_matrix", "conv_filters", "feature_maps",
                "model_summary", "test_mnist_accuracy"}, A1: set()}
FLATTEN = "            nn.Flatten(),\n"


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a key of the measurements
class Answer:
    name: str
    assignment: str
    cells: dict        # grade_id -> the whole answer cell; every other answer is the reference's
    costs: bool        # the grader takes points for it


def _reference_answers(assignment: str) -> dict:
    nb = nbformat.read(kit()[assignment].source_notebook, as_version=4)
    return {nbgrader_meta(c)["grade_id"]: solution_source(source_text(c)) for c in nb.cells if is_answer(c)}


def _release(assignment: str):
    return nbformat.read(paths.RELEASE / assignment / kit()[assignment].notebook, as_version=4)


def _sample(assignment: str, name: str) -> dict:
    nb = make_sample(assignment, name, _release(assignment))
    return {nbgrader_meta(c)["grade_id"]: source_text(c) for c in nb.cells if is_answer(c)}


def answers() -> list[Answer]:
    """Every answer of the kit with its verdict: mistakes (costs=True) and correct spellings."""
    found = [Answer(f"corpus {name}", case.assignment, case.cells(), bool(case.loses)) for name, case in CASES.items()]
    for assignment, spec in kit().items():
        found += [Answer(f"sample {name}", assignment, _sample(assignment, name), True) for name in spec.mistakes]
    loop, evaluation, reference = generated.Loop(), generated.Evaluation(), generated.REFERENCE
    for mutation in generated.MUTATIONS:
        arch, loop_m, evaluation_m, _ = generated.mutated(mutation, loop, evaluation)
        found.append(Answer(f"mutation {mutation}", A2, {
            generated.CNN: generated.render_network(arch, reference), generated.TRAIN: generated.render_train(loop_m),
            generated.EVAL: generated.render_evaluate(evaluation_m)}, True))
    for name, (spelling, loop_s, evaluation_s) in generated.SINGLE_CHOICES.items():
        found.append(Answer(f"spelling {name}", A2, {
            generated.CNN: generated.render_network(generated.Arch(), spelling),
            generated.TRAIN: generated.render_train(loop_s), generated.EVAL: generated.render_evaluate(evaluation_s)},
            False))
    found += [Answer(f"keras mutation {m}", A1, generated.keras_cells(generated.KERAS_REFERENCE, m), True)
              for m in generated.KERAS_MUTATIONS]
    found.append(Answer("keras spelling reference", A1, generated.keras_cells(generated.KERAS_REFERENCE), False))
    found += [Answer(name, assignment, cells, True) for name, (assignment, cells) in named_mistakes().items()]
    return found


def named_mistakes() -> dict:
    """The issue's own examples that are in no other list: a missing nn.Flatten()."""
    network = _reference_answers(A2)[CNN]
    assert FLATTEN in network
    return {"issue missing nn.Flatten()": (A2, {CNN: network.replace(FLATTEN, "", 1)})}


def visible_failures(assignment: str, cells: dict) -> dict:
    """{graded cell: its error} when the release notebook, answered with `cells` (else the reference's
    answers), runs as `nbgrader validate` runs it: every code cell in order, errors kept."""
    reference = _reference_answers(assignment)
    namespace, failed = {"__name__": "__main__"}, {}
    for cell in _release(assignment).cells:
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if cell.cell_type != "code" or grade_id in NOT_RUN[assignment]:
            continue
        code = cells.get(grade_id, reference.get(grade_id)) if is_answer(cell) else source_text(cell)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(code, f"<{grade_id}>", "exec"), namespace)
        except Exception as error:  # noqa: BLE001 - as validate: the error is the cell's output
            if meta.get("grade"):
                failed[grade_id] = f"{type(error).__name__}: {error}"
    return failed


@pytest.fixture(scope="module")
def measured() -> dict:
    return {answer: visible_failures(answer.assignment, answer.cells) for answer in answers()}


def catch_rate(measured: dict) -> tuple[list, list, list]:
    """(mistakes that cost points, those Validate flags, correct spellings Validate flags)."""
    costly = [a for a in measured if a.costs]
    flagged = [a for a in costly if measured[a]]
    false_alarms = [a for a in measured if not a.costs and measured[a]]
    return costly, flagged, false_alarms


def test_validate_flags_most_mistakes_and_no_correct_spelling(measured):
    costly, flagged, false_alarms = catch_rate(measured)
    correct = [a for a in measured if not a.costs]
    missed = sorted(a.name for a in costly if a not in flagged)
    print(f"\nValidate flags {len(flagged)} of {len(costly)} point-costing one-property mistakes "
          f"({100 * len(flagged) / len(costly):.0f} %), and {len(false_alarms)} of {len(correct)} correct spellings."
          f"\nNot flagged: {missed}")
    assert len(costly) >= 60 and len(correct) >= 60
    assert not false_alarms, {a.name: measured[a] for a in false_alarms}
    assert len(flagged) / len(costly) >= TARGET_CATCH_RATE, missed


def test_the_blank_notebooks_fail_and_the_references_pass():
    for assignment in kit():
        assert not visible_failures(assignment, {}), assignment
        blank = {nbgrader_meta(c)["grade_id"]: source_text(c) for c in _release(assignment).cells if is_answer(c)}
        assert visible_failures(assignment, blank), assignment


# The issue's four, each a one-property mistake: each fails Validate, in the graded cell of its property, with
# the lecture's hint.
NAMED = {
    "issue missing nn.Flatten()": ("test_simplecnn_shapes", "Did you flatten before the first Linear?"),
    "mutation softmax at the end": ("test_simplecnn_parameters", "CrossEntropyLoss expects raw logits"),
    "corpus conv2d-out-without-dilation": ("test_conv2d_out", "d·(k − 1) + 1"),
    "corpus conv2d-params-ignores-groups": ("test_parameter_counts", "depth-wise"),
}


@pytest.mark.parametrize("name", NAMED)
def test_the_issues_mistakes_fail_with_the_lectures_hint(name, measured):
    answer = next(a for a in measured if a.name == name)
    cell, hint = NAMED[name]
    assert cell in measured[answer] and hint in measured[answer][cell], measured[answer]


def test_a_missing_flatten_costs_points():
    from test_spelling_corpus import verdicts

    assignment, cells = named_mistakes()["issue missing nn.Flatten()"]
    results = verdicts(assignment, cells)
    assert sum(r.score for r in results.values()) < sum(r.points for r in results.values())


def test_the_accuracy_minimum_is_the_calibrated_one():
    """The accuracy cell states the profiles' calibrated minimums (`cnn-kit release` writes the line)."""
    from autograder.assignment.assignments import kit
    from autograder.assignment.release import minimum_line

    text = "".join(source_text(c) for c in _release(A2).cells)
    assert minimum_line(kit()[A2].module.ACCURACY) in text


def _validate(notebook: Path) -> str:
    run = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(notebook)], capture_output=True,
                         text=True, timeout=600, cwd=notebook.parent, env={**os.environ, "CNN_KIT_QUICK": "1"})
    return run.stdout + run.stderr


# One per assignment by default (assignment 2's validate trains in quick mode: about half a minute); all four slow.
REAL_VALIDATE = ["issue missing nn.Flatten()", "corpus conv2d-out-without-dilation"]


@pytest.mark.parametrize("name", [name if name in REAL_VALIDATE else pytest.param(name, marks=pytest.mark.slow)
                                  for name in NAMED])
def test_nbgrader_validate_agrees(name, tmp_path):
    """The real `nbgrader validate` on the issue's four mistakes: it fails, with the lecture's hint."""
    answer = next(a for a in answers() if a.name == name)
    nb = _release(answer.assignment)
    reference = _reference_answers(answer.assignment)
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if is_answer(cell):
            cell.source = answer.cells.get(grade_id, reference[grade_id])
    notebook = tmp_path / kit()[answer.assignment].notebook
    nbformat.write(nb, notebook)
    output = _validate(notebook)
    cell, hint = NAMED[name]
    assert "Success! Your notebook passes all the tests." not in output, output[-3000:]
    assert hint in output, output[-3000:]
