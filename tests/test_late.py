"""Late penalties: the arithmetic at its edges, and a late submission losing exactly the configured share,
shown where the student and the instructor look (gradebook, class report, grades.csv, Canvas, feedback)."""
import csv
import datetime
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from traitlets.config import Config

from autograder import paths
from autograder.course import classgrade
from autograder.course import steps as course
from autograder.course import late
from autograder.assignment import samples
from autograder.__main__ import main
from autograder.assignment.assignments import kit
from autograder.course.late import LatePolicy, LateSettingsError

pytestmark = pytest.mark.filterwarnings(r"ignore:Object of type <\w+> not in session:sqlalchemy.exc.SAWarning")
A1 = "a1_sizes_and_params"
HOUR, DAY = 3600, 86400
COURSE_RULE = Config({"AssignLatePenalties": {"plugin_class": late.PLUGIN},
                      "CnnKitLatePenalty": {"percent_per_day": 10, "grace_minutes": 15, "cap_percent": 50}})


# --- the arithmetic ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds_late, periods", [
    (0, 0), (1, 0), (15 * 60, 0),                 # on time, and the grace period's edge (included)
    (15 * 60 + 1e-6, 1), (DAY, 1),                # a microsecond past the grace: a day; a whole day: still one
    (DAY + 1e-6, 2), (26 * HOUR, 2), (9 * DAY, 9),
])
def test_started_days_after_the_due_date(seconds_late, periods):
    assert LatePolicy(10, grace_minutes=15).periods_late(seconds_late) == periods


@pytest.mark.parametrize("policy, score, seconds_late, penalty", [
    (LatePolicy(10, grace_minutes=15), 17, 15 * 60, 0.0),            # the grace edge: on time
    (LatePolicy(10, grace_minutes=15), 17, 15 * 60 + 1, 1.7),         # a second later: one day, 10 %
    (LatePolicy(10), 13, 26 * HOUR, 2.6),                             # two started days: 20 % of the earned 13
    (LatePolicy(10, cap_percent=50), 17, 9 * DAY, 8.5),               # 90 % capped at 50 %
    (LatePolicy(10, cap_percent=50), 17, 400 * DAY, 8.5),             # past the cap: the cap, no more
    (LatePolicy(10), 17, 30 * DAY, 17.0),                             # no cap: down to zero, never below
    (LatePolicy(2, period_hours=1), 17, 2.5 * HOUR, 1.02),            # per hour: 3 started hours, 6 %
    (LatePolicy(2, period_hours=1), 17, HOUR, 0.34),
    (LatePolicy(15), 7.77, DAY, 1.16),                                # 1.1655 rounded down: never over the share
    (LatePolicy(10), 0, 3 * DAY, 0.0),                                # nothing earned, nothing lost
    (LatePolicy(0), 17, 3 * DAY, 0.0),                                # the default: no penalty
])
def test_penalty_is_the_share_of_the_earned_score(policy, score, seconds_late, penalty):
    assert policy.penalty(score, seconds_late) == penalty


def test_course_rule_read_from_nbgrader_config():
    assert late.policy_of(COURSE_RULE) == LatePolicy(10, 24, 15, 50)
    per_hour = Config({"AssignLatePenalties": {"plugin_class": late.PLUGIN},
                       "CnnKitLatePenalty": {"percent_per_hour": 1.5}})
    assert late.policy_of(per_hour) == LatePolicy(1.5, 1, 0, 100)
    assert late.policy_of(Config()) is None, "nbgrader's own plugin: not the kit's rule to describe"
    described = late.policy_of(COURSE_RULE).describe()
    assert described == ("10 % of the earned score for every day, or part of one, after the due date; "
                         "within 15 min of it counts as on time; at most 50 %")


@pytest.mark.parametrize("settings, words", [
    ({"percent_per_day": 10, "percent_per_hour": 1}, "not both"),
    ({"cap_percent": 120}, "cap_percent"),
    ({"grace_minutes": -5}, "grace_minutes"),
    ({"percent_per_day": float("nan")}, "percent_per_day"),
])
def test_unusable_settings_stop_before_grading(settings, words):
    config = Config({"AssignLatePenalties": {"plugin_class": late.PLUGIN}, "CnnKitLatePenalty": settings})
    with pytest.raises(LateSettingsError, match=words):
        late.policy_of(config)


