"""An assignment's accuracy recipe, as plain values: its data set, its profiles, and what a training reports.

The core knows no assignment: each trained assignment states, in its own folder, what the grader trains on
(a :class:`Dataset`: how to load it, how to normalise it, how many classes, the lecture's network the guard
and the calibration run) and how long per profile (a :class:`Profile` each for ``cpu`` and ``gpu``), with
each profile's minimum accuracy read from the folder's ``calibration/<profile>.json``
(:func:`calibrated`; ``python -m autograder.judge.calibrate`` writes it)::

    # source/<assignment>/reference.py
    DATASET = Dataset("MNIST", load_mnist, mean=0.1307, std=0.3081, classes=10, input_shape=(1, 28, 28),
                      reference=reference_network)
    ACCURACY = calibrated(Path(__file__).parent / "calibration", DATASET,
                          cpu=dict(epochs=1, batch_size=128, max_lr=6e-3, channels_last=True, amp=False), ...)

``autograder.judge.train`` trains with a profile, ``autograder.judge.accuracy`` turns that into a verdict.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

PROFILE_NAMES = ("cpu", "gpu")


@dataclass(frozen=True)
class Dataset:
    """What the grader trains and tests on: a split's images (uint8 ``[N, H, W]``, one channel) and int64
    labels from ``load(train, settings)``, normalised with ``mean`` and ``std``; ``classes`` logits per image
    of ``input_shape``; ``reference()`` builds the lecture's network (the guard times it, calibration trains it)."""
    name: str
    load: Callable
    mean: float
    std: float
    classes: int
    input_shape: tuple
    reference: Callable


@dataclass(frozen=True)
class Profile:
    name: str  # "cpu" or "gpu"
    epochs: int
    batch_size: int
    max_lr: float
    threshold: float  # minimum test accuracy (percent) the accuracy check demands
    channels_last: bool
    amp: bool  # bf16 autocast (GPU only)
    dataset: Dataset | None = field(default=None, compare=False, repr=False)

    def plain(self) -> dict:
        """The recipe as plain data (JSON-able): its numbers and its data set's name."""
        recipe = {k: v for k, v in asdict(self).items() if k != "dataset"}
        return {**recipe, "dataset": self.dataset.name if self.dataset else None}


def calibrated(folder: Path, dataset: Dataset, **recipes: dict) -> dict[str, Profile]:
    """Each named profile with its threshold read from `folder`/<name>.json, the one place it is written."""
    profiles = {}
    for name, recipe in recipes.items():
        if name not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {name!r}; a recipe's profiles are {', '.join(PROFILE_NAMES)}")
        calibration = json.loads((Path(folder) / f"{name}.json").read_text())
        profiles[name] = Profile(name, threshold=float(calibration["threshold"]), dataset=dataset, **recipe)
    return profiles


def select_profile(profiles: dict[str, Profile], name: str | None = None, cuda: bool | None = None) -> Profile:
    """The named profile of an assignment's recipe; by default "gpu" where CUDA exists, else "cpu"."""
    if name is None:
        if cuda is None:
            import torch

            cuda = torch.cuda.is_available()
        name = "gpu" if cuda else "cpu"
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(sorted(profiles))}")
    return profiles[name]


@dataclass
class AccuracyReport:
    device: str
    profile: str
    epochs: int
    seed: int
    seconds: float  # training plus the final evaluation
    accuracy: float  # percent, on the data set's test split
    accuracy_before: float  # percent, of the freshly initialised model
    threshold: float
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    curve: list = field(default_factory=list)  # mean training loss over each of up to CURVE_POINTS stretches
    dataset: str = ""  # the data set's name, for messages

    @property
    def passed(self) -> bool:
        return self.accuracy >= self.threshold

    def describe(self) -> str:
        epochs = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        return (f"{self.accuracy:.2f} % on {self.device} (profile {self.profile}, {epochs}, "
                f"seed {self.seed}) in {self.seconds:.1f} s; needs >= {self.threshold:.1f} %")
