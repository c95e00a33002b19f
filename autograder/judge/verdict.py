"""A check's verdict, typed: what a judge returns (``Verdict``) and what a grading keeps of it (``Result``).

A judge returns a :class:`Verdict` (its message, the share of the check's points it earns, optional
details such as a layer table) or raises :class:`Failed`, which carries one, from wherever the first
difference is found; :class:`NotGraded` when the machine, not the student, kept it from judging.
``grade.py`` scores the verdict with the check's points into a :class:`Result`, which the report's JSON,
the nbgrader hook and the feedback cells (``autograder/feedback/cells.py``) read. A judge that returns
anything but a ``Verdict`` is a grader bug: the check scores 0 and is flagged (fails closed).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict on one check.

    ``details`` is plain JSON data the readers know by key: ``layers`` (a layer table: ``expected`` and
    ``found`` rows, optionally ``title``, ``start``, ``compare``), ``ops`` (the traced operations, for the
    class report), the accuracy check's ``accuracy``, ``threshold``, ``curve``, ``device``, ...
    """
    message: str
    part: float = 1.0        # the share of the check's points earned, 0 to 1 (clamped when scored)
    details: dict = field(default_factory=dict)
    flag: bool = False       # also a flag for the instructor's review (a suspicious network, a refused cost)

    def with_details(self, **details) -> "Verdict":
        """This verdict with `details` added (a layer table beside a check's own details)."""
        return Verdict(self.message, self.part, {**self.details, **details}, self.flag)


class Failed(Exception):
    """Raised inside a judge: the message names the first difference; `part` of the points are still earned."""

    def __init__(self, message: str, part: float = 0.0, *, details: dict | None = None, flag: bool = False):
        super().__init__(message)
        self.part = part
        self.details = details or {}
        self.flag = flag

    @classmethod
    def of(cls, verdict: Verdict) -> "Failed":
        return cls(verdict.message, verdict.part, details=dict(verdict.details), flag=verdict.flag)

    @property
    def verdict(self) -> Verdict:
        return Verdict(str(self), self.part, dict(self.details), self.flag)


class NotGraded(Exception):
    """Raised inside a judge: no verdict, for a reason that is not the student's (the machine's wall-clock
    guard stopped the work). The check gets no score, the submission is listed "to regrade" with the reason."""


@dataclass
class Result:
    """One check's verdict in a grading: its points, the score earned, the message (the report's JSON keeps
    these fields as they are named here)."""
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

    @classmethod
    def scored(cls, check: str, points: float, verdict: Verdict) -> "Result":
        """The verdict scored with the check's points: its share of them, its flag raised where it has one."""
        result = cls(check, points, points * min(max(verdict.part, 0.0), 1.0), verdict.message,
                     details=dict(verdict.details))
        if verdict.flag:
            result.flags.append(verdict.message)
        return result

    @classmethod
    def not_graded(cls, check: str, points: float, why: str) -> "Result":
        """No verdict for a reason that is not the student's: 0 meanwhile, listed to regrade."""
        return cls(check, points, 0.0, f"not graded yet, to regrade: {why}", regrade=why)
