"""Judging: the kit's grading library. A check turns the probes' plain data into points and a message.

An assignment (``source/<a>/checks.py``, loaded by ``autograder.assignment.assignments``) is a list of probes
(what to ask the sandbox) and a list of checks (how to judge the answers). Each check belongs to one
graded cell of the notebook, by nbgrader ``grade_id``, and gets its share of that cell's points.

Here: the types every assignment's checks use (a judge's ``Verdict`` and ``Result`` in ``verdict.py``).
``pipeline.py``: trace, rebuild, bound, load the student's weights and compare, once for every check that
judges a network. ``grade.py``: one grading, probes in the sandbox then each check's verdict. ``in_kernel.py``: the same checks on an instructor's kernel. ``hidden_tests/``:
the same verdicts as pytest tests.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autograder.settings import Settings
from autograder.judge.verdict import Failed, NotGraded, Result, Verdict

__all__ = ["Assignment", "Check", "Failed", "NotGraded", "Options", "Result", "Verdict", "fmt_shape"]


@dataclass(frozen=True)
class Options:
    """How a grading run judges: the kit's settings, the accuracy profile, whether to train at all.

    Built from the Settings its caller was given (:meth:`of`): an edge builds them once (the command line,
    nbgrader's config, a test's run); nothing below reads the environment for them.
    """
    settings: Settings             # MNIST, the source folder, the sandbox's limits
    profile: str | None = None     # None: the settings' profile, else "gpu" when CUDA is present, else "cpu"
    accuracy: bool = True          # False skips training (scores the accuracy check 0, says so)
    seed: int | None = None        # probe inputs; None: derived from the submission's answers
    accuracy_cache: str | None = None  # folder of accuracies shared across processes and runs (accuracy_cache)

    def __post_init__(self):
        if not isinstance(self.settings, Settings):
            raise TypeError(f"Options need the caller's Settings (Options.of(settings, ...)), got {self.settings!r}")

    @classmethod
    def of(cls, settings: Settings, **run) -> "Options":
        """The options of a run under `settings` (their profile), with `run`'s choices (accuracy, seed, ...)."""
        return cls(settings, **{"profile": settings.profile, **run})

    def resolved(self) -> "Options":
        """These options with the settings' profile filled in where none was chosen."""
        return dataclasses.replace(self, profile=self.profile or self.settings.profile)


@dataclass(frozen=True)
class Check:
    id: str
    cell: str                 # nbgrader grade_id of the graded cell that holds it
    probes: tuple[str, ...]   # probe ids whose data the judge needs
    judge: Callable[..., Verdict]  # judge(data, probe_args, options) -> Verdict; raises Failed or NotGraded
    title: str
    weight: float = 1         # its share of the cell's points (the points are in the notebook's metadata)
    trains: bool = False      # the judge trains a network: skipped when Options.accuracy is off, timed apart
    points: float = 0.0       # filled in from the notebook when the assignment is loaded
    kind: str = ""            # the protocol.Kind of the probe it judges; a probe of another kind is not judged


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
