"""Late penalties: a share of the earned score per day (or hour) late, after a grace period, up to a cap.

nbgrader's ``AssignLatePenalties`` (one of the kit's autograde preprocessors) asks a plugin for the
penalty of each notebook of a late submission, with the notebook's score and the submission's seconds
late (``timestamp.txt`` against the assignment's due date in the gradebook, plus the student's
extension). :class:`CnnKitLatePenalty` is that plugin, set in ``nbgrader_config.py`` and configured there::

    c.CnnKitLatePenalty.percent_per_day = 10    # or percent_per_hour
    c.CnnKitLatePenalty.grace_minutes = 15
    c.CnnKitLatePenalty.cap_percent = 50

``cnn-kit autograde`` (sequential and ``--workers``) and plain ``nbgrader autograde`` all grade through
``AssignLatePenalties``, so every path applies the same rule, and nbgrader stores the penalty in the
gradebook (``late_submission_penalty``), from where the exports, the class report and the feedback read it.

The rule (:class:`LatePolicy`, plain data, built once from nbgrader's configuration):

* a submission at most ``grace_minutes`` after the due date (the edge included) is on time;
* a later one loses ``percent_per_day`` % of **its earned score** for every day, or part of a day,
  after the due date (an hour with ``percent_per_hour``): 1 s past the grace is one day late;
* the share stops at ``cap_percent`` %: later still, it loses the cap and no more;
* the penalty is rounded down to 0.01 point, so it never exceeds the configured share.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction

from nbformat.v4 import new_markdown_cell
from nbgrader.plugins import BasePlugin
from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor
from traitlets import Float, List, TraitError, validate

from autograder.settings import SettingsError

CENT = Decimal("0.01")
PLUGIN = "autograder.course.late.CnnKitLatePenalty"


class LateSettingsError(SettingsError):
    """A late-penalty setting the kit cannot use; the message names it and says what it accepts."""


@dataclass(frozen=True)
class LatePolicy:
    percent: float = 0.0            # of the earned score, per period late
    period_hours: int = 24          # 24: per day, 1: per hour
    grace_minutes: float = 0.0
    cap_percent: float = 100.0

    def __post_init__(self):
        for name in ("percent", "grace_minutes", "cap_percent"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise LateSettingsError(f"late penalty: {name} = {value!r} is not a number ≥ 0")
        if self.cap_percent > 100:
            raise LateSettingsError(f"late penalty: cap_percent = {self.cap_percent!r} is over 100")
        if self.period_hours not in (1, 24):
            raise LateSettingsError(f"late penalty: a period of {self.period_hours!r} h (use a day or an hour)")

    @property
    def active(self) -> bool:
        return self.percent > 0 and self.cap_percent > 0

    @property
    def period(self) -> str:
        return "day" if self.period_hours == 24 else "hour"

    def periods_late(self, seconds_late: float) -> int:
        """Started days (hours) after the due date; 0 within the grace period, its edge included."""
        if seconds_late <= self.grace_minutes * 60:
            return 0
        return math.ceil(Fraction(seconds_late) / (self.period_hours * 3600))

    def share_percent(self, seconds_late: float) -> Decimal:
        """The percentage of the earned score lost, the cap applied."""
        share = Decimal(str(self.percent)) * self.periods_late(seconds_late)
        return min(share, Decimal(str(self.cap_percent)))

    def penalty(self, score: float, seconds_late: float) -> float:
        """Points lost: the share of `score` (never below 0), rounded down to 0.01 point."""
        if score <= 0 or not self.active:
            return 0.0
        exact = Decimal(str(score)) * self.share_percent(seconds_late) / 100
        return float(exact.quantize(CENT, rounding=ROUND_FLOOR))

    def describe(self) -> str:
        """The rule in one sentence, as the feedback and the report show it."""
        if not self.active:
            return "no late penalty"
        grace = f"; within {_number(self.grace_minutes)} min of it counts as on time" if self.grace_minutes else ""
        cap = f"; at most {_number(self.cap_percent)} %" if self.cap_percent < 100 else ""
        return (f"{_number(self.percent)} % of the earned score for every {self.period}, or part of one, "
                f"after the due date{grace}{cap}")


def _number(value: float) -> str:
    return f"{value:g}"


def duration(seconds: float) -> str:
    """'1 d 2 h 5 min' (whole minutes, rounded up: 10 s late reads '1 min')."""
    minutes = math.ceil(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p) or "0 min"


class CnnKitLatePenalty(BasePlugin):
    """nbgrader's late-submission plugin with a share per day or hour, a grace period and a cap."""

    percent_per_day = Float(0.0, help="Percent of the earned score lost for every day, or part of one, "
                                      "after the due date (0: none).").tag(config=True)
    percent_per_hour = Float(0.0, help="Percent of the earned score lost for every hour, or part of one, "
                                       "after the due date (0: none; not with percent_per_day).").tag(config=True)
    grace_minutes = Float(0.0, help="Minutes after the due date that still count as on time.").tag(config=True)
    cap_percent = Float(100.0, help="The most a late submission loses, in percent of its earned score."
                        ).tag(config=True)

    @validate("percent_per_day", "percent_per_hour", "grace_minutes", "cap_percent")
    def _number_at_least_zero(self, proposal):
        value = proposal["value"]
        if not math.isfinite(value) or value < 0 or (proposal["trait"].name == "cap_percent" and value > 100):
            raise TraitError(f"CnnKitLatePenalty.{proposal['trait'].name} = {value!r}: use a number from 0"
                             + (" to 100" if proposal["trait"].name == "cap_percent" else ""))
        return value

    def policy(self) -> LatePolicy:
        if self.percent_per_day and self.percent_per_hour:
            raise LateSettingsError("CnnKitLatePenalty: set percent_per_day or percent_per_hour, not both "
                                    f"({self.percent_per_day:g} and {self.percent_per_hour:g})")
        per_hour = bool(self.percent_per_hour)
        return LatePolicy(percent=self.percent_per_hour if per_hour else self.percent_per_day,
                          period_hours=1 if per_hour else 24, grace_minutes=self.grace_minutes,
                          cap_percent=self.cap_percent)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        policy = self.policy()
        penalty = policy.penalty(score, total_seconds_late)
        self.log.info("%s is %s late: %s; penalty %g of %g", student_id, duration(total_seconds_late),
                      policy.describe(), penalty, score)
        return penalty


