"""End to end: nbgrader generate_assignment → sample submissions → autograde → feedback → export."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autograder import paths
from autograder.course import steps as course
from autograder.assignment import release
from autograder.assignment import samples
from conftest import new_course  # noqa: F401  (test_browser imports it from here too)
from autograder.assignment.assignments import kit

pytestmark = pytest.mark.slow
A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"


def scores(root):
    with open(root / "grades.csv", newline="") as handle:
        return {(r["assignment"], r["student_id"]): (float(r["score"]), float(r["max_score"]))
                for r in csv.DictReader(handle)}


def report(root, assignment, student):
    return json.loads(course.report_path(root, student, assignment).read_text())


def test_every_submission_is_graded(graded):
    root, outcomes = graded
    for name, by_student in outcomes.items():
        assert by_student == {s: "graded" for s in samples.sample_names(name, paths.SOURCE)}


def test_reference_full_marks_blank_zero(graded):
    root, _ = graded
    table = scores(root)
    for name in (A1, A2):
        points = kit()[name].total_points
        assert table[(name, "reference")] == (points, points), report(root, name, "reference")
        assert table[(name, "blank")] == (0.0, points)


@pytest.mark.parametrize("assignment, student, words", [
    (A1, "mistake-no-dilation-same-padding", ["without dilation", "mat1 and mat2"]),
    (A1, "mistake-groups-unfrozen", ["groups", "still train"]),
    (A2, "mistake-no-padding", ["padding=1", "26×26"]),
    (A2, "mistake-softmax-no-zero-grad", ["CrossEntropyLoss expects raw logits", "optimizer.zero_grad()"]),
    (A2, "mistake-flatten-32-channels", ["1568 = 32 × 7 × 7"]),
])
def test_mistakes_get_partial_scores_naming_the_mistake(graded, assignment, student, words):
    root, _ = graded
    score, points = scores(root)[(assignment, student)]
    assert 0 < score < points
    messages = " | ".join(r["message"] for r in report(root, assignment, student)["results"])
    for word in words:
        assert word in messages, messages


def test_accuracy_result_states_device_profile_epochs_seconds(graded):
    root, _ = graded
    accuracy = next(r for r in report(root, A2, "reference")["results"] if r["check"] == "accuracy")
    assert accuracy["score"] == accuracy["points"], accuracy["message"]
    details = accuracy["details"]
    assert {"device", "profile", "epochs", "seconds", "accuracy"} <= set(details)
    assert details["accuracy"] >= details["threshold"]


def test_feedback_has_verdicts_but_no_hidden_tests(graded):
    root, _ = graded
    pages = list((root / "feedback").rglob("*.html"))
    assert len(pages) == len(samples.sample_names(A1, paths.SOURCE)) + len(samples.sample_names(A2, paths.SOURCE))
    for page in pages:
        text = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "grade_cell(" not in text
    assert "padding=1" in (root / "feedback/mistake-no-padding" / A2 / "simplecnn_mnist.html").read_text()
    assert not list((root / "feedback").rglob("*.json")), "the kit's reports stay out of feedback"


def test_killed_batch_resumes_with_one_grade_per_student(tmp_path):
    root = new_course(tmp_path / "course", [A1])
    command = [sys.executable, "-m", "autograder", "autograde", A1, "--course", str(root)]
    first = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((root / "reports" / A1).glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # mid-batch: one student done, the next one in progress
    first.wait()
    # "graded" is the gradebook's word, not a file's: a report without saved scores is graded again
    done_before = {s for s in samples.sample_names(A1, paths.SOURCE) if course.is_graded(root, s, A1)}
    assert len(done_before) < 4
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for student in samples.sample_names(A1, paths.SOURCE):
        expected = "skipped (already graded)" if student in done_before else "graded"
        assert f"{student}: {expected}" in rerun.stdout, rerun.stdout
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submissions = gb.assignment_submissions(A1)
        assert sorted(s.student.id for s in submissions) == sorted(samples.sample_names(A1, paths.SOURCE))
        by_student = {s.student.id: s.score for s in submissions}
    assert by_student["reference"] == kit()[A1].total_points and by_student["blank"] == 0


HOSTILE = {
    # an answer cell that kills the kernel while nbgrader runs the notebook
    "kernel-killer": ("conv2d_out_answer", "import os\nos._exit(1)\n"),
    # an answer cell that never returns in the kernel (nbgrader's cell timeout interrupts it)
    "kernel-hog": ("pool2d_out_answer", "while True:\n    pass\n"),
    # patches torch in the kernel and prints a fake verdict: the kit's verdicts come from outside
    "kernel-patcher": ("param_counts_answer",
                       "import torch.nn as nn\nnn.Module.parameters = lambda self, recurse=True: iter(())\n"
                       "print('✓ all checks passed (17/17)')\n"),
}


def test_hostile_notebooks_under_nbgrader_autograde(tmp_path, monkeypatch):
    import nbformat

    from autograder.judge.notebook import nbgrader_meta

    monkeypatch.setenv("CNN_KIT_CELL_TIMEOUT", "20")
    monkeypatch.setenv("CNN_KIT_LOAD_SECONDS", "15")
    root = new_course(tmp_path / "course", [A1])
    reference = root / "submitted" / "reference" / A1 / kit()[A1].notebook
    for student, (cell_id, code) in HOSTILE.items():
        nb = nbformat.read(reference, as_version=4)
        cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == cell_id)
        cell.source = code + cell.source
        target = root / "submitted" / student / A1 / reference.name
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)
    outcomes = course.autograde(root, A1, source=paths.SOURCE, progress=False)
    assert set(outcomes.values()) == {"graded"}, outcomes
    course.export(root)
    table = scores(root)
    full = kit()[A1].total_points
    assert table[(A1, "reference")] == (full, full)
    def result(student, check):
        return next(r for r in report(root, A1, student)["results"] if r["check"] == check)

    # the killer's os._exit ends the kernel and, in the sandbox, its own cell only: the rest is graded
    killer = report(root, A1, "kernel-killer")
    assert 0 < killer["score"] < full and result("kernel-killer", "conv2d_out")["score"] == 0
    assert "without this cell" in result("kernel-killer", "conv2d_out")["message"]
    assert any("kernel failed" in f or "os._exit" in f for f in killer["flags"]), killer["flags"]
    # the hog's endless loop is stopped in the kernel and in the sandbox; only its cell scores 0
    hog = report(root, A1, "kernel-hog")
    assert hog["score"] == full - 1 and "without finishing" in result("kernel-hog", "pool2d_out")["message"]
    patcher = report(root, A1, "kernel-patcher")
    assert patcher["score"] < full and any("patched" in f for f in patcher["flags"])
    assert table[(A1, "kernel-patcher")][0] == patcher["score"]
