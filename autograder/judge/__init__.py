"""Judging: the kit's grading library. A check turns the probes' plain data into points and a message.

An assignment (``source/<a>/checks.py``, loaded by ``autograder.assignment.assignments``) is a list of probes
(what to ask the sandbox) and a list of checks (how to judge the answers). Each check belongs to one
graded cell of the notebook, by nbgrader ``grade_id``, and gets its share of that cell's points.

Here: the types every assignment's checks use. ``grade.py``: one grading, probes in the sandbox then
each check's verdict. ``in_kernel.py``: the same checks on an instructor's kernel. ``hidden_tests/``:
the same verdicts as pytest tests.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autograder.settings import Settings


@dataclass
class Result:
    check: str
    points: float
    score: float
    message: str
    flags: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    regrade: str | None = None    # not judged, for a reason that is not the student's: why (score 0 meanwhile)

    @property
    def passed(self) -> bool:
        return self.regrade is None and self.score >= self.points


class NotGraded(Exception):
    """Raised inside a judge: no verdict, for a reason that is not the student's (the machine's wall-clock
    guard stopped the work). The check gets no score, the submission is listed "to regrade" with the reason."""


class Failed(Exception):
    """Raised inside a judge: the message names the first difference; `part` of the points are still earned."""

    def __init__(self, message: str, part: float = 0.0, *, details: dict | None = None,
                 flag: bool = False):
        super().__init__(message)
        self.part = part
        self.details = details or {}
        self.flag = flag


@dataclass(frozen=True)
class Options:
    """How a grading run judges: the accuracy profile, whether to train at all, and the kit's settings.

    An edge builds them from its Settings (:meth:`of`); a caller that gives none (a test, an
    instructor's kernel) gets its environment's, once, where grading starts (:meth:`resolved`).
    """
    profile: str | None = None     # None: the settings' profile, else "gpu" when CUDA is present, else "cpu"
    accuracy: bool = True          # False skips training (scores the accuracy check 0, says so)
    seed: int | None = None        # probe inputs; None: derived from the submission's answers
    accuracy_cache: str | None = None  # folder of accuracies shared across processes and runs (accuracy_cache)
    settings: Settings | None = None   # MNIST, the sandbox's limits; None: the environment's (resolved)

    @classmethod
    def of(cls, settings: Settings, **run) -> "Options":
        """The options of a run under `settings` (their profile), with `run`'s choices (accuracy, seed, ...)."""
        return cls(**{"profile": settings.profile, **run, "settings": settings})

    def resolved(self) -> "Options":
        """These options with settings (the environment's where none were given) and their profile filled in."""
        settings = self.settings or Settings.from_env()
        return dataclasses.replace(self, settings=settings, profile=self.profile or settings.profile)


@dataclass(frozen=True)
class Check:
    id: str
    cell: str                 # nbgrader grade_id of the graded cell that holds it
    probes: tuple[str, ...]   # probe ids whose data the judge needs
    judge: Callable[..., object]  # judge(data, probe_args, options) -> message; raises Failed
    title: str
    weight: float = 1         # its share of the cell's points (the points are in the notebook's metadata)
    trains: bool = False      # the judge trains a network: skipped when Options.accuracy is off, timed apart
    points: float = 0.0       # filled in from the notebook when the assignment is loaded


@dataclass(frozen=True)
class Assignment:
    name: str                 # nbgrader assignment id (its folder under source/)
    notebook: str             # notebook file name
    probes: Callable[[int], list[dict]]   # seed -> probe requests
    checks: tuple[Check, ...]
    formula_cells: tuple[str, ...] = ()   # answer cells whose exercise is a formula (torch may not answer it)
    folder: Path | None = None            # source/<name>/
    module: Any = None                    # its checks.py, loaded
    mistakes: dict = field(default_factory=dict)         # sample name -> {answer grade_id: [(old, new), ...]}
    expected_scores: dict = field(default_factory=dict)  # sample name -> its score under full grading

    @property
    def source_notebook(self) -> Path:
        return Path(self.folder) / self.notebook

    @property
    def cells(self) -> dict[str, list[Check]]:
        cells: dict[str, list[Check]] = {}
        for check in self.checks:
            cells.setdefault(check.cell, []).append(check)
        return cells

    @property
    def total_points(self) -> float:
        return sum(check.points for check in self.checks)


def fmt_shape(shape) -> str:
    return "×".join(str(v) for v in shape) if shape else str(shape)


def compare_outputs(module, data: dict, seed: int, shapes, training_too: bool = True) -> str | None:
    """Why `module` (the rebuilt network with the student's weights) does not compute what the
    student's model computed on the probe's inputs, in evaluation and (`training_too`) in training
    mode (the same dropout masks: both draw them after the same torch.manual_seed), or None."""
    import torch

    from autograder.judge import layers
    from autograder.sandbox import probe
    from autograder.sandbox import protocol

    if any(isinstance(layer, layers.Unrebuilt) for layer in module):
        return _compare_segments(module, data, seed, shapes, training_too)
    key = protocol.shape_key
    modes = [(False, data.get("outputs", {}), data.get("errors", {}))]
    if training_too:
        modes.append((True, data.get("train_outputs", {}), data.get("train_errors", {})))
    for training, outputs, errors in modes:
        module.train(training)
        mode = "training" if training else "evaluation"
        for shape in shapes:
            got = outputs.get(key(shape))
            x = probe.probe_input(shape, seed + protocol.Seed.INPUT)
            try:
                if training:
                    torch.manual_seed(seed + protocol.Seed.TRAIN_FORWARD)
                with torch.no_grad():
                    expected = module(x)
            except Exception:
                expected = None
            if expected is None and key(shape) in errors:
                continue   # both fail on this input (a shape mismatch): the same computation
            if not torch.is_tensor(got) or expected is None or got.shape != expected.shape or \
                    not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
                return (f"for a batch of {shape[0]} in {mode} mode, the model's output is not what the "
                        "operations its forward() applies compute (the same layers and weights, rebuilt by the "
                        "grader): forward() must compute its result with those operations only, the same way "
                        "every call")
    return None


def _compare_segments(module, data: dict, seed: int, shapes, training_too: bool) -> str | None:
    """compare_outputs for a network holding layers the kit does not rebuild: each rebuilt part between
    them must turn the input it got in the student's forward (the probe's boundaries) into what the next
    one got, on every probe input whose boundaries came back, and at least one per mode."""
    import torch

    from autograder.judge import layers
    from autograder.sandbox import probe
    from autograder.sandbox import protocol

    parts = layers.segments(module)
    boundaries = data.get("boundaries") if isinstance(data.get("boundaries"), dict) else {}
    modes = [(False, "eval", data.get("outputs", {}))]
    if training_too:
        modes.append((True, "train", data.get("train_outputs", {})))
    unchecked = ("the rebuilt parts around the layers the kit cannot rebuild could not be checked against "
                 "the model's forward: forward() must compute its result with its operations only")
    for training, mode, outputs in modes:
        module.train(training)
        checked = 0
        for shape in shapes:
            key = protocol.shape_key(shape)
            kept = (boundaries.get(mode) or {}).get(key)
            if not isinstance(kept, list) or len(kept) != len(parts) - 1 or not torch.is_tensor(outputs.get(key)) \
                    or not all(isinstance(p, list) and len(p) == 2 and all(map(torch.is_tensor, p)) for p in kept):
                continue
            starts = [probe.probe_input(shape, seed + protocol.Seed.INPUT)] + [pair[1] for pair in kept]
            ends = [pair[0] for pair in kept] + [outputs[key]]
            if training:
                torch.manual_seed(seed + protocol.Seed.TRAIN_FORWARD)
            for part, start, end in zip(parts, starts, ends):
                try:
                    with torch.no_grad():
                        got = part(start)
                except Exception:
                    got = None
                if not torch.is_tensor(end) or got is None or got.shape != end.shape or \
                        not torch.allclose(got, end, rtol=1e-4, atol=1e-5):
                    return (f"for a batch of {shape[0]} in {'training' if training else 'evaluation'} mode, the "
                            "model's output is not what the operations its forward() applies compute")
            checked += 1
        if not checked:
            return unchecked
    return None
