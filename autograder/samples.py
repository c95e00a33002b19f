"""Sample submissions for demos and end-to-end tests.

Each sample is the release notebook with some answer cells filled in: the
reference answers from source/, optionally with a typical mistake edited in.
Every edit must apply exactly as written, so samples cannot drift silently
from the source.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from . import paths
from .grade import ASSIGNMENTS
from .notebook import is_answer, nbgrader_meta, source_text
from .release import solution_source

# sample name -> {answer cell grade_id -> [(old, new), ...]}; None leaves the release blank.
MISTAKES = {
    "a1_sizes_and_params": {
        "mistake-no-dilation-same-padding": {
            "conv2d_out_answer": [("d * (k - 1) - 1", "k")] * 2,
            "keras_models_answer": [('nn.Conv2d(3, 32, 3, padding="same")', "nn.Conv2d(3, 32, 3)")],
        },
        "mistake-groups-unfrozen": {
            "param_counts_answer": [("(k * k * (c_in // groups) + (1 if bias else 0)) * c_out",
                                     "k * k * c_in * c_out + c_out")],
            "transfer_answer": [("        parameter.requires_grad = False\n", "        pass\n")],
        },
    },
    "a2_simplecnn_mnist": {
        "mistake-no-padding": {
            "simplecnn_answer": [("nn.Conv2d(1, 32, kernel_size=3, padding=1)", "nn.Conv2d(1, 32, kernel_size=3)"),
                                 ("nn.Conv2d(32, 64, kernel_size=3, padding=1)", "nn.Conv2d(32, 64, kernel_size=3)"),
                                 ("nn.Linear(64 * 7 * 7, 128)", "nn.Linear(64 * 5 * 5, 128)")],
        },
        "mistake-flatten-32-channels": {
            "simplecnn_answer": [("nn.Linear(64 * 7 * 7, 128)", "nn.Linear(32 * 7 * 7, 128)")],
        },
        "mistake-softmax-no-zero-grad": {
            "simplecnn_answer": [("nn.Linear(128, 10),\n", "nn.Linear(128, 10),\n            nn.Softmax(dim=1),\n")],
            "train_answer": [("        optimizer.zero_grad()\n", "")],
        },
    },
}


# What each mistake sample scores under full grading (accuracy measured): the checks it breaks, no more.
EXPECTED_SCORES = {
    "a1_sizes_and_params": {
        "mistake-no-dilation-same-padding": 15,  # conv2d_out partial (1 of 2), conv2d_same_model 0/1
        "mistake-groups-unfrozen": 13,           # conv2d_params 0/2, transfer_frozen 0/1, transfer_head 0/1
    },
    "a2_simplecnn_mnist": {
        "mistake-no-padding": 13,                # features 0/2, parameters 0/2 (the classifier fits its features)
        "mistake-flatten-32-channels": 7,        # output_shape, classifier, parameters 0/2; accuracy 0/4 (no logits)
        "mistake-softmax-no-zero-grad": 8,       # classifier, logits, train_one_epoch, accuracy (97.8 %)
    },
}


def sample_names(assignment: str) -> list[str]:
    return ["reference", "blank", *MISTAKES[assignment]]


def _apply(text: str, edits: list[tuple[str, str]], where: str) -> str:
    for old, new in edits:
        if old not in text:
            raise ValueError(f"sample edit for {where} no longer applies: {old!r} is not in the source")
        text = text.replace(old, new, 1)
    return text


def make_sample(assignment: str, name: str, release_nb) -> nbformat.NotebookNode:
    """The release notebook answered as the sample `name` would answer it."""
    nb = copy.deepcopy(release_nb)
    if name == "blank":
        return nb
    spec = ASSIGNMENTS[assignment]
    source = nbformat.read(paths.source_notebook(assignment, spec.notebook), as_version=4)
    answers = {nbgrader_meta(c)["grade_id"]: solution_source(source_text(c)) for c in source.cells if is_answer(c)}
    edits = {} if name == "reference" else MISTAKES[assignment][name]
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if is_answer(cell) and grade_id in answers:
            cell.source = _apply(answers[grade_id], edits.get(grade_id, []), f"{name}/{grade_id}")
    return nb


def write_samples(course: Path, assignment: str) -> list[str]:
    """submitted/<sample>/<assignment>/<notebook> for every sample; returns the student ids."""
    spec = ASSIGNMENTS[assignment]
    release_nb = nbformat.read(course / "release" / assignment / spec.notebook, as_version=4)
    names = sample_names(assignment)
    for name in names:
        target = course / "submitted" / name / assignment / spec.notebook
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make_sample(assignment, name, release_nb), target)
    return names
