"""A grade never depends on how busy the machine is (issue 23).

Cost is judged by what a network is (parameters, activations, FLOPs per image against the lecture's), the
same on every machine; the wall clock only guards the machine. When the guard fires, the check has no
verdict: the submission is "to regrade", never a 0 for "too slow". A busy machine is simulated by giving
the training recipe a clock that runs fast (`train.time` replaced), so these tests take seconds.
"""
from __future__ import annotations

import json
import os
import time

import pytest
import torch
from torch import nn

from autograder import paths
from autograder.course import steps as course
from autograder.feedback import cells as feedback
from autograder.assignment import samples
from autograder.assignment.assignments import kit
from autograder.judge import train
from autograder.judge import Options
from autograder.judge.grade import grade_notebook, judge_in_process
from autograder.settings import Settings
from test_checks import CNN, namespace

A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"
spec = kit()[A2].module.spec   # assignment 2's reference.py
CPU = spec.ACCURACY["cpu"]


class BusyAfter:
    """`time` as the recipe reads it on a machine that gets busy once `quiet` readings are taken (the guard
    is sized on the first 12: 3 rounds of 2 networks, started and stopped): then each reading is `extra`
    seconds later than the last, as if every batch took that long."""

    def __init__(self, quiet: int, extra: float):
        self.quiet, self.extra, self.calls, self.added = quiet, extra, 0, 0.0

    def perf_counter(self) -> float:
        self.calls += 1
        if self.calls > self.quiet:
            self.added += self.extra
        return time.perf_counter() + self.added

    def __getattr__(self, name):
        return getattr(time, name)


class Slower:
    """`time` on a machine `factor` times slower from the start (every duration measured `factor` times longer)."""

    def __init__(self, factor: float):
        self.factor, self.origin = factor, time.perf_counter()

    def perf_counter(self) -> float:
        return self.origin + (time.perf_counter() - self.origin) * self.factor

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def no_testing(monkeypatch):
    """The recipe's two tests (before and after training) skipped: these tests are about its clock."""
    monkeypatch.setattr(train, "evaluate", lambda *args, **kwargs: 10.0)


def test_load_that_rises_mid_training_does_not_stop_it(monkeypatch, no_testing):
    """The issue's 13/17: busy loops started after the budget was sized stopped the reference at 407 of 469."""
    monkeypatch.setattr(train, "time", BusyAfter(quiet=12, extra=30.0))
    report = train.train_and_evaluate(spec.reference_simplecnn, CPU, seed=0, device="cpu", max_train_batches=20,
                                  settings=Settings.from_env())
    assert report.train_seconds > 590, "the simulated machine was busy: 20 batches of 30 s"


def test_the_guard_fires_only_past_its_limit_and_says_it_is_not_a_verdict(monkeypatch, no_testing):
    monkeypatch.setattr(train, "time", BusyAfter(quiet=0, extra=100.0))
    settings = Settings.from_env().replace(train_guard=150.0)
    with pytest.raises(train.GuardStopped, match=r"stopped training after 2 of 40 batches \(150 s on cpu"):
        train.train_and_evaluate(spec.reference_simplecnn, CPU, seed=0, device="cpu", max_train_batches=40,
                                 settings=settings)