def policy_of(config) -> LatePolicy | None:
    """The course's rule from nbgrader's configuration (a traitlets Config), read once at an edge; None when
    nbgrader assigns penalties with another plugin than the kit's (its rule is not the kit's to describe).

    LateSettingsError when the settings cannot be used, so that a grading run stops before it starts.
    """
    plugin = config.get("AssignLatePenalties", {}).get("plugin_class", None)
    name = plugin if isinstance(plugin, str) else f"{plugin.__module__}.{plugin.__qualname__}" if plugin else ""
    if name != PLUGIN:
        return None
    try:
        return CnnKitLatePenalty(config=config).policy()
    except TraitError as exc:
        raise LateSettingsError(str(exc)) from None


@dataclass(frozen=True)
class Late:
    """One late submission, as the gradebook holds it after autograde."""
    student: str
    seconds_late: float
    raw_score: float
    penalty: float

    @property
    def score(self) -> float:
        return max(0.0, round(self.raw_score - self.penalty, 2))


def lateness(gradebook, assignment: str) -> dict[str, Late]:
    """student -> Late, for every submission of `assignment` in nbgrader's gradebook submitted after its due date."""
    from nbgrader.api import MissingEntry

    try:
        submissions = gradebook.assignment_submissions(assignment)
    except MissingEntry:
        return {}
    return {sub.student.id: Late(sub.student.id, float(sub.total_seconds_late), float(sub.score),
                                 float(sub.late_submission_penalty or 0.0))
            for sub in submissions if sub.total_seconds_late > 0}


def reckoning(policy: LatePolicy, seconds_late: float, score: float) -> str:
    """How the share was reached: '2 days × 10 % = 20 % of 13', the cap said where it applied."""
    periods = policy.periods_late(seconds_late)
    uncapped = Decimal(str(policy.percent)) * periods
    share = policy.share_percent(seconds_late)
    capped = f", capped at {float(share):g} %" if share < uncapped else ""
    return (f"{periods} {policy.period}{'s' if periods != 1 else ''} × {policy.percent:g} % = {float(uncapped):g} %"
            f"{capped}, of {score:g}")


def feedback_text(policy: LatePolicy | None, late: Late) -> str:
    """What the student reads at the top of their feedback: how late, the rule, the points lost."""
    rule = f" The course's rule: {policy.describe()}." if policy is not None else ""
    if late.penalty <= 0:
        within = policy is not None and policy.periods_late(late.seconds_late) == 0 and policy.grace_minutes
        lost = ("Within the grace period: no" if within else "No") + " points were taken off."
    else:
        # the reckoning only where this rule gives the stored penalty (not after a change of rule since grading)
        same = policy is not None and policy.penalty(late.raw_score, late.seconds_late) == late.penalty
        share = f" ({reckoning(policy, late.seconds_late, late.raw_score)})" if same else ""
        lost = (f"Late penalty: -{late.penalty:g} points{share}, "
                f"so this notebook scores {late.score:g} instead of {late.raw_score:g}.")
    return f"**Submitted {duration(late.seconds_late)} after the due date.**{rule} {lost}"


class LateNoteInFeedback(NbGraderPreprocessor):
    """generate_feedback: a late submission's page opens with how late it was, the course's rule and the points
    lost (after nbgrader's GetGrades, which puts the notebook's score and penalty into the resources).

    The rule is read from this run's nbgrader configuration; the penalty and lateness from the gradebook, as
    autograde stored them.
    """

    display_data_priority = List(GetGrades.display_data_priority.default_value).tag(config=True)

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            seconds_late = float(gb.find_submission(info["assignment"], info["student"]).total_seconds_late)
        if seconds_late <= 0:
            return nb, resources
        penalty = float(info.get("late_penalty") or 0.0)
        late = Late(info["student"], seconds_late, float(info["score"]) + penalty, penalty)
        nb.cells.insert(0, new_markdown_cell(feedback_text(policy_of(self.config), late),
                                             metadata={"cnn_kit": "late-penalty"}))
        return nb, resources