def test_the_plugin_answers_nbgrader():
    plugin = late.CnnKitLatePenalty(config=COURSE_RULE)
    assert plugin.late_submission_penalty("alice", 13.0, 26 * HOUR) == 2.6
    assert plugin.late_submission_penalty("alice", 13.0, 10 * 60) == 0.0


def test_feedback_text_says_how_late_the_rule_and_the_points():
    policy = late.policy_of(COURSE_RULE)
    text = late.feedback_text(policy, late.Late("alice", 26 * HOUR, 17.0, 3.4))
    assert text.startswith("**Submitted 1 d 2 h after the due date.**")
    assert "10 % of the earned score for every day" in text
    assert "-3.4 points (2 days × 10 % = 20 %, of 17)" in text and "scores 13.6 instead of 17" in text
    capped = late.feedback_text(policy, late.Late("bob", 9 * DAY, 17.0, 8.5))
    assert "9 days × 10 % = 90 %, capped at 50 %, of 17" in capped
    earlier_rule = late.feedback_text(policy, late.Late("dave", 26 * HOUR, 17.0, 5.1))  # graded under 15 % a day
    assert "Late penalty: -5.1 points, so this notebook scores 11.9 instead of 17." in earlier_rule
    grace = late.feedback_text(policy, late.Late("carol", 10 * 60, 17.0, 0.0))
    assert "Within the grace period: no points were taken off." in grace


# --- end to end: cnn-kit autograde, report, export, Canvas, feedback -----------------------------------

DUE = datetime.datetime(2026, 3, 2, 17, 0, 0)
# student -> seconds after the due date (None: no timestamp.txt, as a file copied in by hand)
SUBMITTED = {"ontime": -HOUR, "grace": 10 * 60, "late": 26 * HOUR, "verylate": 9 * DAY}
RULE = """
c.CnnKitLatePenalty.percent_per_day = 10
c.CnnKitLatePenalty.grace_minutes = 15
c.CnnKitLatePenalty.cap_percent = 50
"""


