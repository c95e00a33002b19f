"""Checks: each one turns the probes' plain data into points and a message.

An assignment is a list of probes (what to ask the sandbox) and a list of
checks (how to judge the answers). Each check belongs to one graded cell of the
notebook, by nbgrader ``grade_id``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Result:
    check: str
    points: float
    score: float
    message: str
    flags: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.score >= self.points


class Failed(Exception):
    """Raised inside a judge: the message names the first difference."""

    def __init__(self, message: str, score: float = 0.0, *, details: dict | None = None,
                 flag: bool = False):
        super().__init__(message)
        self.score = score
        self.details = details or {}
        self.flag = flag


@dataclass(frozen=True)
class Options:
    """How a grading run judges: the accuracy profile, and whether to train at all."""
    profile: str | None = None     # None: "gpu" when CUDA is present, else "cpu"
    accuracy: bool = True          # False skips training (scores the accuracy check 0, says so)
    seed: int | None = None        # probe inputs; None: derived from the submission's answers


@dataclass(frozen=True)
class Check:
    id: str
    cell: str                 # nbgrader grade_id of the test cell that holds it
    points: float
    probes: tuple[str, ...]   # probe ids whose data the judge needs
    judge: Callable[..., object]  # judge(data, probe_args, options) -> message; raises Failed
    title: str


@dataclass(frozen=True)
class Assignment:
    name: str                 # nbgrader assignment id (folder under source/)
    notebook: str             # notebook file name
    probes: Callable[[int], list[dict]]   # seed -> probe requests
    checks: tuple[Check, ...]

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
