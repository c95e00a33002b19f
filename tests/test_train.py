"""Tests for autograder.judge.train, .recipe and .calibrate: the accuracy check's training recipe, an
assignment's profiles and their calibration (on assignment 2's recipe, MNIST)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from autograder.assignment.assignments import kit
from autograder.judge import calibrate, recipe, train
from autograder.judge.recipe import AccuracyReport, select_profile
from autograder.judge.train import evaluate, train_and_evaluate
from autograder.settings import Settings

A2 = kit()["a2_simplecnn_mnist"]
PROFILES = A2.module.ACCURACY
CPU = PROFILES["cpu"]
MNIST = CPU.dataset
reference_simplecnn = MNIST.reference
SETTINGS = Settings.from_env()   # this test module is an edge: MNIST from CNN_KIT_MNIST
CALIBRATION_DIR = A2.folder / "calibration"


# --- profiles -------------------------------------------------------------------------


def test_select_profile_by_name():
    assert select_profile(PROFILES, "cpu") is PROFILES["cpu"]
    assert select_profile(PROFILES, "gpu") is PROFILES["gpu"]


def test_select_profile_default_follows_cuda(monkeypatch):
    assert select_profile(PROFILES, cuda=False).name == "cpu"
    assert select_profile(PROFILES, cuda=True).name == "gpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_profile(PROFILES).name == "gpu"


def test_select_profile_unknown_name():
    with pytest.raises(ValueError, match=r"'tpu'.*cpu, gpu"):
        select_profile(PROFILES, "tpu")


def test_the_recipe_is_the_assignments():
    """The data set and budgets are assignment 2's, in its folder; the core names no data set."""
    assert (MNIST.name, MNIST.classes, MNIST.input_shape) == ("MNIST", 10, (1, 28, 28))
    assert all(profile.dataset is MNIST for profile in PROFILES.values())
    assert CPU.plain()["dataset"] == "MNIST" and json.dumps(CPU.plain())


def test_report_describe_and_passed():
    report = AccuracyReport(device="cpu", profile="cpu", epochs=1, seed=0, seconds=27.84,
                            accuracy=99.02, accuracy_before=9.8, threshold=98.0)
    assert report.passed
    assert report.describe() == "99.02 % on cpu (profile cpu, 1 epoch, seed 0) in 27.8 s; needs >= 98.0 %"
    report.accuracy = 97.99
    assert not report.passed


# --- training and evaluation (a few batches only) -----------------------------------------


def _run(seed, batches):
    """A short run of the CPU profile; returns the report and the trained model's weights."""
    models = []

    def build():
        models.append(reference_simplecnn())
        return models[-1]

    report = train_and_evaluate(build, CPU, seed=seed, device="cpu", max_train_batches=batches, settings=SETTINGS)
    return report, models[0].state_dict()


@pytest.fixture(scope="module")
def short_run():
    return _run(seed=3, batches=20)


def test_same_seed_same_result(short_run):
    (first, weights_a), (second, weights_b) = short_run, _run(seed=3, batches=20)
    assert first.accuracy == second.accuracy
    assert first.accuracy_before == second.accuracy_before
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name


def test_seed_changes_initial_weights(short_run):
    other, _ = _run(seed=4, batches=1)
    assert other.accuracy_before != short_run[0].accuracy_before


def test_accuracy_before_training_is_near_chance(short_run):
    report, _ = short_run
    assert 5.0 <= report.accuracy_before <= 20.0
    assert (report.device, report.profile, report.epochs, report.seed) == ("cpu", "cpu", CPU.epochs, 3)
    assert report.threshold == CPU.threshold


def test_a_few_batches_already_learn(short_run):
    report, _ = short_run
    assert report.accuracy > report.accuracy_before + 20


def _wrong_output():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 5))


def _flat_output():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Flatten(0))


# The first forward pass is the one timed before training, on train.TIMING_BATCH (64) images.
@pytest.mark.parametrize("build, got", [(_wrong_output, r"\(64, 5\)"), (_flat_output, r"\(640,\)")])
def test_wrong_output_shape_is_a_clear_error(build, got):
    with pytest.raises(ValueError, match=r"logits of shape \[N, 10\].*" + got):
        train_and_evaluate(build, CPU, seed=0, device="cpu", max_train_batches=1, settings=SETTINGS)


def test_factory_must_return_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        train_and_evaluate(lambda: "not a model", CPU, seed=0, device="cpu", max_train_batches=1, settings=SETTINGS)


class _Lookup(nn.Module):
    """No parameters at all, like a lookup table."""

    def forward(self, x):
        return torch.zeros(x.shape[0], 10)


def test_model_without_parameters_is_a_clear_error():
    with pytest.raises(ValueError, match="no trainable parameters"):
        train_and_evaluate(_Lookup, CPU, seed=0, device="cpu", max_train_batches=1, settings=SETTINGS)