def late_course(root: Path, submitted: dict) -> Path:
    """Assignment 1 released with a due date, the course's rule in its nbgrader_config.py, and the reference
    answers submitted at the given times (timestamp.txt, as nbgrader's exchange writes it)."""
    root = course.prepare_course(root, [A1], paths.SOURCE)
    with open(root / course.CONFIG, "a") as config:
        config.write(RULE)
    api = course.nbgrader_api(root)
    assert api.generate_assignment(A1, force=True, create=True)["success"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(A1, duedate=DUE)
    spec = kit()[A1]
    reference = samples.make_sample(A1, "reference", nbformat.read(root / "release" / A1 / spec.notebook, 4))
    for student, seconds in submitted.items():
        folder = root / "submitted" / student / A1
        folder.mkdir(parents=True)
        nbformat.write(reference, folder / spec.notebook)
        stamp = DUE + datetime.timedelta(seconds=seconds)
        (folder / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    return root


@pytest.fixture(scope="module")
def graded_late(tmp_path_factory):
    saved = dict(os.environ)
    root = late_course(tmp_path_factory.mktemp("late") / "course", SUBMITTED)
    try:
        assert main(["autograde", A1, "--course", str(root)]) == 0
        course.feedback(root, A1)
        assert main(["export", "--course", str(root)]) == 0
        roster = root.parent / "roster.csv"
        roster.write_text("nbgrader_id,Student,ID\n" + "".join(f"{s},{s},{1000 + i}\n"
                                                            for i, s in enumerate(SUBMITTED)))
        assert main(["export", "--canvas", "--roster", str(roster), "--course", str(root)]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return root


POINTS = 17
EXPECTED = {"ontime": 0.0, "grace": 0.0, "late": 3.4, "verylate": 8.5}   # 2 days: 20 % of 17; 9 days: capped at 50 %


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_gradebook_holds_exactly_the_configured_share(graded_late):
    assert kit()[A1].total_points == POINTS
    with Gradebook(f"sqlite:///{graded_late / 'gradebook.db'}") as gb:
        for student, penalty in EXPECTED.items():
            submission = gb.find_submission(A1, student)
            assert submission.score == POINTS, f"{student}: the reference earns full marks before any penalty"
            assert submission.late_submission_penalty == penalty, student


def test_class_report_rows_show_the_penalty(graded_late):
    rows = {r["student"]: r for r in read_csv(graded_late / "reports" / A1 / "class-report.csv")}
    assert rows["late"]["late_penalty"] == "3.4" and rows["late"]["score_after_late_penalty"] == "13.6"
    assert rows["late"]["seconds_late"] == str(26 * HOUR)
    assert rows["verylate"]["late_penalty"] == "8.5" and rows["verylate"]["score_after_late_penalty"] == "8.5"
    assert rows["grace"]["late_penalty"] == "0" and rows["grace"]["score_after_late_penalty"] == "17"
    assert rows["ontime"]["late_penalty"] == "" and rows["ontime"]["seconds_late"] == ""
    page = (graded_late / "reports" / A1 / "class-report.html").read_text()
    assert "<td class=num>1 d 2 h</td><td class=num>-3.4</td><td class=num>13.6</td>" in page


def test_grades_csv_and_canvas_carry_the_score_after_the_penalty(graded_late, keep_environment):
    grades = {r["student_id"]: r for r in read_csv(graded_late / "grades.csv")}
    assert float(grades["late"]["late_submission_penalty"]) == 3.4 and float(grades["late"]["score"]) == 13.6
    assert float(grades["verylate"]["score"]) == 8.5 and float(grades["ontime"]["score"]) == POINTS
    canvas = {r["Student"]: r for r in read_csv(graded_late / "canvas_grades.csv")}
    assert canvas["late"][A1] == "13.6" and canvas["verylate"][A1] == "8.5" and canvas["grace"][A1] == "17"
    summary = (graded_late / "canvas_grades.summary.txt").read_text()
    assert "LATE PENALTIES" in summary and f"late: {A1} -3.4" in summary and "grace:" not in summary
    table = course.table(course.grade_rows(graded_late))   # what cnn-kit autograde --workers and demo print
    assert "13.6/17 (late: -3.4)" in table and "8.5/17 (late: -8.5)" in table


def test_feedback_tells_the_student(graded_late):
    page = (graded_late / "feedback" / "late" / A1 / (Path(kit()[A1].notebook).stem + ".html")).read_text()
    assert "Submitted 1 d 2 h after the due date." in page
    assert "2 days × 10 % = 20 %, of 17" in page and "scores 13.6 instead of 17" in page
    assert "Late submission penalty (Score: -3.4)" in page     # nbgrader's own line in the page's header
    grace = (graded_late / "feedback" / "grace" / A1 / (Path(kit()[A1].notebook).stem + ".html")).read_text()
    assert "Within the grace period: no points were taken off." in grace
    ontime = (graded_late / "feedback" / "ontime" / A1 / (Path(kit()[A1].notebook).stem + ".html")).read_text()
    assert "after the due date" not in ontime


def test_class_run_applies_the_same_penalty_and_the_extension(tmp_path, monkeypatch):
    """--workers grades in a scratch gradebook: the penalty is the same, counted from the student's extended
    due date (the scratch copy has no students: the task carries the extension)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    root = late_course(tmp_path / "course", {"late": 26 * HOUR, "extended": 26 * HOUR})
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        gb.update_or_create_student("extended")
        gb.update_or_create_submission(A1, "extended")
        gb.grant_extension(A1, "extended", hours=24)   # 2 h late: one day, 10 %
    settings = classgrade.Settings.build(os.environ, tmp_path, course=str(root))
    summary = classgrade.grade_class(settings, A1, workers=1, progress=False)
    assert summary.outcomes == {"late": "graded", "extended": "graded"}, summary.lines()
    with Gradebook(db_url) as gb:
        assert gb.find_submission(A1, "late").late_submission_penalty == 3.4
        assert gb.find_submission(A1, "extended").late_submission_penalty == 1.7
        assert gb.find_submission(A1, "extended").extension == datetime.timedelta(hours=24)


def test_an_unusable_rule_stops_autograde_before_anyone_is_graded(tmp_path, capsys, keep_environment):
    root = course.prepare_course(tmp_path / "course", [A1], paths.SOURCE)
    with open(root / course.CONFIG, "a") as config:
        config.write("c.CnnKitLatePenalty.percent_per_day = 10\nc.CnnKitLatePenalty.percent_per_hour = 1\n")
    (root / "submitted" / "alice" / A1).mkdir(parents=True)
    assert main(["autograde", A1, "--course", str(root)]) == 2
    assert "set percent_per_day or percent_per_hour, not both" in capsys.readouterr().err
    assert not (root / "reports" / A1 / "alice.json").exists() and not (root / "autograded").exists()