def _within_the_limits() -> nn.Module:
    """Inside the cost limits (about 18× the lecture's FLOPs per image, under the 20× limit): it is trained."""
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 1280, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(1280 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


COSTLY = {CNN: [("nn.Conv2d(32, 64, kernel_size=3, padding=1)", "nn.Conv2d(32, 1024, kernel_size=5, padding=2)"),
                ("nn.Linear(64 * 7 * 7, 128)", "nn.Linear(1024 * 7 * 7, 128)")]}  # about 40× the lecture's FLOPs


def test_cost_is_judged_by_the_network_the_same_on_a_quiet_and_a_busy_machine(monkeypatch, no_testing):
    quiet = judge_in_process(A2, namespace(A2, COSTLY), {"accuracy"}, Options.of(Settings.build(), profile="cpu"))[0]
    # a network within the limits is trained on a machine 20 times slower (a 90 s budget refused it there)
    monkeypatch.setattr(train, "time", Slower(20.0))
    train.train_and_evaluate(_within_the_limits, CPU, seed=0, device="cpu", max_train_batches=2,
                             settings=Settings.build())
    busy = judge_in_process(A2, namespace(A2, COSTLY), {"accuracy"}, Options.of(Settings.build(), profile="cpu"))[0]
    assert quiet.score == busy.score == 0
    assert quiet.message == busy.message and "MFLOPs per image" in quiet.message, (quiet.message, busy.message)


@pytest.mark.slow
def test_the_reference_whose_guard_fires_is_to_regrade_not_zero(monkeypatch, tmp_path):
    """The issue's "Done when", with a guard of 0.01 s standing in for a machine made very busy mid-grading.
    Nothing trained before may answer for it: not this process's memo (earlier tests trained the reference),
    not an accuracy cache."""
    from autograder.assignment.assignments import kit

    accuracy_check = next(c for c in kit()[A2].checks if c.id == "accuracy")
    from autograder.judge import accuracy as accuracy_module
    monkeypatch.setattr(accuracy_module, "_TRAINED", {})
    settings = Settings.from_env().replace(train_guard=0.01, accuracy_cache=tmp_path / "accuracy-cache")
    notebook = paths.KIT / "solutions" / A2 / "simplecnn_mnist.ipynb"
    report = grade_notebook(notebook, A2, Options.of(settings))
    accuracy = next(r for r in report.results if r.check == "accuracy")
    assert accuracy.regrade and "wall-clock guard" in accuracy.regrade, accuracy
    assert report.to_regrade == [f"accuracy: {accuracy.regrade}"]
    assert "TO REGRADE accuracy" in report.table() and "REGR" in report.table()
    assert not any("flagged for review" in flag for flag in report.flags), report.flags
    assert all(r.passed for r in report.results if r.check != "accuracy"), report.table()
    assert json.loads(json.dumps(report.to_json()))["to_regrade"] == report.to_regrade
    # nbgrader's gradebook meanwhile: the cell scores 0 (an error output) and says it is to be regraded
    outputs = feedback.verdict_outputs([accuracy])
    assert outputs[-1].output_type == "error" and "to regrade" in outputs[-1].evalue


# --- autograde: retried at the end of the run; --regrade grades exactly those -------------------------

@pytest.fixture
def a1_course(tmp_path):
    root = course.prepare_course(tmp_path / "course", [A1], paths.SOURCE)
    assert course.nbgrader_api(root).generate_assignment(A1, force=True, create=True)["success"]
    samples.write_samples(root, A1, paths.SOURCE)
    return root


def _fake_grading(root, no_verdict: dict[str, int], order: list[str]):
    """course._grade_one writing a kit report: students in `no_verdict` get none that many times."""
    def grade(api, where, student, assignment):
        order.append(student)
        missing = no_verdict.get(student, 0) > 0
        no_verdict[student] = no_verdict.get(student, 0) - 1
        report = {"assignment": assignment, "score": 3 if missing else 4, "points": 4, "results": [], "flags": [],
                  "to_regrade": ["accuracy: the machine's wall-clock guard stopped training"] if missing else []}
        course.report_path(where, student, assignment).parent.mkdir(parents=True, exist_ok=True)
        course.report_path(where, student, assignment).write_text(json.dumps(report))
        return "graded"
    return grade


def test_autograde_retries_a_submission_without_verdict_after_the_others(monkeypatch, a1_course):
    students = course.students(a1_course, A1)
    first, stubborn = students[0], students[1]
    order: list[str] = []
    monkeypatch.setattr(course, "_grade_one", _fake_grading(a1_course, {first: 1, stubborn: 5}, order))
    outcomes = course.autograde(a1_course, A1, source=paths.SOURCE, progress=False)
    assert order == [*students, first, stubborn], "retried once each, after every other submission"
    assert outcomes[first] == "graded"
    assert outcomes[stubborn].startswith("to regrade: accuracy: the machine's wall-clock guard")
    assert course.score_of(a1_course, stubborn, A1) == "3/4 (to regrade)"


@pytest.mark.slow
def test_regrade_grades_exactly_the_flagged_and_failed_and_shows_the_change(a1_course, capsys):
    from autograder.__main__ import main

    outcomes = course.autograde(a1_course, A1, source=paths.SOURCE, progress=False)
    assert set(outcomes.values()) == {"graded"}, outcomes
    flagged, failed = "reference", "blank"
    report_file = course.report_path(a1_course, flagged, A1)
    stored = json.loads(report_file.read_text())
    full = stored["score"]
    stored.update(score=full - 1, to_regrade=["accuracy: the machine's wall-clock guard stopped training"])
    report_file.write_text(json.dumps(stored))
    course._clear_scores(course.nbgrader_api(a1_course), failed, A1)  # a grading killed half-way
    assert main(["autograde", A1, "--course", str(a1_course), "--regrade"]) == 0
    out = capsys.readouterr().out
    assert "regraded 2 submission(s)" in out, out
    assert f"  {flagged}: {full - 1:g}/{stored['points']:g} (to regrade) → {full:g}/{stored['points']:g}" in out, out
    assert f"  {failed}: 0/{stored['points']:g} → 0/{stored['points']:g}" in out, out
    for other in set(course.students(a1_course, A1)) - {flagged, failed}:
        assert f"{A1}  {other}: skipped (nothing to regrade)" in out, out
    assert not course.to_regrade(a1_course, flagged, A1)


# --- student processes run below the grader -------------------------------------------------------

STUDENT_NICE = 10  # autograder.sandbox.priority.STUDENT_NICE
PRIORITY = "import os\ndef priority():\n    return os.nice(0)\n"


def test_the_probes_process_runs_below_the_grader():
    from autograder.sandbox import runner as sandbox

    run = sandbox.run_probes([{"id": "answer", "source": PRIORITY}],
                             [{"id": "p", "kind": "calls", "args": {"name": "priority", "calls": [{}]}}],
                             sandbox.Limits(), bwrap=Settings.from_env().sandbox)
    assert run.probes["p"].error is None, run.probes["p"].error
    nice = run.probes["p"].data["results"][0]["value"]
    assert nice == STUDENT_NICE and os.nice(0) < nice, (nice, os.nice(0))


def test_the_notebooks_kernel_runs_below_the_grader(tmp_path):
    import nbformat

    from autograder.course.nbgrader_hook import SafeExecute

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PRIORITY + "print(priority())")])
    SafeExecute(timeout=120).preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    printed = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert printed.strip() == str(STUDENT_NICE), nb.cells[0].outputs


@pytest.mark.slow
def test_a_class_run_retries_at_the_end_and_lists_to_regrade(tmp_path):
    """On Dask (2 workers): a reference whose guard fires is graded again once the rest is done, then listed."""
    from autograder.course import classgrade

    root = course.prepare_course(tmp_path / "course", [A2], paths.SOURCE)
    assert course.nbgrader_api(root).generate_assignment(A2, force=True, create=True)["success"]
    samples.write_samples(root, A2, paths.SOURCE)
    for student in set(course.students(root, A2)) - {"reference", "blank"}:
        import shutil

        shutil.rmtree(root / "submitted" / student)
    settings = Settings.from_env().replace(course=root, train_guard=0.01)
    summary = classgrade.grade_class(settings, A2, workers=2, progress=False)
    assert set(summary.to_regrade) == {"reference"}, summary.lines()
    assert summary.outcomes["reference"].startswith("to regrade: accuracy:"), summary.outcomes
    assert summary.outcomes["blank"] == "graded" and "reference" not in summary.failed
    assert any(line.startswith("  TO REGRADE reference:") for line in summary.lines()), summary.lines()
    assert course.score_of(root, "reference", A2).endswith("(to regrade)")