class _AlwaysZero(nn.Module):
    def forward(self, x):
        logits = torch.zeros(x.shape[0], 10)
        logits[:, 0] = 1.0
        return logits


def test_evaluate_counts_exactly():
    images = torch.randint(0, 256, (37, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([0, 3, 0, 9, 0, 1, 2] * 5 + [0, 7])
    expected = 100.0 * int((labels == 0).sum()) / len(labels)
    assert evaluate(_AlwaysZero(), images, labels, "cpu", MNIST, batch_size=8) == expected
    assert evaluate(_AlwaysZero(), images, labels, "cpu", MNIST) == expected


def test_evaluate_on_mnist_test_set_and_keeps_the_mode():
    images, labels = train._data_on(MNIST, False, torch.device("cpu"), SETTINGS)
    model = _AlwaysZero().train()
    assert evaluate(model, images, labels, "cpu", MNIST) == 100.0 * int((labels == 0).sum()) / len(labels)
    assert model.training


@pytest.mark.gpu
def test_gpu_profile_runs_on_cuda():
    report = train_and_evaluate(reference_simplecnn, PROFILES["gpu"], seed=0, device="cuda",
                                max_train_batches=30, settings=SETTINGS)
    assert report.device.startswith("cuda")
    assert report.accuracy > report.accuracy_before + 20
    again = train_and_evaluate(reference_simplecnn, PROFILES["gpu"], seed=0, device="cuda", max_train_batches=30,
                                settings=SETTINGS)
    assert again.accuracy == report.accuracy  # same seed, same GPU, same accuracy


# --- calibration --------------------------------------------------------------------------


def test_threshold_rule():
    # margin max(0.3, 3 std): a tight spread keeps 0.3, then round down to a multiple of 0.1
    assert calibrate.threshold_from([98.90, 98.92, 98.94]) == 98.6
    assert calibrate.threshold_from([98.95, 98.95, 98.95, 98.96]) == 98.6
    # a wide spread: 3 std dominates
    wide = [98.0, 99.0]  # std 0.707 -> margin 2.12
    assert calibrate.threshold_from(wide) == 95.8


@pytest.mark.parametrize("name", sorted(PROFILES), ids=lambda name: f"profile-{name}")
def test_calibration_matches_profiles(name):
    path = CALIBRATION_DIR / f"{name}.json"
    result = json.loads(path.read_text())
    profile = PROFILES[name]
    plain = {k: v for k, v in profile.plain().items() if k not in ("threshold", "dataset")}
    assert result["profile"] == plain, f"the profile's recipe changed since {path}: re-calibrate"
    accuracies = result["accuracies"]
    assert len(accuracies) == len(result["seeds"]) == len(result["seconds"])
    assert result["min"] == min(accuracies) and result["max"] == max(accuracies)
    # The threshold is derived from the measured accuracies, not compared with the file it was read from.
    expected = calibrate.threshold_from(accuracies)
    assert result["threshold"] == expected, f"{path}'s threshold is not the rule's, from its accuracies: re-calibrate"
    assert profile.threshold == expected, f"profile {name} does not use its calibration's threshold"
    assert profile.threshold < min(accuracies)  # the reference never fails at its own threshold


def test_profiles_read_their_threshold_from_the_calibration(tmp_path, monkeypatch):
    """A threshold copied into the code would pass the check above until the next calibration."""
    for name in PROFILES:
        calibration = json.loads((CALIBRATION_DIR / f"{name}.json").read_text())
        (tmp_path / f"{name}.json").write_text(json.dumps({**calibration, "threshold": 12.3}))
    plain = {k: v for k, v in CPU.plain().items() if k not in ("name", "threshold", "dataset")}
    assert recipe.calibrated(tmp_path, MNIST, cpu=plain)["cpu"].threshold == 12.3


# --- the full CPU recipe (slow) -------------------------------------------------------------


def _softmax_simplecnn():
    """SimpleCNN ending in Softmax, trained under cross-entropy: a classic mistake that learns slowly.

    (SimpleCNN without its ReLUs is no good broken model here: its max-pools keep it non-linear,
    and it reached 98.45 % with seed 0, too close to the CPU threshold to be a stable test.)
    """
    return nn.Sequential(*reference_simplecnn(), nn.Softmax(dim=1))


@pytest.mark.slow
def test_full_cpu_profile_separates_reference_from_broken():
    reference = train_and_evaluate(reference_simplecnn, CPU, seed=0, device="cpu", settings=SETTINGS)
    broken = train_and_evaluate(_softmax_simplecnn, CPU, seed=0, device="cpu", settings=SETTINGS)
    assert reference.passed, reference.describe()
    assert not broken.passed, broken.describe()
